//! Lifecycle scenarios: the recycle bin, archive, transfer and sharing,
//! run through [`Crm`] against each backend.

/// Lists the lifecycle scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! lifecycle_scenarios {
    ($each:path; $make:expr) => {
        $each!(
            $crate::testing::lifecycle_suite::archived_customers_are_refused_naming_the_state,
            crm_lifecycle_archived_customers_are_refused_naming_the_state,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_customer_back_in_the_working_set_counts_toward_the_caps,
            crm_lifecycle_a_customer_back_in_the_working_set_counts_toward_the_caps,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_deleted_opportunity_no_longer_dates_its_customer,
            crm_lifecycle_a_deleted_opportunity_no_longer_dates_its_customer,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_contact_moves_only_with_its_customer,
            crm_lifecycle_a_contact_moves_only_with_its_customer,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::deleting_a_follow_up_recomputes_its_customers_dates,
            crm_lifecycle_deleting_a_follow_up_recomputes_its_customers_dates,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::editing_a_follow_ups_dates_recomputes_its_customers_dates,
            crm_lifecycle_editing_a_follow_ups_dates_recomputes_its_customers_dates,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_customer_with_open_opportunities_stays_in_the_working_set,
            crm_lifecycle_a_customer_with_open_opportunities_stays_in_the_working_set,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_transferred_documents_approval_is_out_of_its_applicants_hands,
            crm_lifecycle_a_transferred_documents_approval_is_out_of_its_applicants_hands,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_share_until_a_date_lasts_through_that_day,
            crm_lifecycle_a_share_until_a_date_lasts_through_that_day,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_purged_record_keeps_its_history_for_administrators,
            crm_lifecycle_a_purged_record_keeps_its_history_for_administrators,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::changes_to_children_and_products_are_announced,
            crm_lifecycle_changes_to_children_and_products_are_announced,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::transfer_and_sharing_do_not_reveal_unreadable_records,
            crm_lifecycle_transfer_and_sharing_do_not_reveal_unreadable_records,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::unsharing_is_recorded_like_sharing,
            crm_lifecycle_unsharing_is_recorded_like_sharing,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::sharing_refuses_the_recycle_bin_and_deactivated_users,
            crm_lifecycle_sharing_refuses_the_recycle_bin_and_deactivated_users,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::unarchive_refuses_records_in_the_recycle_bin,
            crm_lifecycle_unarchive_refuses_records_in_the_recycle_bin,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_child_is_not_restored_while_its_customer_is_not_live,
            crm_lifecycle_a_child_is_not_restored_while_its_customer_is_not_live,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::open_opportunity_counts_follow_the_recycle_bin_and_archive,
            crm_lifecycle_open_opportunity_counts_follow_the_recycle_bin_and_archive,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_customer_is_not_purged_while_sales_records_refer_to_it,
            crm_lifecycle_a_customer_is_not_purged_while_sales_records_refer_to_it,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::the_customer_view_shows_sales_documents_payments_and_invoices,
            crm_lifecycle_the_customer_view_shows_sales_documents_payments_and_invoices,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::contacts_are_not_added_through_a_share,
            crm_lifecycle_contacts_are_not_added_through_a_share,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_customers_follow_ups_are_read_with_it,
            crm_lifecycle_a_customers_follow_ups_are_read_with_it,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_users_records_follow_them_to_another_department,
            crm_lifecycle_a_users_records_follow_them_to_another_department,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::refusals_name_records_by_code_and_say_why,
            crm_lifecycle_refusals_name_records_by_code_and_say_why,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_customer_owed_money_stays_in_the_working_set,
            crm_lifecycle_a_customer_owed_money_stays_in_the_working_set,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_document_is_not_made_for_an_opportunity_closed_meanwhile,
            crm_lifecycle_a_document_is_not_made_for_an_opportunity_closed_meanwhile,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::transfers_announce_the_record_and_the_owners_by_name,
            crm_lifecycle_transfers_announce_the_record_and_the_owners_by_name,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::approvals_passed_to_other_approvers_are_announced,
            crm_lifecycle_approvals_passed_to_other_approvers_are_announced,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_write_share_gives_no_rights_the_roles_lack,
            crm_lifecycle_a_write_share_gives_no_rights_the_roles_lack,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_transfer_ends_the_shares_of_the_old_owner,
            crm_lifecycle_a_transfer_ends_the_shares_of_the_old_owner,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::text_holds_no_control_characters,
            crm_lifecycle_text_holds_no_control_characters,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_customer_is_named_by_its_name_too,
            crm_lifecycle_a_customer_is_named_by_its_name_too,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_customer_does_not_leave_with_a_contract_reopened_meanwhile,
            crm_lifecycle_a_customer_does_not_leave_with_a_contract_reopened_meanwhile,
            $make
        );
        $each!(
            $crate::testing::lifecycle_suite::a_transfer_with_documents_stopped_midway_says_what_moved,
            crm_lifecycle_a_transfer_with_documents_stopped_midway_says_what_moved,
            $make
        );
    };
}

use crate::auth::Actor;
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::Error;
use crate::ids::{RecordId, UserId};
use crate::query::ListQuery;
use crate::records::{Record, ShareAccess};
use crate::schema::Table;
use crate::store::Store;
use crate::testing::pool_suite::Interleave;
use crate::testing::sales_suite::with_sales_rights;
use crate::testing::service_suite::{World, fields};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// Creates a record as `actor`.
async fn create(w: &World, actor: &Actor, entity: Entity, v: serde_json::Value) -> Record {
    w.crm
        .create_record(actor, entity, fields(v))
        .await
        .unwrap_or_else(|e| panic!("create {entity}: {e}"))
}

/// The code of a record.
fn code(r: &Record) -> String {
    r.code.clone().expect("code")
}

/// The event types (and records) announced since `after`, and the newest
/// sequence number.
async fn announced_since(w: &World, after: i64) -> (Vec<(String, Uuid, serde_json::Value)>, i64) {
    let events = w
        .crm
        .pending_events("lifecycle-test", 10_000)
        .await
        .expect("events");
    let last = events.last().map_or(after, |e| e.seq);
    let got = events
        .into_iter()
        .filter(|e| e.seq > after)
        .map(|e| {
            (
                e.event.event_type.clone(),
                e.event.record_id,
                e.event.payload.to_value(),
            )
        })
        .collect();
    (got, last)
}

/// What happens to a customer's contacts and follow-ups with it — deleted,
/// restored, transferred, moved by a merge — goes into their own history
/// and is announced for each of them, as a change of that record alone
/// would be; a merge's event tells what the survivor's fields became; a
/// product's update and deletion are announced.
pub async fn changes_to_children_and_products_are_announced(store: Arc<dyn Store>) {
    use crate::dedupe::MergeSpec;
    use crate::sales::ProductInput;
    let w = with_sales_rights(World::new(store).await).await;
    let c = w.customer(&w.zhangsan, "公告客户有限公司", json!({})).await;
    let contact = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "公告联系人"}),
    )
    .await;
    let follow_up = create(
        &w,
        &w.zhangsan,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "channel": "call", "content": "电话沟通"}),
    )
    .await;
    let (_, mut seen) = announced_since(&w, 0).await;
    let has = |got: &[(String, Uuid, serde_json::Value)], kind: &str, id: RecordId| {
        got.iter().any(|(k, r, _)| k == kind && *r == id.0)
    };
    for (step, kind) in [("delete", "deleted"), ("restore", "restored")] {
        let r = match step {
            "delete" => {
                w.crm
                    .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
                    .await
            }
            _ => {
                w.crm
                    .restore_records(&w.zhangsan, Entity::Customer, &[c.id])
                    .await
            }
        };
        assert_eq!(r.done, vec![c.id], "{r:?}");
        let (got, last) = announced_since(&w, seen).await;
        seen = last;
        assert!(
            has(&got, &format!("contact.{kind}"), contact.id),
            "{got:#?}"
        );
        assert!(
            has(&got, &format!("follow_up.{kind}"), follow_up.id),
            "{got:#?}"
        );
        let history = w
            .crm
            .history(&w.zhangsan, Entity::Contact, contact.id.0)
            .await
            .expect("history");
        assert!(history.iter().any(|h| h.action == step), "{history:#?}");
    }
    let r = w
        .crm
        .transfer_records(&w.zhangsan, Entity::Customer, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let (got, last) = announced_since(&w, seen).await;
    seen = last;
    assert!(has(&got, "contact.transferred", contact.id), "{got:#?}");
    // A merge: the other's contact moves, and the survivor's phone changes
    // (to the other's: a blank is not taken).
    let current = w
        .crm
        .get_record(&w.admin, Entity::Customer, c.id)
        .await
        .expect("the other");
    w.crm
        .update_record(
            &w.admin,
            Entity::Customer,
            c.id,
            current.version,
            fields(json!({"phone": "021-51234567"})),
        )
        .await
        .expect("the other's phone");
    let survivor = w
        .customer(
            &w.admin,
            "公告存续有限公司",
            json!({"phone": "010-62345678"}),
        )
        .await;
    let (_, last) = announced_since(&w, seen).await;
    seen = last;
    let mut take = std::collections::BTreeMap::new();
    take.insert("phone".to_string(), c.id);
    w.crm
        .merge_customers(
            &w.admin,
            &MergeSpec {
                survivor: survivor.id,
                others: vec![c.id],
                take,
            },
        )
        .await
        .expect("merge");
    let (got, last) = announced_since(&w, seen).await;
    seen = last;
    let moved = got
        .iter()
        .find(|(k, r, _)| k == "contact.updated" && *r == contact.id.0)
        .unwrap_or_else(|| panic!("the moved contact is announced: {got:#?}"));
    assert!(
        moved.2["changes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["field"] == "customer_id")),
        "{moved:#?}"
    );
    let merged = got
        .iter()
        .find(|(k, _, _)| k == "customer.merged")
        .unwrap_or_else(|| panic!("merged: {got:#?}"));
    assert!(
        merged.2["changes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["field"] == "phone")),
        "{merged:#?}"
    );
    // Products.
    let p = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                name: Some("公告产品".into()),
                list_price: Some(crate::money::Money::cny(100)),
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
                list_price: Some(crate::money::Money::cny(120)),
                ..ProductInput::default()
            },
        )
        .await
        .expect("price");
    w.crm
        .set_product_deleted(&w.admin, p.id, true)
        .await
        .expect("delete");
    let (got, _) = announced_since(&w, seen).await;
    for kind in ["product.updated", "product.deleted"] {
        assert!(has(&got, kind, RecordId(p.id)), "{kind}: {got:#?}");
    }
}

/// A customer purged for good keeps its history for administrators (who
/// created, changed and purged it); for others it is gone.
pub async fn a_purged_record_keeps_its_history_for_administrators(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "清除客户有限公司", json!({})).await;
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let r = w
        .crm
        .purge_records(&w.admin, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let history = w
        .crm
        .history(&w.admin, Entity::Customer, c.id.0)
        .await
        .expect("an administrator reads it");
    let actions: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions.first(), Some(&"create"), "{actions:?}");
    assert_eq!(actions.last(), Some(&"purge"), "{actions:?}");
    assert!(matches!(
        w.crm.history(&w.zhangsan, Entity::Customer, c.id.0).await,
        Err(Error::NotFound { .. })
    ));
    // Nor is an id that never was a record anyone's to read.
    assert!(matches!(
        w.crm
            .history(&w.admin, Entity::Customer, Uuid::now_v7())
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// The one refusal of a batch of one.
fn refusal(r: crate::records::BatchReport) -> String {
    assert!(r.done.is_empty(), "{r:?}");
    assert_eq!(r.refused.len(), 1, "{r:?}");
    r.refused[0].1.clone()
}

/// A stored row, by table and id (`None` once purged).
async fn row(w: &World, table: Table, id: Uuid) -> Option<crate::store::Row> {
    w.crm.store().get(table, id).await.expect("get")
}

/// Deactivates a user (as the administrator).
async fn deactivate(w: &World, user: UserId) {
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

/// Transfer, share and unshare refuse a record the actor may not read as
/// not found — whether it is in the recycle bin or not, whoever it would be
/// shared with — and name it in a refusal only to who may read it.
pub async fn transfer_and_sharing_do_not_reveal_unreadable_records(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // 王五 cannot read 张三's customers (both see their own only).
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let kh = code(&c);
    let not_found = |m: &str| {
        assert!(m.contains("not found"), "{m}");
        assert!(!m.contains(&kh), "the code is not told: {m}");
    };
    // Transfer: live, and in the recycle bin.
    let m = refusal(
        w.crm
            .transfer_records(&w.wangwu, Entity::Customer, &[c.id], w.wangwu.user_id)
            .await
            .expect("transfer"),
    );
    not_found(&m);
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let m = refusal(
        w.crm
            .transfer_records(&w.wangwu, Entity::Customer, &[c.id], w.wangwu.user_id)
            .await
            .expect("transfer"),
    );
    not_found(&m);
    assert!(!m.contains("recycle bin"), "its state is not told: {m}");
    // Its owner is told it is in the recycle bin.
    let m = refusal(
        w.crm
            .transfer_records(&w.zhangsan, Entity::Customer, &[c.id], w.lisi.user_id)
            .await
            .expect("transfer"),
    );
    assert!(m.contains("recycle bin") && m.contains(&kh), "{m}");
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    // Share: with someone else, with oneself, for reading and editing.
    for (with, access) in [
        (w.zhaoliu.user_id, ShareAccess::Read),
        (w.zhaoliu.user_id, ShareAccess::Write),
        (w.wangwu.user_id, ShareAccess::Read),
    ] {
        let got = w
            .crm
            .share_record(&w.wangwu, Entity::Customer, c.id, with, access, None)
            .await;
        match got {
            Err(e @ Error::NotFound { .. }) => not_found(&e.to_string()),
            other => panic!("expected not found, got {other:?}"),
        }
    }
    // Unshare.
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.zhaoliu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    match w
        .crm
        .unshare_record(&w.wangwu, Entity::Customer, c.id, w.zhaoliu.user_id)
        .await
    {
        Err(e @ Error::NotFound { .. }) => not_found(&e.to_string()),
        other => panic!("expected not found, got {other:?}"),
    }
    // Once 王五 may read it (a share), he is told he may not, by its code.
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
    let m = refusal(
        w.crm
            .transfer_records(&w.wangwu, Entity::Customer, &[c.id], w.wangwu.user_id)
            .await
            .expect("transfer"),
    );
    assert!(m.contains("may not transfer") && m.contains(&kh), "{m}");
    for got in [
        w.crm
            .share_record(
                &w.wangwu,
                Entity::Customer,
                c.id,
                w.zhaoliu.user_id,
                ShareAccess::Read,
                None,
            )
            .await,
        w.crm
            .unshare_record(&w.wangwu, Entity::Customer, c.id, w.zhaoliu.user_id)
            .await,
    ] {
        match got {
            Err(Error::Forbidden(m)) => assert!(m.contains(&kh), "{m}"),
            other => panic!("expected forbidden, got {other:?}"),
        }
    }
    // The share with 赵六 is still there.
    assert_eq!(
        w.crm
            .list_shares(&w.zhangsan, Entity::Customer, c.id)
            .await
            .expect("shares")
            .len(),
        2
    );
}

/// Ending a share writes a `{entity}.unshared` event (like sharing writes
/// `{entity}.shared`), and its audit entry names the user the way sharing's
/// does (`share:{username}`).
pub async fn unsharing_is_recorded_like_sharing(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
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
        .unshare_record(&w.zhangsan, Entity::Customer, c.id, w.wangwu.user_id)
        .await
        .expect("unshare");
    let events = w.crm.pending_events("erp", 10_000).await.expect("events");
    let of = |t: &str| {
        events
            .iter()
            .filter(|e| e.event.event_type == t && e.event.record_id == c.id.0)
            .map(|e| e.event.payload.to_value())
            .collect::<Vec<_>>()
    };
    let shared = of("customer.shared");
    let unshared = of("customer.unshared");
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(unshared.len(), 1, "{unshared:?}");
    assert_eq!(unshared[0]["user_id"], shared[0]["user_id"]);
    assert_eq!(unshared[0]["user_id"], json!(w.wangwu.user_id.to_string()));
    assert_eq!(unshared[0]["access"], json!("write"));
    let history = w
        .crm
        .store()
        .history(Table::Customers, c.id.0)
        .await
        .expect("history");
    let field = |action: &str| {
        history
            .iter()
            .filter(|h| h.action == action)
            .flat_map(|h| h.changes.iter().map(|ch| ch.field.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(field("share"), vec!["share:wangwu".to_string()]);
    assert_eq!(field("unshare"), vec!["share:wangwu".to_string()]);
    // Ending a share that is not there is refused, naming the user.
    match w
        .crm
        .unshare_record(&w.zhangsan, Entity::Customer, c.id, w.wangwu.user_id)
        .await
    {
        Err(e @ Error::NotFound { .. }) => assert!(e.to_string().contains("wangwu"), "{e}"),
        other => panic!("expected not found, got {other:?}"),
    }
}

/// Sharing refuses, like transfer, a record in the recycle bin and a
/// deactivated user.
pub async fn sharing_refuses_the_recycle_bin_and_deactivated_users(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let kh = code(&c);
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    match w
        .crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
    {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains("recycle bin") && m.contains(&kh), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let r = w
        .crm
        .share_records(
            &w.zhangsan,
            Entity::Customer,
            &[c.id],
            w.wangwu.user_id,
            ShareAccess::Read,
            None,
        )
        .await;
    assert!(refusal(r).contains("recycle bin"));
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    deactivate(&w, w.wangwu.user_id).await;
    match w
        .crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let m = v.to_string();
            assert!(m.contains("wangwu") && m.contains("deactivated"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        w.crm
            .list_shares(&w.zhangsan, Entity::Customer, c.id)
            .await
            .expect("shares")
            .is_empty()
    );
    // An active user still gets the share.
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.zhaoliu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
}

/// Unarchiving refuses a record in the recycle bin, as archiving does: it
/// stays in the recycle bin, archived.
pub async fn unarchive_refuses_records_in_the_recycle_bin(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let kh = code(&c);
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let m = refusal(
        w.crm
            .unarchive_records(&w.zhangsan, Entity::Customer, &[c.id])
            .await,
    );
    assert!(m.contains("recycle bin") && m.contains(&kh), "{m}");
    let stored = row(&w, Table::Customers, c.id.0).await.expect("customer");
    assert!(!stored.get("deleted_at").is_null());
    assert!(!stored.get("archived_at").is_null());
    // Restored, it can be unarchived.
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let r = w
        .crm
        .unarchive_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
}

/// A contact, follow-up or opportunity is not restored on its own while
/// its customer is in the recycle bin (nor when the customer goes there
/// while the restore is written): it would be a live record of a dead
/// customer. The customer is named only to who may read it; restoring the
/// customer first lets the child come back.
pub async fn a_child_is_not_restored_while_its_customer_is_not_live(store: Arc<dyn Store>) {
    use crate::sales::NewOpportunity;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let kh = code(&c);
    let contact = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "任正非"}),
    )
    .await;
    let follow_up = create(
        &w,
        &w.zhangsan,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "channel": "call", "content": "电话沟通"}),
    )
    .await;
    let opp = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "数据中心".into(),
                customer_id: c.id.0,
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let opp_id = RecordId(opp.id);
    // A contact 王五 owns, of a customer he cannot read (created for him:
    // a contact is not transferred away from its customer).
    let theirs = create(
        &w,
        &w.admin,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "孙亚芳",
               "owner_id": w.wangwu.user_id.to_string()}),
    )
    .await;
    assert_eq!(theirs.owner_id, Some(w.wangwu.user_id));
    // The children go to the recycle bin first, then (later) the customer.
    for (entity, id) in [
        (Entity::Contact, contact.id),
        (Entity::FollowUp, follow_up.id),
        (Entity::Opportunity, opp_id),
    ] {
        let r = w.crm.delete_records(&w.zhangsan, entity, &[id]).await;
        assert_eq!(r.done, vec![id], "{r:?}");
    }
    let r = w
        .crm
        .delete_records(&w.wangwu, Entity::Contact, &[theirs.id])
        .await;
    assert_eq!(r.done, vec![theirs.id], "{r:?}");
    w.clock.advance(chrono::Duration::minutes(5));
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    for (entity, id) in [
        (Entity::Contact, contact.id),
        (Entity::FollowUp, follow_up.id),
        (Entity::Opportunity, opp_id),
    ] {
        let m = refusal(w.crm.restore_records(&w.zhangsan, entity, &[id]).await);
        assert!(
            m.contains(&format!("restore customer {kh} first")),
            "{entity}: {m}"
        );
        let stored = row(&w, entity.table(), id.0).await.expect("row");
        assert!(
            !stored.get("deleted_at").is_null(),
            "{entity} stays deleted"
        );
    }
    let m = refusal(
        w.crm
            .restore_records(&w.wangwu, Entity::Contact, &[theirs.id])
            .await,
    );
    assert!(
        m.contains("its customer is in the recycle bin") && !m.contains(&kh),
        "{m}"
    );
    // The customer back, its children can come back too.
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    for (entity, id) in [
        (Entity::Contact, contact.id),
        (Entity::FollowUp, follow_up.id),
        (Entity::Opportunity, opp_id),
    ] {
        let r = w.crm.restore_records(&w.zhangsan, entity, &[id]).await;
        assert_eq!(r.done, vec![id], "{entity}: {r:?}");
    }
    // The customer deleted while the contact's restore is written: the
    // restore is refused, and the contact stays in the recycle bin. (Its
    // open opportunity goes first: it would keep the customer.)
    for (entity, id) in [(Entity::Contact, contact.id), (Entity::Opportunity, opp_id)] {
        let r = w.crm.delete_records(&w.zhangsan, entity, &[id]).await;
        assert_eq!(r.done, vec![id], "{r:?}");
    }
    w.clock.advance(chrono::Duration::minutes(5));
    let (o, actor, id) = (other.clone(), w.zhangsan.clone(), c.id);
    hooked.before_write(Table::Contacts, async move {
        let r = o.delete_records(&actor, Entity::Customer, &[id]).await;
        assert_eq!(r.done, vec![id], "{r:?}");
    });
    let got = w
        .crm
        .restore_records(&w.zhangsan, Entity::Contact, &[contact.id])
        .await;
    let m = refusal(got);
    assert!(m.contains("meanwhile"), "{m}");
    let stored = row(&w, Table::Contacts, contact.id.0)
        .await
        .expect("contact");
    assert!(
        !stored.get("deleted_at").is_null(),
        "the contact stays deleted"
    );
    // Nor unarchived: an archived opportunity stays archived while its
    // customer is in the recycle bin.
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Opportunity, &[opp_id])
        .await;
    assert_eq!(r.done, vec![opp_id], "{r:?}");
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Opportunity, &[opp_id])
        .await;
    assert_eq!(r.done, vec![opp_id], "{r:?}");
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let m = refusal(
        w.crm
            .unarchive_records(&w.zhangsan, Entity::Opportunity, &[opp_id])
            .await,
    );
    assert!(m.contains("cannot be unarchived") && m.contains(&kh), "{m}");
    let stored = row(&w, Table::Opportunities, opp_id.0)
        .await
        .expect("opportunity");
    assert!(!stored.get("archived_at").is_null(), "still archived");
}

/// The customer's count of open opportunities (what the pools' "open
/// deals" exemption reads).
async fn open_count(w: &World, customer: RecordId) -> i64 {
    row(w, Table::Customers, customer.0)
        .await
        .expect("customer")
        .get("open_opportunities")
        .as_int()
        .unwrap_or(-1)
}

/// Deleting, restoring, purging, archiving and unarchiving an open
/// opportunity keep its customer's count of open opportunities right (a
/// closed one leaves it as it is), and the count cannot miss an
/// opportunity created meanwhile: the write fails as a conflict instead.
pub async fn open_opportunity_counts_follow_the_recycle_bin_and_archive(store: Arc<dyn Store>) {
    use crate::sales::{NewOpportunity, StageCommand};
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let new = |name: &str| NewOpportunity {
        name: name.into(),
        customer_id: c.id.0,
        ..NewOpportunity::default()
    };
    let first = w
        .crm
        .create_opportunity(&w.zhangsan, new("数据中心"))
        .await
        .expect("first");
    let second = w
        .crm
        .create_opportunity(&w.zhangsan, new("云服务"))
        .await
        .expect("second");
    let (a, b) = (RecordId(first.id), RecordId(second.id));
    assert_eq!(open_count(&w, c.id).await, 2);
    let check = |r: crate::records::BatchReport, id: RecordId| {
        assert_eq!(r.done, vec![id], "{r:?}");
    };
    check(
        w.crm
            .delete_records(&w.zhangsan, Entity::Opportunity, &[a])
            .await,
        a,
    );
    assert_eq!(open_count(&w, c.id).await, 1, "deleted");
    check(
        w.crm
            .restore_records(&w.zhangsan, Entity::Opportunity, &[a])
            .await,
        a,
    );
    assert_eq!(open_count(&w, c.id).await, 2, "restored");
    check(
        w.crm
            .archive_records(&w.zhangsan, Entity::Opportunity, &[a])
            .await,
        a,
    );
    assert_eq!(open_count(&w, c.id).await, 1, "archived");
    check(
        w.crm
            .unarchive_records(&w.zhangsan, Entity::Opportunity, &[a])
            .await,
        a,
    );
    assert_eq!(open_count(&w, c.id).await, 2, "unarchived");
    // A closed opportunity is not counted, deleted or not.
    w.crm
        .change_opportunity_stage(
            &w.zhangsan,
            second.id,
            second.version,
            StageCommand::Lose("价格".into()),
        )
        .await
        .expect("lose");
    assert_eq!(open_count(&w, c.id).await, 1);
    check(
        w.crm
            .delete_records(&w.zhangsan, Entity::Opportunity, &[b])
            .await,
        b,
    );
    assert_eq!(open_count(&w, c.id).await, 1);
    // Another opportunity created just after the delete counted: the
    // delete fails as a conflict, and the count stays right.
    let (o, actor, meanwhile) = (other.clone(), w.zhangsan.clone(), new("同时创建"));
    hooked.after_select(Table::Opportunities, async move {
        o.create_opportunity(&actor, meanwhile)
            .await
            .expect("created meanwhile");
    });
    let m = refusal(
        w.crm
            .delete_records(&w.zhangsan, Entity::Opportunity, &[a])
            .await,
    );
    // (Named as people name it: the customer's code, not its table and id.)
    assert!(
        m.contains(&format!(
            "customer {} was changed by someone else",
            code(&c)
        )),
        "{m}"
    );
    assert_eq!(open_count(&w, c.id).await, 2);
    check(
        w.crm
            .delete_records(&w.zhangsan, Entity::Opportunity, &[a])
            .await,
        a,
    );
    assert_eq!(open_count(&w, c.id).await, 1);
    check(
        w.crm
            .purge_records(&w.zhangsan, Entity::Opportunity, &[a])
            .await,
        a,
    );
    assert_eq!(open_count(&w, c.id).await, 1, "purged");
    assert!(row(&w, Table::Opportunities, a.0).await.is_none());
}

/// A customer is not purged while opportunities, quotes or contracts
/// (live or in the recycle bin) refer to it — they have no foreign key to
/// go with it: the refusal names those the actor may read and counts the
/// others. Once they are purged the customer can be; one added while the
/// purge is written makes it fail.
pub async fn a_customer_is_not_purged_while_sales_records_refer_to_it(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{NewContract, NewOpportunity};
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let kh = code(&c);
    let opp = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "数据中心".into(),
                customer_id: c.id.0,
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let quote = |customer: Uuid| crate::sales::NewQuote {
        title: "华为报价".into(),
        customer_id: customer,
        lines: vec![crate::sales::LineInput {
            product_id: None,
            name: "维保服务".into(),
            unit: None,
            quantity: 1,
            unit_price: Some(Money::cny(100_000)),
            discount_bp: 0,
            tax_rate: None,
        }],
        ..Default::default()
    };
    let contract = |customer: Uuid| NewContract {
        title: "华为年度服务合同".into(),
        customer_id: customer,
        amount: Some(Money::cny(1_000_000)),
        ..NewContract::default()
    };
    let k = w
        .crm
        .create_contract(&w.zhangsan, contract(c.id.0))
        .await
        .expect("contract");
    // The contract is 王五's now: 张三 cannot read it.
    w.crm
        .transfer_records(
            &w.zhangsan,
            Entity::Contract,
            &[RecordId(k.id)],
            w.wangwu.user_id,
        )
        .await
        .expect("transfer");
    // (An open opportunity would keep the customer out of the recycle bin:
    // it goes there first, and still refers to the customer.)
    let o = RecordId(opp.id);
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Opportunity, &[o])
        .await;
    assert_eq!(r.done, vec![o], "{r:?}");
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let m = refusal(
        w.crm
            .purge_records(&w.zhangsan, Entity::Customer, &[c.id])
            .await,
    );
    assert!(m.contains(&kh) && m.contains(&opp.code), "{m}");
    assert!(
        m.contains("1 other sales record") && !m.contains(&k.code),
        "{m}"
    );
    assert!(row(&w, Table::Customers, c.id.0).await.is_some());
    // Whoever may read them all sees them named.
    let m = refusal(
        w.crm
            .purge_records(&w.admin, Entity::Customer, &[c.id])
            .await,
    );
    assert!(m.contains(&opp.code) && m.contains(&k.code), "{m}");
    for (actor, entity, id) in [
        (&w.zhangsan, Entity::Opportunity, o),
        (&w.wangwu, Entity::Contract, RecordId(k.id)),
    ] {
        if entity == Entity::Contract {
            let r = w.crm.delete_records(actor, entity, &[id]).await;
            assert_eq!(r.done, vec![id], "{r:?}");
        }
        let r = w.crm.purge_records(actor, entity, &[id]).await;
        assert_eq!(r.done, vec![id], "{entity}: {r:?}");
    }
    // No sales record is added to a customer in the recycle bin …
    for what in ["opportunity", "quote", "contract"] {
        let got = match what {
            "opportunity" => w
                .crm
                .create_opportunity(
                    &w.zhangsan,
                    NewOpportunity {
                        name: "回收站商机".into(),
                        customer_id: c.id.0,
                        ..NewOpportunity::default()
                    },
                )
                .await
                .map(|_| ()),
            "quote" => w
                .crm
                .create_quote(&w.zhangsan, quote(c.id.0))
                .await
                .map(|_| ()),
            _ => w
                .crm
                .create_contract(&w.zhangsan, contract(c.id.0))
                .await
                .map(|_| ()),
        };
        match got {
            Err(Error::InvalidState(m)) => {
                assert!(m.contains("recycle bin") && m.contains(&kh), "{what}: {m}")
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    let r = w
        .crm
        .purge_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    // … nor while it is deleted as the contract or quote is written: the
    // create fails, and the purge that follows finds nothing in its way.
    for quoting in [false, true] {
        let c = w.customer(&w.zhangsan, "并发删除有限公司", json!({})).await;
        let (h, actor, id) = (other.clone(), w.zhangsan.clone(), c.id);
        let table = if quoting {
            Table::Quotes
        } else {
            Table::Contracts
        };
        hooked.before_write(table, async move {
            let r = h.delete_records(&actor, Entity::Customer, &[id]).await;
            assert_eq!(r.done, vec![id], "{r:?}");
        });
        let got = if quoting {
            w.crm
                .create_quote(&w.zhangsan, quote(c.id.0))
                .await
                .map(|_| ())
        } else {
            w.crm
                .create_contract(&w.zhangsan, contract(c.id.0))
                .await
                .map(|_| ())
        };
        match got {
            Err(Error::InvalidState(m)) => assert!(m.contains("meanwhile"), "{m}"),
            other => panic!("expected the create refused, got {other:?}"),
        }
        let r = w
            .crm
            .purge_records(&w.zhangsan, Entity::Customer, &[c.id])
            .await;
        assert_eq!(r.done, vec![c.id], "{r:?}");
    }
}

/// The 360° view shows a customer's sales documents with their real fields
/// (name or title, status or stage, amounts, received and outstanding),
/// the current version of each quote only, and the payments and invoices
/// of the contracts the actor may read, newest first; a user who may not
/// read contracts sees no contract, payment or invoice (and no error).
pub async fn the_customer_view_shows_sales_documents_payments_and_invoices(store: Arc<dyn Store>) {
    use crate::auth::{Action, Permission};
    use crate::money::Money;
    use crate::sales::{
        ContractStatus, InvoiceType, LineInput, NewContract, NewOpportunity, NewQuote, PaymentInput,
    };
    let w = with_sales_rights(World::new(store).await).await;
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let opp = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "数据中心扩容".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(5_000_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let line = |fen: i64| LineInput {
        product_id: None,
        name: "维保服务".into(),
        unit: None,
        quantity: 1,
        unit_price: Some(Money::cny(fen)),
        discount_bp: 0,
        tax_rate: None,
    };
    let q1 = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "华为维保报价".into(),
                customer_id: c.id.0,
                opportunity_id: Some(opp.id),
                lines: vec![line(100_000)],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let q2 = w
        .crm
        .revise_quote(&w.zhangsan, q1.id, vec![line(90_000)], None)
        .await
        .expect("revise");
    assert_eq!(q2.quote_version, 2);
    let contract = |title: &str| NewContract {
        title: title.into(),
        customer_id: c.id.0,
        amount: Some(Money::cny(1_000_000)),
        ..NewContract::default()
    };
    let pay = |fen: i64, receipt: &str| PaymentInput {
        amount: Money::cny(fen),
        received_on: w.crm.today(),
        method: None,
        receipt_no: Some(receipt.into()),
        notes: None,
    };
    // Two executing contracts, each paid and invoiced; the second becomes
    // 王五's, which 张三 cannot read.
    let mut contracts = Vec::new();
    for (title, receipt, number) in [
        ("华为年度服务合同", "R-001", "04400001"),
        ("华为备件合同", "R-002", "04400002"),
    ] {
        let k = w
            .crm
            .create_contract(&w.zhangsan, contract(title))
            .await
            .expect("contract");
        let (k, _) = w
            .crm
            .submit_contract(&w.zhangsan, k.id, Vec::new(), None)
            .await
            .expect("submit");
        assert_eq!(k.status, ContractStatus::Executing);
        let (p, _) = w
            .crm
            .record_payment(&w.zhangsan, k.id, pay(300_000, receipt))
            .await
            .expect("payment");
        assert_eq!(p.status, "confirmed");
        w.crm
            .add_invoice(
                &w.zhangsan,
                k.id,
                InvoiceType::VatSpecial,
                Money::cny(300_000),
                Some(number.into()),
                Some(w.crm.today()),
            )
            .await
            .expect("invoice");
        contracts.push(k);
        w.clock.advance(chrono::Duration::days(1));
    }
    let (k, theirs) = (&contracts[0], &contracts[1]);
    w.crm
        .transfer_records(
            &w.zhangsan,
            Entity::Contract,
            &[RecordId(theirs.id)],
            w.wangwu.user_id,
        )
        .await
        .expect("transfer");

    let view = w.crm.customer_view(&w.zhangsan, c.id).await.expect("view");
    let section = |name: &str| {
        view.sections
            .get(name)
            .unwrap_or_else(|| panic!("a {name} section: {:?}", view.sections.keys()))
    };
    let one = |name: &str| {
        let s = section(name);
        assert_eq!((s.total, s.items.len()), (1, 1), "{name}: {s:?}");
        s.items[0].fields.clone()
    };
    let minor = |f: &std::collections::BTreeMap<String, serde_json::Value>, k: &str| {
        f.get(k)
            .and_then(|m| m.get("minor"))
            .and_then(serde_json::Value::as_i64)
    };
    // The opportunity, with its name, stage, status and amount.
    let o = one("opportunities");
    assert_eq!(section("opportunities").items[0].id.0, opp.id);
    assert_eq!(o.get("name"), Some(&json!("数据中心扩容")));
    assert_eq!(o.get("status"), Some(&json!("tracking")));
    assert_eq!(o.get("stage"), Some(&json!(opp.stage)));
    assert_eq!(o.get("stage_name"), Some(&json!(opp.stage_name)));
    assert_eq!(minor(&o, "amount"), Some(5_000_000));
    // One quote: the current version, with its title, status and total.
    let q = one("quotes");
    assert_eq!(section("quotes").items[0].id.0, q2.id);
    assert_eq!(q.get("title"), Some(&json!("华为维保报价")));
    assert_eq!(q.get("quote_version"), Some(&json!(2)));
    assert_eq!(q.get("status"), Some(&json!(q2.status)));
    assert_eq!(
        q.get("totals").and_then(|t| t.get("amount")),
        Some(&json!(q2.totals.amount))
    );
    // The contract the actor may read, with what was received and is owed.
    let kf = one("contracts");
    assert_eq!(
        section("contracts").items[0].code.as_deref(),
        Some(&*k.code)
    );
    assert_eq!(kf.get("title"), Some(&json!("华为年度服务合同")));
    assert_eq!(kf.get("status"), Some(&json!("executing")));
    assert_eq!(minor(&kf, "amount"), Some(1_000_000));
    assert_eq!(minor(&kf, "received"), Some(300_000));
    assert_eq!(minor(&kf, "outstanding"), Some(700_000));
    // Its payment and invoice; not those of 王五's contract.
    let p = one("payments");
    assert_eq!(p.get("receipt_no"), Some(&json!("R-001")));
    assert_eq!(p.get("status"), Some(&json!("confirmed")));
    assert_eq!(p.get("contract_code"), Some(&json!(k.code)));
    assert_eq!(minor(&p, "amount"), Some(300_000));
    let i = one("invoices");
    assert_eq!(i.get("number"), Some(&json!("04400001")));
    assert_eq!(i.get("kind"), Some(&json!("issued")));
    assert_eq!(i.get("contract_title"), Some(&json!("华为年度服务合同")));
    assert_eq!(minor(&i, "amount"), Some(300_000));
    // The administrator sees both contracts' payments, newest first.
    let all = w.crm.customer_view(&w.admin, c.id).await.expect("view");
    let receipts: Vec<_> = all.sections["payments"]
        .items
        .iter()
        .map(|p| p.fields.get("receipt_no").cloned())
        .collect();
    assert_eq!(
        receipts,
        vec![Some(json!("R-002")), Some(json!("R-001"))],
        "newest first"
    );
    assert_eq!(all.sections["invoices"].total, 2);
    assert_eq!(all.sections["quotes"].total, 1);

    // 赵六 (same group) may read opportunities and quotes but not contracts:
    // no contract, payment or invoice section.
    let role = w.zhaoliu.roles.first().expect("a role").clone();
    let permissions: Vec<Permission> = role
        .permissions
        .iter()
        .filter(|p| p.entity != Entity::Contract)
        .cloned()
        .collect();
    assert!(
        permissions
            .iter()
            .any(|p| p.entity == Entity::Quote && p.action == Action::Read)
    );
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
        .expect("regrant");
    let zhaoliu = w.crm.actor(w.zhaoliu.user_id).await.expect("actor");
    let view = w.crm.customer_view(&zhaoliu, c.id).await.expect("view");
    assert_eq!(view.sections["opportunities"].total, 1);
    assert_eq!(view.sections["quotes"].total, 1);
    for hidden in ["contracts", "payments", "invoices"] {
        assert!(
            !view.sections.contains_key(hidden),
            "{hidden}: {:?}",
            view.sections.get(hidden)
        );
    }
}

/// A quote, a quote's new version, a contract, or a quote's conversion into
/// a contract is not written for an opportunity that was marked lost or
/// expired (or deleted) after the document read it open: it is refused as
/// one made for the closed opportunity is, and nothing is written. The
/// document and the closing guard a common key, so on PostgreSQL they wait
/// for each other. A document written before the opportunity closes stays,
/// and closing the opportunity after it works as before.
pub async fn a_document_is_not_made_for_an_opportunity_closed_meanwhile(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{
        LineInput, NewContract, NewOpportunity, NewQuote, QuoteStatus, StageCommand,
    };
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let opp = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "数据中心".into(),
                customer_id: c.id.0,
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let lines = || {
        vec![LineInput {
            product_id: None,
            name: "维保服务".into(),
            unit: None,
            quantity: 1,
            unit_price: Some(Money::cny(100_000)),
            discount_bp: 0,
            tax_rate: None,
        }]
    };
    let quote = || NewQuote {
        title: "数据中心报价".into(),
        customer_id: c.id.0,
        opportunity_id: Some(opp.id),
        lines: lines(),
        ..NewQuote::default()
    };
    let contract = || NewContract {
        title: "数据中心合同".into(),
        customer_id: c.id.0,
        opportunity_id: Some(opp.id),
        amount: Some(Money::cny(1_000_000)),
        ..NewContract::default()
    };
    // The opportunity's rows of `table` (quote versions, contracts), live
    // or not.
    let documents = |table: Table| {
        let mut sel = crate::store::Select::all(
            table,
            w.zhangsan.company_id.0,
            crate::clock::Clock::now(&*w.clock),
        );
        sel.lifecycle = crate::store::Lifecycle::Any;
        sel.filter = crate::store::Filter::Cmp(
            crate::store::Col::Column("opportunity_id"),
            crate::store::CmpOp::Eq,
            crate::value::Value::Id(opp.id),
        );
        let store = w.crm.store().clone();
        async move { store.select(&sel).await.expect("select").rows }
    };
    let status = || async {
        w.crm
            .opportunity(&w.zhangsan, opp.id)
            .await
            .expect("opportunity")
            .status
    };
    // A stage command on the opportunity at its version now, through `crm`.
    let stage = |crm: Crm, command: StageCommand| {
        let (actor, id) = (w.zhangsan.clone(), opp.id);
        async move {
            let v = crm
                .opportunity(&actor, id)
                .await
                .expect("opportunity")
                .version;
            crm.change_opportunity_stage(&actor, id, v, command)
                .await
                .unwrap_or_else(|e| panic!("stage: {e}"));
        }
    };
    let lose = || StageCommand::Lose("价格".into());
    // The guard keys of the change set written after `written` change sets
    // with guards (it must carry guards itself).
    let keys_of = |written: usize| {
        let keys = hooked.guard_keys();
        assert_eq!(keys.len(), written + 1, "the change set carries guards");
        keys.last().cloned().unwrap_or_default()
    };
    let invalid = |what: &str, got: crate::error::Result<String>| match got {
        Err(Error::InvalidState(m)) => m,
        other => panic!("{what}: {other:?}"),
    };

    // In order, the quote first: it is written, and the opportunity is
    // then marked lost as before, the quote staying. The two guard a
    // common key.
    let written = hooked.guard_keys().len();
    let q = w
        .crm
        .create_quote(&w.zhangsan, quote())
        .await
        .expect("quote for the open opportunity");
    let quoting = keys_of(written);
    stage(w.crm.clone(), lose()).await;
    let closing = keys_of(written + 1);
    assert!(
        closing.iter().any(|k| quoting.contains(k)),
        "{closing:?} / {quoting:?}"
    );
    assert_eq!(status().await, crate::sales::OppStatus::Lost);
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("quote").status,
        QuoteStatus::Draft
    );
    // Lost, it takes no new quote or contract.
    let plain_quote = invalid(
        "a quote for a lost opportunity",
        w.crm
            .create_quote(&w.zhangsan, quote())
            .await
            .map(|q| q.code),
    );
    assert!(
        plain_quote.contains(&opp.code)
            && plain_quote.contains("is lost")
            && plain_quote.contains("reopen it before making a quote for it"),
        "{plain_quote}"
    );
    let plain_contract = invalid(
        "a contract for a lost opportunity",
        w.crm
            .create_contract(&w.zhangsan, contract())
            .await
            .map(|k| k.code),
    );
    assert!(
        plain_contract.contains("reopen it before making a contract for it"),
        "{plain_contract}"
    );

    // Marked lost after the quote read it open: the quote is refused as
    // above, and no quote row is written.
    stage(w.crm.clone(), StageCommand::Reopen).await;
    hooked.before_write(Table::Quotes, stage(other.clone(), lose()));
    let raced = invalid(
        "a quote for an opportunity lost meanwhile",
        w.crm
            .create_quote(&w.zhangsan, quote())
            .await
            .map(|q| q.code),
    );
    assert_eq!(raced, plain_quote);
    assert_eq!(status().await, crate::sales::OppStatus::Lost);
    let quotes = documents(Table::Quotes).await;
    assert_eq!(
        quotes.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![q.id],
        "only the quote made before it was lost"
    );

    // Expired while a new version of the quote is written: no version.
    stage(w.crm.clone(), StageCommand::Reopen).await;
    hooked.before_write(Table::Quotes, stage(other.clone(), StageCommand::Expire));
    let raced = invalid(
        "a quote version for an opportunity expired meanwhile",
        w.crm
            .revise_quote(&w.zhangsan, q.id, lines(), None)
            .await
            .map(|q| q.code),
    );
    let plain = invalid(
        "a quote version for an expired opportunity",
        w.crm
            .revise_quote(&w.zhangsan, q.id, lines(), None)
            .await
            .map(|q| q.code),
    );
    assert_eq!(raced, plain);
    assert!(
        raced.contains("is expired") && raced.contains("reopen it before revising the quote"),
        "{raced}"
    );
    assert_eq!(documents(Table::Quotes).await.len(), 1, "no new version");
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("quote").status,
        QuoteStatus::Draft,
        "the version stays current"
    );

    // Marked lost while a contract for it is written: no contract.
    stage(w.crm.clone(), StageCommand::Reopen).await;
    hooked.before_write(Table::Contracts, stage(other.clone(), lose()));
    let raced = invalid(
        "a contract for an opportunity lost meanwhile",
        w.crm
            .create_contract(&w.zhangsan, contract())
            .await
            .map(|k| k.code),
    );
    assert_eq!(raced, plain_contract);
    assert!(documents(Table::Contracts).await.is_empty());

    // Expired while the approved quote becomes a contract: no contract,
    // and the quote stays approved.
    stage(w.crm.clone(), StageCommand::Reopen).await;
    let (approved, _) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit");
    assert_eq!(approved.status, QuoteStatus::Approved);
    let details = || NewContract {
        title: String::new(),
        customer_id: c.id.0,
        ..NewContract::default()
    };
    hooked.before_write(Table::Contracts, stage(other.clone(), StageCommand::Expire));
    let raced = invalid(
        "a quote's conversion for an opportunity expired meanwhile",
        w.crm
            .quote_to_contract(&w.zhangsan, q.id, details())
            .await
            .map(|k| k.code),
    );
    assert!(
        raced.contains("is expired") && raced.contains("reopen it before making a contract for it"),
        "{raced}"
    );
    assert!(documents(Table::Contracts).await.is_empty());
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("quote").status,
        QuoteStatus::Approved
    );

    // Deleted while a quote for it is written: no quote either.
    stage(w.crm.clone(), StageCommand::Reopen).await;
    let (o, actor, id) = (other.clone(), w.zhangsan.clone(), RecordId(opp.id));
    hooked.before_write(Table::Quotes, async move {
        let r = o.delete_records(&actor, Entity::Opportunity, &[id]).await;
        assert_eq!(r.done, vec![id], "{r:?}");
    });
    let raced = invalid(
        "a quote for an opportunity deleted meanwhile",
        w.crm
            .create_quote(&w.zhangsan, quote())
            .await
            .map(|q| q.code),
    );
    assert!(
        raced.contains(&opp.code) && raced.contains("deleted meanwhile"),
        "{raced}"
    );
    assert_eq!(documents(Table::Quotes).await.len(), 1);
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Opportunity, &[id])
        .await;
    assert_eq!(r.done, vec![id], "{r:?}");

    // Open again, the quote converts; the opportunity is then marked lost
    // as before, the contract staying, and the two guard a common key.
    let written = hooked.guard_keys().len();
    let k = w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, details())
        .await
        .expect("contract for the open opportunity");
    let contracting = keys_of(written);
    assert_eq!(k.opportunity_id, Some(opp.id));
    stage(w.crm.clone(), lose()).await;
    let closing = keys_of(written + 1);
    assert!(
        closing.iter().any(|k| contracting.contains(k)),
        "{closing:?} / {contracting:?}"
    );
    assert_eq!(status().await, crate::sales::OppStatus::Lost);
    assert_eq!(documents(Table::Contracts).await.len(), 1);
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("quote").status,
        QuoteStatus::Converted
    );
}

/// A customer whose contract is still owed money is neither deleted nor
/// archived (its receivables would be a deleted customer's), nor released
/// or moved into a pool, naming the contract; once the contract is
/// terminated it may be.
pub async fn a_customer_owed_money_stays_in_the_working_set(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractStatus, NewContract, PaymentInput};
    let w = with_sales_rights(World::new(store).await).await;
    let c = w
        .customer(&w.zhangsan, "重庆长江物流有限公司", json!({}))
        .await;
    let k = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "年度物流合同".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(100_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    // A draft owes nothing yet: it does not hold the customer.
    let (k, _) = w
        .crm
        .submit_contract(&w.zhangsan, k.id, Vec::new(), None)
        .await
        .expect("submit");
    assert_eq!(k.status, ContractStatus::Executing);
    w.crm
        .record_payment(
            &w.zhangsan,
            k.id,
            PaymentInput {
                amount: Money::cny(1_000),
                received_on: w.crm.today(),
                method: None,
                receipt_no: Some("R-OWED-1".into()),
                notes: None,
            },
        )
        .await
        .expect("payment");
    for (what, report) in [
        (
            "deleted",
            w.crm
                .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
                .await,
        ),
        (
            "archived",
            w.crm
                .archive_records(&w.zhangsan, Entity::Customer, &[c.id])
                .await,
        ),
    ] {
        let why = refusal(report);
        assert!(
            why.contains(&format!("cannot be {what}"))
                && why.contains(&k.code)
                && why.contains("owed"),
            "{why}"
        );
    }
    // Nor does it go into a pool, released or moved.
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "欠款测试公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: crate::pool::PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    for report in [
        w.crm
            .release(&w.zhangsan, &[c.id], "不再跟进", Some(pool.id))
            .await
            .expect("release"),
        w.crm
            .move_to_pool(
                &w.zhangsan,
                &[c.id],
                pool.id,
                crate::pool::Place::Invalid,
                "无效",
            )
            .await
            .expect("move"),
    ] {
        let why = refusal(report);
        assert!(
            why.contains("cannot go into a pool") && why.contains(&k.code),
            "{why}"
        );
    }
    // Nor does the recycling sweep take it when its rule comes due: it is
    // listed as refused, with why, is not among those about to be
    // recycled, and its explanation says so.
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
            .any(|(id, why)| *id == c.id && why.contains("owed money")),
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
        .explain_recycling(&w.zhangsan, c.id, None)
        .await
        .expect("explain");
    assert!(explained.summary.contains("owed money"), "{explained:#?}");
    let live = row(&w, Table::Customers, c.id.0).await.expect("customer");
    assert!(live.get("deleted_at").is_null() && live.get("archived_at").is_null());
    assert_eq!(live.get("owner_id").as_id(), Some(w.zhangsan.user_id.0));
    let why = refusal(
        w.crm
            .delete_records(&w.admin, Entity::Customer, &[c.id])
            .await,
    );
    assert!(
        why.contains(&k.code),
        "an administrator reads every contract: {why}"
    );
    w.crm
        .close_contract(&w.zhangsan, k.id, Some("客户停业"))
        .await
        .expect("terminate");
    let report = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[c.id])
        .await;
    assert_eq!(report.done, vec![c.id], "{report:?}");
}

/// A record the actor reads through a share but may not delete is a
/// refusal naming it by code, not "not found"; a stale edit's conflict
/// names it by code, and a version never written is an invalid version,
/// not someone else's change.
pub async fn refusals_name_records_by_code_and_say_why(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "共享测试有限公司", json!({})).await;
    let cust_code = code(&c);
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
    let why = refusal(
        w.crm
            .delete_records(&w.wangwu, Entity::Customer, &[c.id])
            .await,
    );
    assert!(
        why.contains("may not delete") && why.contains(&cust_code) && !why.contains("not found"),
        "{why}"
    );
    // Stale is a conflict; a version never written is invalid input.
    // (The share wrote the customer: version 2.)
    let edited = w
        .crm
        .update_record(
            &w.wangwu,
            Entity::Customer,
            c.id,
            2,
            fields(json!({"level": "A"})),
        )
        .await
        .expect("a write share edits");
    assert_eq!(edited.version, 3);
    match w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            1,
            fields(json!({"level": "B"})),
        )
        .await
    {
        Err(e @ Error::Conflict { .. }) => {
            assert!(e.to_string().contains(&cust_code), "{e}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    match w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            999,
            fields(json!({"level": "B"})),
        )
        .await
    {
        Err(Error::Validation(v)) => {
            assert!(v.to_string().contains("has no version 999"), "{v}");
        }
        other => panic!("expected an invalid version, got {other:?}"),
    }
    // A follow-up dated ahead is refused in the company's local time, as
    // typed.
    match w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({
                "customer_id": c.id.to_string(),
                "channel": "call",
                "content": "未来的跟进",
                "occurred_at": "2099-01-01"
            })),
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let text = v.to_string();
            assert!(
                text.contains("2099-01-01 00:00:00 is in the future") && !text.contains("+00:00"),
                "{text}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A contact belongs to its customer's owner: a user the customer is only
/// shared with (to read or to edit) may not add one, which would be
/// written where they could no longer read it; nothing is written. They
/// may still follow the customer up, and its owner adds contacts.
pub async fn contacts_are_not_added_through_a_share(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let kh = code(&c);
    let contacts_of = |c: RecordId| {
        let w = &w;
        async move {
            w.crm
                .list_records(
                    &w.admin,
                    Entity::Contact,
                    &crate::query::ListQuery::default().filter(crate::query::Cond::Eq(
                        "customer_id".into(),
                        json!(c.to_string()),
                    )),
                )
                .await
                .expect("contacts")
                .items
                .len()
        }
    };
    for access in [ShareAccess::Read, ShareAccess::Write] {
        w.crm
            .share_record(
                &w.zhangsan,
                Entity::Customer,
                c.id,
                w.wangwu.user_id,
                access,
                None,
            )
            .await
            .expect("share");
        match w
            .crm
            .create_record(
                &w.wangwu,
                Entity::Contact,
                fields(json!({"customer_id": kh, "name": "共享联系人", "mobile": "13900001111"})),
            )
            .await
        {
            Err(Error::Forbidden(m)) => assert!(
                m.contains(&kh) && m.contains("shared") && m.contains("owner"),
                "{m}"
            ),
            other => panic!("a contact through a {access:?} share: {other:?}"),
        }
        assert_eq!(contacts_of(c.id).await, 0);
    }
    w.crm
        .create_record(
            &w.wangwu,
            Entity::FollowUp,
            fields(json!({"customer_id": kh, "channel": "call", "content": "电话回访"})),
        )
        .await
        .expect("a sharee follows the customer up");
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": kh, "name": "王经理"})),
        )
        .await
        .expect("the owner adds a contact");
    assert_eq!(contacts_of(c.id).await, 1);
}

/// A customer's follow-ups are its timeline: whoever may read the customer
/// reads all of them, in its 360° view and one by one — a new owner the
/// calls made before the transfer — but changes only their own.
pub async fn a_customers_follow_ups_are_read_with_it(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let kh = code(&c);
    let f = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({"customer_id": kh, "channel": "call", "content": "首次拜访"})),
        )
        .await
        .expect("follow-up");
    // 王五 may not read 张三's customer, nor its follow-up.
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::FollowUp, f.id)
            .await
            .is_err()
    );
    // 张三's follow-up of a customer that stays his.
    let other = w
        .customer(&w.zhangsan, "中兴通讯股份有限公司", json!({}))
        .await;
    let kept = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({"customer_id": code(&other), "channel": "call", "content": "另一家"})),
        )
        .await
        .expect("follow-up");
    let listed = async |actor: &Actor| {
        let page = w
            .crm
            .list_records(actor, Entity::FollowUp, &ListQuery::default().with_total())
            .await
            .expect("list");
        assert_eq!(page.total, Some(page.items.len() as u64));
        let mut ids: Vec<_> = page.items.iter().map(|r| r.id).collect();
        ids.sort();
        ids
    };
    assert!(listed(&w.wangwu).await.is_empty());
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let view = w.crm.customer_view(&w.wangwu, c.id).await.expect("view");
    assert_eq!(view.follow_ups.total, 1);
    assert_eq!(view.follow_ups.items[0].id, f.id);
    let seen = w
        .crm
        .get_record(&w.wangwu, Entity::FollowUp, f.id)
        .await
        .expect("the new owner reads the customer's follow-up");
    assert_eq!(seen.text("content"), Some("首次拜访"));
    // By its code too (a list, narrowed by the data scope, does not hold it).
    let by_code = w
        .crm
        .get_record_by_code(
            &w.wangwu,
            Entity::FollowUp,
            f.code.as_deref().expect("code"),
        )
        .await
        .expect("by code");
    assert_eq!(by_code.id, f.id);
    // As typed with a Chinese input method: full width, lower case.
    let typed: String = f
        .code
        .as_deref()
        .expect("code")
        .to_lowercase()
        .chars()
        .map(crate::validate::fullwidth)
        .collect();
    let by_typed = w
        .crm
        .get_record_by_code(&w.wangwu, Entity::FollowUp, &typed)
        .await
        .expect("by the code typed in full width");
    assert_eq!(by_typed.id, f.id);
    assert!(
        w.crm
            .get_record_by_code(&w.lisi, Entity::FollowUp, "GJ-00000000-9999")
            .await
            .is_err()
    );
    // Lists and exports hold it too: the new owner's, only the customer's
    // timeline; the author's, both of his.
    assert_eq!(listed(&w.wangwu).await, vec![f.id]);
    let mut both = vec![f.id, kept.id];
    both.sort();
    assert_eq!(listed(&w.zhangsan).await, both);
    let searched = w
        .crm
        .list_records(
            &w.wangwu,
            Entity::FollowUp,
            &ListQuery::default().search("拜访"),
        )
        .await
        .expect("search");
    assert_eq!(searched.items.len(), 1);
    let cols = w
        .crm
        .export_columns(&w.wangwu, Entity::FollowUp, &[])
        .await
        .expect("columns");
    let mut cur = w
        .crm
        .export_cursor(&w.wangwu, Entity::FollowUp, ListQuery::default(), cols, 10)
        .await
        .expect("export");
    let mut exported = 0;
    while let Some(page) = cur.next_page().await.expect("page") {
        exported += page.len();
    }
    assert_eq!(exported, 1, "the customer's one follow-up");
    // Reading is not changing: the follow-up stays its author's.
    assert!(
        w.crm
            .update_record(
                &w.wangwu,
                Entity::FollowUp,
                f.id,
                seen.version,
                fields(json!({"content": "改"})),
            )
            .await
            .is_err()
    );
    assert_eq!(
        w.crm
            .get_record(&w.zhangsan, Entity::FollowUp, f.id)
            .await
            .expect("author")
            .text("content"),
        Some("首次拜访")
    );
    // Nor does its author, who lost the customer, change the customer's
    // timeline (and with it its follow-up dates) any more.
    match w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::FollowUp,
            f.id,
            seen.version,
            fields(json!({"content": "改"})),
        )
        .await
    {
        Err(Error::Forbidden(m)) => assert!(m.contains("no longer"), "{m}"),
        other => panic!("the former owner edits: {other:?}"),
    }
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::FollowUp, &[f.id])
        .await;
    assert!(r.done.is_empty(), "{r:?}");
    assert!(r.refused[0].1.contains("no longer"), "{r:?}");
    // Nor hands it on: no transfer, no share.
    let r = w
        .crm
        .transfer_records(&w.zhangsan, Entity::FollowUp, &[f.id], w.zhaoliu.user_id)
        .await
        .expect("report");
    assert!(
        r.done.is_empty() && r.refused[0].1.contains("no longer"),
        "{r:?}"
    );
    match w
        .crm
        .share_record(
            &w.zhangsan,
            Entity::FollowUp,
            f.id,
            w.zhaoliu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
    {
        Err(Error::Forbidden(m)) => assert!(m.contains("no longer"), "{m}"),
        other => panic!("the former owner shares: {other:?}"),
    }
    // His follow-up of the customer he kept stays his to change.
    let kept_now = w
        .crm
        .get_record(&w.zhangsan, Entity::FollowUp, kept.id)
        .await
        .expect("kept");
    w.crm
        .update_record(
            &w.zhangsan,
            Entity::FollowUp,
            kept.id,
            kept_now.version,
            fields(json!({"content": "改"})),
        )
        .await
        .expect("his own customer's follow-up");
}

/// A record's department is its owner's: when a user moves to another
/// department, the records they own (the recycle bin's too) move with them,
/// each audited, so the old department's scope no longer reads them.
pub async fn a_users_records_follow_them_to_another_department(store: Arc<dyn Store>) {
    use crate::org::UserPatch;
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let binned = w
        .customer(&w.zhangsan, "中兴通讯股份有限公司", json!({}))
        .await;
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[binned.id])
        .await;
    assert_eq!(r.done.len(), 1, "{r:?}");
    // 赵六 reads 销售一组's records.
    assert!(
        w.crm
            .get_record(&w.zhaoliu, Entity::Customer, c.id)
            .await
            .is_ok()
    );
    let user = w
        .crm
        .user(&w.admin, w.zhangsan.user_id)
        .await
        .expect("user");
    w.crm
        .update_user(
            &w.admin,
            w.zhangsan.user_id,
            user.version,
            UserPatch {
                department_id: Some(Some(w.group2)),
                ..UserPatch::default()
            },
        )
        .await
        .expect("move 张三 to 销售二组");
    let moved = w
        .crm
        .get_record(&w.admin, Entity::Customer, c.id)
        .await
        .expect("c");
    assert_eq!(moved.department_id, Some(w.group2));
    let binned = w
        .crm
        .store()
        .get(Table::Customers, binned.id.0)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(binned.get("department_id").as_id(), Some(w.group2.0));
    assert!(
        w.crm
            .get_record(&w.zhaoliu, Entity::Customer, c.id)
            .await
            .is_err()
    );
    let history = w
        .crm
        .history(&w.admin, Entity::Customer, c.id.0)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|e| e.changes.iter().any(|ch| ch.field == "department_id")),
        "{history:?}"
    );
}

/// A transfer is announced with the record's code and name beside its id,
/// and the former and new owners by username, for the customer and each
/// contact that follows it.
pub async fn transfers_announce_the_record_and_the_owners_by_name(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let (_, seen) = announced_since(&w, 0).await;
    let c = w.customer(&w.zhangsan, "转移客户有限公司", json!({})).await;
    let contact = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "转移联系人"}),
    )
    .await;
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert!(r.refused.is_empty(), "{r:?}");
    let (got, _) = announced_since(&w, seen).await;
    let of = |kind: &str, id: RecordId| {
        got.iter()
            .find(|(k, r, _)| k == kind && *r == id.0)
            .map(|(_, _, p)| p.clone())
            .unwrap_or_else(|| panic!("{kind} in {got:?}"))
    };
    let p = of("customer.transferred", c.id);
    assert_eq!(p["code"], json!(code(&c)));
    assert_eq!(p["name"], "转移客户有限公司");
    assert_eq!(p["from_username"], "zhangsan");
    assert_eq!(p["to_username"], "wangwu");
    assert_eq!(p["from"], json!(w.zhangsan.user_id.0.to_string()));
    assert_eq!(p["to"], json!(w.wangwu.user_id.0.to_string()));
    let p = of("contact.transferred", contact.id);
    assert_eq!(p["code"], json!(code(&contact)));
    assert_eq!(p["name"], "转移联系人");
    assert_eq!(p["from_username"], "zhangsan");
    assert_eq!(p["to_username"], "wangwu");
    assert_eq!(p["with_customer"], json!(code(&c)));
}

/// An approval whose approvers left is announced when it passes to
/// others (`approval.reassigned`): the approvers who left dropped, or the
/// administrators standing in for a step left with nobody — naming the
/// document (its type and code), the step, and the former and new
/// approvers by username.
pub async fn approvals_passed_to_other_approvers_are_announced(store: Arc<dyn Store>) {
    use crate::approval::{
        ApproverRule, Facts, Fallback, FlowDef, Restart, SignMode, StepDef, SubmitRequest,
    };
    let w = World::new(store).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "purchase_order",
            "采购审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "经理".into(),
                    conditions: Vec::new(),
                    approvers: ApproverRule::Users {
                        users: vec![w.lisi.user_id.0, w.zhaoliu.user_id.0],
                    },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
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
                document_id: Uuid::from_u128(0xC6A1),
                document_code: Some("CG-20261127-0001".into()),
                title: Some("服务器采购".into()),
                facts: Facts {
                    amount_minor: Some(1_000_000),
                    kind: None,
                    discount_bp: None,
                },
                picked: Vec::new(),
                comment: None,
            },
        )
        .await
        .expect("submitted");
    let (_, seen) = announced_since(&w, 0).await;
    let deactivate = |user: UserId| {
        let w = &w;
        async move {
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
    };
    // One approver left: the step waits for the other only.
    deactivate(w.zhaoliu.user_id).await;
    // The last one left: the administrators stand in.
    deactivate(w.lisi.user_id).await;
    let a = w
        .crm
        .refresh_approval(&w.zhangsan, a.id)
        .await
        .expect("refreshed");
    assert_eq!(a.pending_with, vec![w.admin.user_id.0]);
    let (got, _) = announced_since(&w, seen).await;
    let reassigned: Vec<&serde_json::Value> = got
        .iter()
        .filter(|(k, r, _)| k == "approval.reassigned" && *r == a.id)
        .map(|(_, _, p)| p)
        .collect();
    assert_eq!(reassigned.len(), 2, "{got:?}");
    for p in &reassigned {
        assert_eq!(p["doc_type"], "purchase_order");
        assert_eq!(p["document_code"], "CG-20261127-0001");
        assert_eq!(p["step"], "经理");
    }
    assert_eq!(reassigned[0]["from"], json!(["lisi", "zhaoliu"]));
    assert_eq!(reassigned[0]["to"], json!(["lisi"]));
    assert_eq!(reassigned[1]["from"], json!(["lisi"]));
    assert_eq!(reassigned[1]["to"], json!(["admin"]));
}

/// A customer's contacts are its owner's: they follow it on transfer and
/// pool moves, and are not transferred on their own — the refusal says to
/// transfer the customer, and the contact stays with the customer's owner.
/// A stray contact may be given back to the customer's owner.
pub async fn a_contact_moves_only_with_its_customer(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "联系人随客户有限公司", json!({}))
        .await;
    let kh = code(&c);
    let contact = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "随客户"}),
    )
    .await;
    for actor in [&w.zhangsan, &w.admin] {
        let m = refusal(
            w.crm
                .transfer_records(actor, Entity::Contact, &[contact.id], w.wangwu.user_id)
                .await
                .expect("transfer"),
        );
        assert!(
            m.contains(&code(&contact)) && m.contains(&format!("transfer customer {kh}")),
            "{m}"
        );
    }
    let stored = row(&w, Table::Contacts, contact.id.0).await.expect("row");
    assert_eq!(stored.get("owner_id").as_id(), Some(w.zhangsan.user_id.0));
    // Transferring the customer takes the contact along.
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let stored = row(&w, Table::Contacts, contact.id.0).await.expect("row");
    assert_eq!(stored.get("owner_id").as_id(), Some(w.wangwu.user_id.0));
    // A contact created for someone else goes back to the customer's owner.
    let stray = create(
        &w,
        &w.admin,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "走散的",
               "owner_id": w.zhaoliu.user_id.to_string()}),
    )
    .await;
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Contact, &[stray.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![stray.id], "{r:?}");
}

/// A follow-up deleted (or purged) no longer dates its customer's last
/// follow-up nor plans its next one: both are recomputed from the live
/// follow-ups in the same change, so a follow-up dated ahead and deleted
/// does not postpone recycling; restored, it dates them again. A next
/// follow-up date set by another follow-up stays.
pub async fn deleting_a_follow_up_recomputes_its_customers_dates(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "跟进日期有限公司", json!({})).await;
    let now = w.crm.now();
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let first = create(
        &w,
        &w.zhangsan,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "channel": "call", "content": "首次沟通",
               "occurred_at": at(now - chrono::Duration::days(3)),
               "next_follow_up_at": at(now + chrono::Duration::days(7))}),
    )
    .await;
    let fake = create(
        &w,
        &w.zhangsan,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "channel": "call", "content": "假跟进",
               "occurred_at": at(now + chrono::Duration::hours(20)),
               "next_follow_up_at": at(now + chrono::Duration::days(60))}),
    )
    .await;
    let dates = |w: &World| {
        let store = w.crm.store().clone();
        async move {
            let r = store
                .get(Table::Customers, c.id.0)
                .await
                .expect("get")
                .expect("customer");
            (
                r.get("last_follow_up_at").as_timestamp(),
                r.get("next_follow_up").clone(),
            )
        }
    };
    let day = |t: chrono::DateTime<chrono::Utc>| {
        crate::value::Value::Date(
            t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
                .date_naive(),
        )
    };
    assert_eq!(
        dates(&w).await,
        (
            Some(now + chrono::Duration::hours(20)),
            day(now + chrono::Duration::days(60))
        )
    );
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::FollowUp, &[fake.id])
        .await;
    assert_eq!(r.done, vec![fake.id], "{r:?}");
    assert_eq!(
        dates(&w).await,
        (
            Some(now - chrono::Duration::days(3)),
            day(now + chrono::Duration::days(7))
        ),
        "the deleted follow-up dates the customer no more"
    );
    // Restored, it dates it again.
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::FollowUp, &[fake.id])
        .await;
    assert_eq!(r.done, vec![fake.id], "{r:?}");
    assert_eq!(
        dates(&w).await,
        (
            Some(now + chrono::Duration::hours(20)),
            day(now + chrono::Duration::days(60))
        )
    );
    // Deleted and purged: gone for good, the dates stay recomputed.
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::FollowUp, &[fake.id])
        .await;
    assert_eq!(r.done, vec![fake.id], "{r:?}");
    let r = w
        .crm
        .purge_records(&w.zhangsan, Entity::FollowUp, &[fake.id])
        .await;
    assert_eq!(r.done, vec![fake.id], "{r:?}");
    assert_eq!(
        dates(&w).await,
        (
            Some(now - chrono::Duration::days(3)),
            day(now + chrono::Duration::days(7))
        )
    );
    // The last one gone, nothing dates the customer.
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::FollowUp, &[first.id])
        .await;
    assert_eq!(r.done, vec![first.id], "{r:?}");
    assert_eq!(dates(&w).await, (None, crate::value::Value::Null));
    // The change is in the customer's history.
    let history = w
        .crm
        .store()
        .history(Table::Customers, c.id.0)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|h| h.changes.iter().any(|ch| ch.field == "last_follow_up_at")),
        "{history:?}"
    );
}

/// Editing a follow-up's time or next follow-up date puts its customer's
/// follow-up dates right in the same change, as deleting and restoring it
/// do: the latest follow-up's new next date moves the customer's, an older
/// one's does not override it, a later time moves the last follow-up, and
/// the latest's next date cleared falls back to the one an older follow-up
/// planned. A colleague's write of the customer meanwhile is no conflict of
/// the editor's; one who may not edit the customer may not change a next
/// follow-up date.
pub async fn editing_a_follow_ups_dates_recomputes_its_customers_dates(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w.customer(&w.zhangsan, "跟进修改有限公司", json!({})).await;
    let now = w.crm.now();
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let days = chrono::Duration::days;
    let older = create(
        &w,
        &w.zhangsan,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "channel": "call", "content": "首次沟通",
               "occurred_at": at(now - days(3)),
               "next_follow_up_at": at(now + days(7))}),
    )
    .await;
    let latest = create(
        &w,
        &w.zhangsan,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "channel": "visit", "content": "上门拜访",
               "occurred_at": at(now - days(1)),
               "next_follow_up_at": at(now + days(10))}),
    )
    .await;
    let dates = |w: &World| {
        let store = w.crm.store().clone();
        async move {
            let r = store
                .get(Table::Customers, c.id.0)
                .await
                .expect("get")
                .expect("customer");
            (
                r.get("last_follow_up_at").as_timestamp(),
                r.get("next_follow_up").clone(),
            )
        }
    };
    let day = |t: chrono::DateTime<chrono::Utc>| {
        crate::value::Value::Date(
            t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
                .date_naive(),
        )
    };
    let edit = |actor: &Actor, r: &Record, v: serde_json::Value| {
        let (crm, actor, id, version) = (w.crm.clone(), actor.clone(), r.id, r.version);
        async move {
            crm.update_record(&actor, Entity::FollowUp, id, version, fields(v))
                .await
        }
    };
    assert_eq!(dates(&w).await, (Some(now - days(1)), day(now + days(10))));
    // The latest follow-up's next date corrected: the customer's moves.
    let latest = edit(
        &w.zhangsan,
        &latest,
        json!({"next_follow_up_at": at(now + days(14))}),
    )
    .await
    .expect("edit the latest's next date");
    assert_eq!(
        dates(&w).await,
        (Some(now - days(1)), day(now + days(14))),
        "the latest follow-up plans the customer's next one"
    );
    // An older follow-up's next date does not override the latest's.
    edit(
        &w.zhangsan,
        &older,
        json!({"next_follow_up_at": at(now + days(5))}),
    )
    .await
    .expect("edit the older's next date");
    assert_eq!(
        dates(&w).await,
        (Some(now - days(1)), day(now + days(14))),
        "an older follow-up plans nothing"
    );
    // Dated later: the customer's last follow-up moves with it.
    let latest = edit(
        &w.zhangsan,
        &latest,
        json!({"occurred_at": at(now - chrono::Duration::hours(2))}),
    )
    .await
    .expect("edit the latest's time");
    assert_eq!(
        dates(&w).await,
        (Some(now - chrono::Duration::hours(2)), day(now + days(14))),
        "the last follow-up moves"
    );
    // The latest's next date cleared: the older one's plan stands, as if
    // the latest were deleted.
    let latest = edit(&w.zhangsan, &latest, json!({"next_follow_up_at": null}))
        .await
        .expect("clear the latest's next date");
    assert_eq!(
        dates(&w).await,
        (Some(now - chrono::Duration::hours(2)), day(now + days(5))),
        "falls back to the older follow-up's plan"
    );
    // The owner edits the customer just before the edit writes it: the
    // edit is computed again from the customer as stored then.
    let (o, owner, cid) = (other.clone(), w.zhangsan.clone(), c.id);
    hooked.before_customer_write(async move {
        let read = o
            .get_record(&owner, Entity::Customer, cid)
            .await
            .expect("customer");
        o.update_record(
            &owner,
            Entity::Customer,
            cid,
            read.version,
            fields(json!({"notes": "同时修改"})),
        )
        .await
        .map(|_| ())
        .unwrap_or_else(|e| panic!("customer edited meanwhile: {e}"));
    });
    let latest = edit(
        &w.zhangsan,
        &latest,
        json!({"next_follow_up_at": at(now + days(20))}),
    )
    .await
    .expect("a customer changed meanwhile is read again");
    assert_eq!(
        dates(&w).await,
        (Some(now - chrono::Duration::hours(2)), day(now + days(20)))
    );
    let r = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("customer");
    assert_eq!(r.fields["notes"], json!("同时修改"), "{r:?}");
    assert_eq!(
        w.crm
            .get_record(&w.zhangsan, Entity::FollowUp, latest.id)
            .await
            .expect("follow-up")
            .version,
        latest.version,
        "the retried edit is written once"
    );
    // A colleague with a read share logs a follow-up, and may date it
    // later, but may not plan the customer's next follow-up by an edit.
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
    let theirs = create(
        &w,
        &w.wangwu,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "channel": "call", "content": "代为回访",
               "occurred_at": at(now - chrono::Duration::hours(1))}),
    )
    .await;
    match edit(
        &w.wangwu,
        &theirs,
        json!({"next_follow_up_at": at(now + days(30))}),
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
    edit(&w.wangwu, &theirs, json!({"occurred_at": at(now)}))
        .await
        .expect("the sharee dates their follow-up");
    assert_eq!(
        dates(&w).await,
        (Some(now), day(now + days(20))),
        "the sharee's follow-up is the last, the owner's plan stands"
    );
}

/// A share "until" a date lasts through that day: it ends at the start of
/// the next day in the company's time zone; until today is accepted, and a
/// date with a time ends then. A past end is refused.
pub async fn a_share_until_a_date_lasts_through_that_day(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // 2026-11-27 10:00 in the company (UTC+8).
    let local = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .expect("time")
            .and_local_timezone(chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
            .single()
            .expect("local")
            .with_timezone(&chrono::Utc)
    };
    assert_eq!(
        w.crm.share_end("2026-12-08").expect("a date"),
        local("2026-12-09 00:00")
    );
    assert_eq!(
        w.crm.share_end("2026-11-27").expect("today"),
        local("2026-11-28 00:00")
    );
    assert_eq!(
        w.crm.share_end("2026-12-08 18:00").expect("a time"),
        local("2026-12-08 18:00")
    );
    // As a share's end is shown: that day's end.
    assert_eq!(
        w.crm.share_end("2026-12-08 24:00").expect("the day's end"),
        local("2026-12-09 00:00")
    );
    for past in ["2026-11-26", "2026-11-27 09:00"] {
        let m = w.crm.share_end(past).expect_err(past);
        assert!(m.contains("in the future"), "{m}");
    }
    let c = w.customer(&w.zhangsan, "共享到期有限公司", json!({})).await;
    let until = w.crm.share_end("2026-11-27").expect("today");
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            ShareAccess::Read,
            Some(until),
        )
        .await
        .expect("share through today");
    w.clock.advance(chrono::Duration::hours(13));
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::Customer, c.id)
            .await
            .is_ok(),
        "read late on the last day"
    );
    w.clock.advance(chrono::Duration::hours(1));
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::Customer, c.id)
            .await
            .is_err(),
        "not the next day"
    );
}

/// A share widens which records a user reaches, never what they may do
/// with them: a write share to a user whose roles change no customers is
/// refused, naming the user, and a write share given while the user could
/// edit customers stops letting them edit once their roles no longer do.
pub async fn a_write_share_gives_no_rights_the_roles_lack(store: Arc<dyn Store>) {
    use crate::auth::{Action, DataScope, Permission};
    use crate::org::{NewUser, RoleSpec, UserPatch};
    let w = World::new(store).await;
    let reader = w
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
    let kefu = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "kefu".into(),
                display_name: "刘客服".into(),
                department_id: Some(w.sales),
                role_ids: vec![reader.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    let c = w.customer(&w.zhangsan, "只读共享有限公司", json!({})).await;
    let e = w
        .crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            kefu.id,
            ShareAccess::Write,
            None,
        )
        .await
        .expect_err("a write share to a read-only role");
    let m = e.to_string();
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    assert!(m.contains("kefu") && m.contains("for reading"), "{m}");
    assert!(
        w.crm
            .list_shares(&w.zhangsan, Entity::Customer, c.id)
            .await
            .expect("shares")
            .is_empty(),
        "nothing shared"
    );
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            kefu.id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("a read share");
    // Wang Wu may edit his own customers: a write share lets him edit this
    // one too, until his roles no longer let him edit any.
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
        .expect("a write share");
    let now = w
        .crm
        .get_record(&w.wangwu, Entity::Customer, c.id)
        .await
        .expect("read through the share");
    let r = w
        .crm
        .update_record(
            &w.wangwu,
            Entity::Customer,
            c.id,
            now.version,
            fields(json!({"notes": "共享编辑"})),
        )
        .await
        .expect("edit through the share");
    let me = w
        .crm
        .user(&w.admin, w.wangwu.user_id)
        .await
        .expect("wangwu");
    w.crm
        .update_user(
            &w.admin,
            me.id,
            me.version,
            UserPatch {
                role_ids: Some(vec![reader.id]),
                ..UserPatch::default()
            },
        )
        .await
        .expect("read-only now");
    let wangwu = w.crm.actor(w.wangwu.user_id).await.expect("actor");
    let e = w
        .crm
        .update_record(
            &wangwu,
            Entity::Customer,
            c.id,
            r.version,
            fields(json!({"notes": "再改"})),
        )
        .await
        .expect_err("no edit right left");
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    assert!(
        w.crm
            .get_record(&wangwu, Entity::Customer, c.id)
            .await
            .is_ok(),
        "still read through the share"
    );
}

/// A transfer ends the shares of the record (and of a customer's contacts,
/// which move with it): the colleague the old owner shared it with neither
/// reads nor edits it in the new owner's hands; the event and the history
/// name whose shares ended.
pub async fn a_transfer_ends_the_shares_of_the_old_owner(store: Arc<dyn Store>) {
    let w = with_sales_rights(World::new(store).await).await;
    let (_, seen) = announced_since(&w, 0).await;
    let c = w.customer(&w.zhangsan, "转移共享有限公司", json!({})).await;
    let contact = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "共享联系人"}),
    )
    .await;
    for (entity, id) in [(Entity::Customer, c.id), (Entity::Contact, contact.id)] {
        w.crm
            .share_record(
                &w.zhangsan,
                entity,
                id,
                w.zhaoliu.user_id,
                ShareAccess::Write,
                None,
            )
            .await
            .expect("share");
    }
    let opp = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            crate::sales::NewOpportunity {
                name: "转移商机".into(),
                customer_id: c.id.0,
                ..Default::default()
            },
        )
        .await
        .expect("opportunity");
    let opp = RecordId(opp.id);
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Opportunity,
            opp,
            w.zhaoliu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share the opportunity");
    // Zhao Liu's department scope covers Zhang San's group: a colleague of
    // another group is the one who only reads through the share.
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
        .expect("share with wangwu");
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::Customer, c.id)
            .await
            .is_ok()
    );
    let r = w
        .crm
        .transfer_records(&w.zhangsan, Entity::Customer, &[c.id], w.lisi.user_id)
        .await
        .expect("transfer");
    assert!(r.refused.is_empty(), "{r:?}");
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::Customer, c.id)
            .await
            .is_err(),
        "the share ended with the transfer"
    );
    for (entity, id) in [(Entity::Customer, c.id), (Entity::Contact, contact.id)] {
        assert!(
            w.crm
                .list_shares(&w.lisi, entity, id)
                .await
                .expect("shares")
                .is_empty(),
            "{entity} keeps no share"
        );
    }
    // The opportunity stayed with its owner, and so did its share.
    assert_eq!(
        w.crm
            .list_shares(&w.zhangsan, Entity::Opportunity, opp)
            .await
            .expect("shares")
            .len(),
        1
    );
    let (got, seen) = announced_since(&w, seen).await;
    let p = got
        .iter()
        .find(|(k, r, _)| k == "customer.transferred" && *r == c.id.0)
        .map(|(_, _, p)| p.clone())
        .expect("customer.transferred");
    let mut ended: Vec<String> = p["shares_ended"]
        .as_array()
        .expect("shares_ended")
        .iter()
        .map(|u| u.as_str().unwrap_or_default().to_string())
        .collect();
    ended.sort();
    let mut expected = vec![
        w.zhaoliu.user_id.0.to_string(),
        w.wangwu.user_id.0.to_string(),
    ];
    expected.sort();
    assert_eq!(ended, expected);
    let history = w
        .crm
        .history(&w.admin, Entity::Customer, c.id.0)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|h| h.action == "transfer" && h.changes.iter().any(|f| f.field == "shares")),
        "{history:?}"
    );
    // A document's transfer ends its own shares too.
    let r = w
        .crm
        .transfer_records(&w.zhangsan, Entity::Opportunity, &[opp], w.lisi.user_id)
        .await
        .expect("transfer the opportunity");
    assert!(r.refused.is_empty(), "{r:?}");
    assert!(
        w.crm
            .list_shares(&w.lisi, Entity::Opportunity, opp)
            .await
            .expect("shares")
            .is_empty()
    );
    let (got, _) = announced_since(&w, seen).await;
    assert!(
        got.iter().any(|(k, r, p)| k == "opportunity.transferred"
            && *r == opp.0
            && p["shares_ended"] == json!([w.zhaoliu.user_id.0.to_string()])
            && p["shares_ended_usernames"] == json!(["zhaoliu"])),
        "{got:?}"
    );
}

/// A customer with open opportunities is neither deleted nor archived: in
/// the recycle bin, its pipeline would still be forecast and moved on. The
/// refusal names the opportunities the actor may read by code and counts
/// the others; once they are closed or deleted, the customer may go.
pub async fn a_customer_with_open_opportunities_stays_in_the_working_set(store: Arc<dyn Store>) {
    use crate::sales::NewOpportunity;
    let w = with_sales_rights(World::new(store).await).await;
    let c = w.customer(&w.zhangsan, "商机未结有限公司", json!({})).await;
    let new = |name: &str| NewOpportunity {
        name: name.into(),
        customer_id: c.id.0,
        ..NewOpportunity::default()
    };
    let mine = w
        .crm
        .create_opportunity(&w.zhangsan, new("机房改造"))
        .await
        .expect("opportunity");
    // 李四 (the manager) tracks one too, which 张三 may not read.
    let managers = w
        .crm
        .create_opportunity(&w.lisi, new("备件采购"))
        .await
        .expect("opportunity");
    for (what, report) in [
        (
            "deleted",
            w.crm
                .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
                .await,
        ),
        (
            "archived",
            w.crm
                .archive_records(&w.zhangsan, Entity::Customer, &[c.id])
                .await,
        ),
    ] {
        let why = refusal(report);
        assert!(
            why.contains(&format!("cannot be {what}"))
                && why.contains(&format!(
                    "open opportunities {} and 1 more of others'",
                    mine.code
                ))
                && why.contains("close them (won or lost) or delete them first"),
            "{why}"
        );
        assert!(!why.contains(&managers.code), "{why}");
    }
    for (who, o) in [(&w.zhangsan, mine.id), (&w.lisi, managers.id)] {
        let r = w
            .crm
            .delete_records(who, Entity::Opportunity, &[RecordId(o)])
            .await;
        assert_eq!(r.done.len(), 1, "{r:?}");
    }
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
}

/// After a contract waiting for approval is transferred, its former owner
/// and applicant, who can no longer read it, neither sees its approval nor
/// withdraws it (which would drop the new owner's contract back to a
/// draft); the new owner may withdraw it, and its approver still sees it.
pub async fn a_transferred_documents_approval_is_out_of_its_applicants_hands(
    store: Arc<dyn Store>,
) {
    use crate::approval::{ApproverRule, Fallback, FlowDef, Restart, SignMode, StepDef};
    use crate::money::Money;
    use crate::sales::{ContractStatus, NewContract};
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "contract",
            "合同审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "经理".into(),
                    conditions: Vec::new(),
                    approvers: ApproverRule::Users {
                        users: vec![w.lisi.user_id.0],
                    },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let c = w.customer(&w.zhangsan, "审批转移有限公司", json!({})).await;
    let k = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "待审合同".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(50_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (k, a) = w
        .crm
        .submit_contract(&w.zhangsan, k.id, Vec::new(), None)
        .await
        .expect("submit");
    assert_eq!(k.status, ContractStatus::PendingApproval);
    let a = a.expect("approval");
    assert!(w.crm.approval(&w.zhangsan, a.id).await.is_ok());
    let r = w
        .crm
        .transfer_records(
            &w.zhangsan,
            Entity::Contract,
            &[RecordId(k.id)],
            w.wangwu.user_id,
        )
        .await
        .expect("transfer");
    assert_eq!(r.done.len(), 1, "{r:?}");
    assert!(matches!(
        w.crm.approval(&w.zhangsan, a.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        !w.crm
            .my_approvals(&w.zhangsan)
            .await
            .expect("mine")
            .iter()
            .any(|x| x.id == a.id)
    );
    assert!(matches!(
        w.crm.withdraw(&w.zhangsan, a.id, None).await,
        Err(Error::NotFound { .. })
    ));
    let k2 = w.crm.contract(&w.wangwu, k.id).await.expect("contract");
    assert_eq!(k2.status, ContractStatus::PendingApproval, "still pending");
    assert!(w.crm.approval(&w.lisi, a.id).await.is_ok(), "the approver");
    // The new owner finds it by the contract, as `approval withdraw HT-…`
    // does.
    let found = w
        .crm
        .approval_of(&w.wangwu, "contract", k.id)
        .await
        .expect("the new owner reads the contract's approval")
        .expect("approval");
    assert_eq!(found.id, a.id);
    w.crm
        .withdraw(&w.wangwu, a.id, None)
        .await
        .expect("the new owner withdraws");
    let k2 = w.crm.contract(&w.wangwu, k.id).await.expect("contract");
    assert_eq!(k2.status, ContractStatus::Draft);
}

/// An archived customer (已归档) is refused naming its state — edit,
/// transfer, share, release and a contact added to it — to whoever may
/// read it ("unarchive it first"), and stays not found to whoever may not;
/// a duplicate refusal naming an archived holder says it is archived.
pub async fn archived_customers_are_refused_naming_the_state(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "归档客户有限公司", json!({})).await;
    let kh = c.code.clone().expect("code");
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let archived = |m: &str| m.contains(&kh) && m.contains("archived (已归档); unarchive it first");
    let e = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            c.version + 1,
            fields(json!({"phone": "010-65556666"})),
        )
        .await
        .expect_err("edit");
    assert!(
        matches!(e, Error::InvalidState(_)) && archived(&e.to_string()),
        "{e}"
    );
    let m = refusal(
        w.crm
            .transfer_records(&w.zhangsan, Entity::Customer, &[c.id], w.lisi.user_id)
            .await
            .expect("transfer"),
    );
    assert!(archived(&m), "{m}");
    let e = w
        .crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect_err("share");
    assert!(archived(&e.to_string()), "{e}");
    let m = refusal(
        w.crm
            .release(&w.zhangsan, &[c.id], "不再跟进", None)
            .await
            .expect("release"),
    );
    assert!(archived(&m), "{m}");
    let e = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": kh, "name": "归档联系人"})),
        )
        .await
        .expect_err("contact");
    assert!(archived(&e.to_string()), "{e}");
    let e = w
        .crm
        .get_record_by_code(&w.zhangsan, Entity::Customer, &kh)
        .await
        .expect_err("not live");
    assert!(archived(&e.to_string()), "{e}");
    // Who may not read it finds nothing.
    let m = refusal(
        w.crm
            .release(&w.wangwu, &[c.id], "不再跟进", None)
            .await
            .expect("release"),
    );
    assert!(m.contains("not found"), "{m}");
    let e = w
        .crm
        .create_record(
            &w.wangwu,
            Entity::Contact,
            fields(json!({"customer_id": kh, "name": "归档联系人"})),
        )
        .await
        .expect_err("contact");
    assert!(!e.to_string().contains("archived"), "{e}");
    // A duplicate of it is refused naming it archived.
    let e = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "归档客户有限公司"})),
        )
        .await
        .expect_err("duplicate");
    match &e {
        Error::Duplicate { message, .. } => {
            assert!(
                message.contains(&kh) && message.contains("已归档"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Unarchived, it is worked on again.
    let r = w
        .crm
        .unarchive_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let now = row(&w, Table::Customers, c.id.0).await.expect("row");
    w.crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            now.version(),
            fields(json!({"phone": "010-65556666"})),
        )
        .await
        .expect("edit");
}

/// A transfer of customers with their documents that fails after the
/// customers moved does not read as if nothing happened: a document whose
/// write failed is reported refused with the reason, and when the store
/// fails while the documents are looked for, the error says the customers
/// were transferred and what is left to do; the documents not moved are
/// still their former owner's, to be transferred on their own.
pub async fn a_transfer_with_documents_stopped_midway_says_what_moved(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::NewOpportunity;
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store));
    let w = crate::testing::sales_suite::with_sales_rights(World::new(hooked.clone()).await).await;
    let c = w
        .customer(&w.zhangsan, "中途转移有限公司", serde_json::json!({}))
        .await;
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "中途商机".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(10_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    hooked.fail_next_write_to(Table::Opportunities);
    let (customers, docs) = w
        .crm
        .transfer_customers_with_documents(&w.admin, &[c.id], w.wangwu.user_id)
        .await
        .expect("reported");
    assert_eq!(customers.done, vec![c.id]);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert!(
        docs[0]
            .refused
            .as_deref()
            .is_some_and(|m| m.contains("connection lost")),
        "{docs:?}"
    );
    // Back with its owner, then the store fails while the documents are
    // looked for.
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], w.zhangsan.user_id)
        .await
        .expect("back");
    assert_eq!(r.done.len(), 1, "{r:?}");
    hooked.fail_next_select_of(Table::Opportunities);
    let e = w
        .crm
        .transfer_customers_with_documents(&w.admin, &[c.id], w.wangwu.user_id)
        .await
        .expect_err("the document phase failed");
    let m = e.to_string();
    assert!(
        m.contains("1 customer(s) were transferred")
            && m.contains("connection lost")
            && m.contains("transfer them on their own"),
        "{m}"
    );
    let owner = |t: Table, id: uuid::Uuid| {
        let w = &w;
        async move {
            w.crm
                .store()
                .get(t, id)
                .await
                .expect("get")
                .expect("row")
                .get("owner_id")
                .as_id()
        }
    };
    assert_eq!(
        owner(Table::Customers, c.id.0).await,
        Some(w.wangwu.user_id.0)
    );
    assert_eq!(
        owner(Table::Opportunities, o.id).await,
        Some(w.zhangsan.user_id.0)
    );
    // Transferred on its own, it follows.
    let r = w
        .crm
        .transfer_records(
            &w.admin,
            Entity::Opportunity,
            &[RecordId(o.id)],
            w.wangwu.user_id,
        )
        .await
        .expect("transfer");
    assert_eq!(r.done.len(), 1, "{r:?}");
}

/// A payment voided on a customer's finished contract while the customer
/// is being deleted reopens the contract (owed money again): the deletion,
/// checked before the void, is refused as it commits instead of leaving an
/// executing contract on a customer in the recycle bin.
pub async fn a_customer_does_not_leave_with_a_contract_reopened_meanwhile(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractStatus, NewContract, PaymentInput};
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = crate::testing::sales_suite::with_sales_rights(World::new(hooked.clone()).await).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w
        .customer(&w.zhangsan, "重开合同有限公司", serde_json::json!({}))
        .await;
    let k = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "已完成合同".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(100_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    w.crm
        .submit_contract(&w.zhangsan, k.id, Vec::new(), None)
        .await
        .expect("executing");
    let (p, _) = w
        .crm
        .record_payment(
            &w.zhangsan,
            k.id,
            PaymentInput {
                amount: Money::cny(100_000),
                received_on: w.crm.today(),
                method: None,
                receipt_no: Some("CK-1".into()),
                notes: None,
            },
        )
        .await
        .expect("paid");
    let k = w
        .crm
        .close_contract(&w.zhangsan, k.id, None)
        .await
        .expect("finished");
    assert_eq!(k.status, ContractStatus::Finished);
    let void = {
        let (other, actor, pid) = (other.clone(), w.zhangsan.clone(), p.id);
        async move {
            other
                .void_payment(&actor, pid, "金额录错")
                .await
                .expect("voided meanwhile");
        }
    };
    hooked.before_customer_write(void);
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert!(r.done.is_empty(), "{r:?}");
    let why = &r.refused.first().expect("refused").1;
    assert!(why.contains("reopened"), "{why}");
    let k = w.crm.contract(&w.zhangsan, k.id).await.expect("contract");
    assert_eq!(
        (k.status, k.outstanding),
        (ContractStatus::Executing, Money::cny(100_000))
    );
    let live = w
        .crm
        .store()
        .get(Table::Customers, c.id.0)
        .await
        .expect("get")
        .expect("row");
    assert!(live.get("deleted_at").is_null());

    // Paid and finished again, then released into a pool while the
    // payment is voided: the release is refused as it commits.
    let (p2, _) = w
        .crm
        .record_payment(
            &w.zhangsan,
            k.id,
            PaymentInput {
                amount: Money::cny(100_000),
                received_on: w.crm.today(),
                method: None,
                receipt_no: Some("CK-2".into()),
                notes: None,
            },
        )
        .await
        .expect("paid again");
    w.crm
        .close_contract(&w.zhangsan, k.id, None)
        .await
        .expect("finished again");
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "重开公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.group1, w.group2, w.sales],
                ..crate::pool::PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let void = {
        let (other, actor, pid) = (other.clone(), w.zhangsan.clone(), p2.id);
        async move {
            other
                .void_payment(&actor, pid, "又录错")
                .await
                .expect("voided meanwhile");
        }
    };
    hooked.before_customer_write(void);
    let r = w
        .crm
        .release(&w.zhangsan, &[c.id], "不再跟进", Some(pool.id))
        .await
        .expect("release");
    assert!(r.done.is_empty(), "{r:?}");
    let why = &r.refused.first().expect("refused").1;
    assert!(why.contains("reopened"), "{why}");
}

/// A follow-up (any record pointing at a customer) names its customer by
/// id, code or name: a name finds only a customer the actor may read.
pub async fn a_customer_is_named_by_its_name_too(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "按名称跟进有限公司", serde_json::json!({}))
        .await;
    let f = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            crate::testing::service_suite::fields(serde_json::json!({
                "customer_id": "按名称跟进有限公司",
                "channel": "call",
                "content": "按名称",
            })),
        )
        .await
        .expect("by name");
    assert_eq!(
        f.fields.get("customer_id").and_then(|v| v.as_str()),
        Some(c.id.to_string().as_str())
    );
    // Another's customer, not readable: not found by its name either.
    let hidden = w
        .customer(&w.wangwu, "他人名下有限公司", serde_json::json!({}))
        .await;
    let e = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            crate::testing::service_suite::fields(serde_json::json!({
                "customer_id": "他人名下有限公司",
                "channel": "call",
                "content": "看不到",
            })),
        )
        .await
        .expect_err("not the actor's");
    assert!(!e.to_string().contains(&hidden.id.to_string()), "{e}");
}

/// Names and one-line text hold no control characters (an escape sequence
/// would act on the terminal of whoever lists them): they are refused,
/// naming the character; a line break typed into a one-line value is a
/// space, and multi-line notes keep theirs.
pub async fn text_holds_no_control_characters(store: Arc<dyn Store>) {
    use crate::testing::service_suite::fields;
    let w = crate::testing::sales_suite::with_sales_rights(World::new(store).await).await;
    let e = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(serde_json::json!({"name": "红色\u{1b}[31m有限公司"})),
        )
        .await
        .expect_err("an escape in a name");
    assert!(e.to_string().contains("U+001B"), "{e}");
    let c = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(serde_json::json!({
                "name": "换行地址有限公司",
                "address": "北京市海淀区\n中关村大街1号",
                "notes": "第一行\n第二行",
            })),
        )
        .await
        .expect("a line break in a one-line value");
    assert_eq!(c.text("address"), Some("北京市海淀区 中关村大街1号"));
    assert_eq!(c.text("notes"), Some("第一行\n第二行"));
    let e = w
        .crm
        .create_contract(
            &w.zhangsan,
            crate::sales::NewContract {
                title: "铃声\u{7}合同".into(),
                customer_id: c.id.0,
                amount: Some(crate::money::Money::cny(100)),
                ..crate::sales::NewContract::default()
            },
        )
        .await
        .expect_err("a bell in a title");
    assert!(e.to_string().contains("U+0007"), "{e}");
}

/// A customer restored from the recycle bin or unarchived is its owner's
/// again, within the caps of its pool as a claim is: out of the working
/// set it counted toward none, so bringing it back past the owner's limit
/// is refused, naming the limit, and changes nothing.
pub async fn a_customer_back_in_the_working_set_counts_toward_the_caps(store: Arc<dyn Store>) {
    use crate::pool::{PoolLimits, PoolSpec};
    let w = World::new(store).await;
    w.crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "一组公海".into(),
                admins: Vec::new(),
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: PoolLimits {
                    max_owned_per_user: Some(1),
                    ..PoolLimits::default()
                },
            },
        )
        .await
        .expect("pool");
    let a = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[a.id])
        .await;
    assert_eq!(r.done, vec![a.id], "{r:?}");
    let b = w.customer(&w.zhangsan, "腾讯科技有限公司", json!({})).await;
    // Restoring A would make two: refused, A stays in the recycle bin.
    let m = refusal(
        w.crm
            .restore_records(&w.zhangsan, Entity::Customer, &[a.id])
            .await,
    );
    assert!(
        m.contains(&code(&a)) && m.contains("cannot be restored") && m.contains("一组公海"),
        "{m}"
    );
    let stored = row(&w, Table::Customers, a.id.0).await.expect("customer");
    assert!(
        !stored.get("deleted_at").is_null(),
        "still in the recycle bin"
    );
    // Archiving B makes room; A comes back; B cannot then be unarchived.
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[b.id])
        .await;
    assert_eq!(r.done, vec![b.id], "{r:?}");
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[a.id])
        .await;
    assert_eq!(r.done, vec![a.id], "{r:?}");
    let m = refusal(
        w.crm
            .unarchive_records(&w.admin, Entity::Customer, &[b.id])
            .await,
    );
    assert!(
        m.contains(&code(&b)) && m.contains("cannot be unarchived") && m.contains("limit"),
        "{m}"
    );
    let stored = row(&w, Table::Customers, b.id.0).await.expect("customer");
    assert!(!stored.get("archived_at").is_null(), "still archived");
    // Restoring an archived customer from the recycle bin leaves it
    // archived: it takes no room, and is not refused.
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[b.id])
        .await;
    assert_eq!(r.done, vec![b.id], "{r:?}");
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[b.id])
        .await;
    assert_eq!(r.done, vec![b.id], "{r:?}");
    // Once A has gone again, B comes back.
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[a.id])
        .await;
    assert_eq!(r.done, vec![a.id], "{r:?}");
    let r = w
        .crm
        .unarchive_records(&w.zhangsan, Entity::Customer, &[b.id])
        .await;
    assert_eq!(r.done, vec![b.id], "{r:?}");
}

/// An opportunity deleted no longer dates its customer's last opportunity
/// (which the pools' "no opportunity within N days" rules read): made and
/// deleted again, it keeps no customer from being recycled. The one before
/// dates it again, or nothing; restored, the opportunity dates it again.
/// Deleting an opportunity older than the last one changes nothing.
pub async fn a_deleted_opportunity_no_longer_dates_its_customer(store: Arc<dyn Store>) {
    use crate::sales::NewOpportunity;
    let w = with_sales_rights(World::new(store).await).await;
    let c = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let new = |name: &str| NewOpportunity {
        name: name.into(),
        customer_id: c.id.0,
        ..NewOpportunity::default()
    };
    let customer = c.id.0;
    let last = |w: &World| {
        let store = w.crm.store().clone();
        async move {
            store
                .get(Table::Customers, customer)
                .await
                .expect("get")
                .expect("customer")
                .get("last_opportunity_at")
                .as_timestamp()
        }
    };
    let first = w
        .crm
        .create_opportunity(&w.zhangsan, new("数据中心"))
        .await
        .expect("first");
    w.clock.advance(chrono::Duration::days(3));
    let second = w
        .crm
        .create_opportunity(&w.zhangsan, new("云服务"))
        .await
        .expect("second");
    let created = |id: Uuid| {
        let store = w.crm.store().clone();
        async move {
            store
                .get(Table::Opportunities, id)
                .await
                .expect("get")
                .expect("opportunity")
                .get("created_at")
                .as_timestamp()
        }
    };
    let (first_at, second_at) = (created(first.id).await, created(second.id).await);
    assert!(first_at < second_at);
    assert_eq!(last(&w).await, second_at);
    let (a, b) = (RecordId(first.id), RecordId(second.id));
    let done = |r: crate::records::BatchReport| assert_eq!(r.done.len(), 1, "{r:?}");
    done(
        w.crm
            .delete_records(&w.zhangsan, Entity::Opportunity, &[b])
            .await,
    );
    assert_eq!(last(&w).await, first_at, "the one before");
    done(
        w.crm
            .restore_records(&w.zhangsan, Entity::Opportunity, &[b])
            .await,
    );
    assert_eq!(last(&w).await, second_at, "restored");
    // The older one goes: the last stays.
    done(
        w.crm
            .delete_records(&w.zhangsan, Entity::Opportunity, &[a])
            .await,
    );
    assert_eq!(last(&w).await, second_at);
    done(
        w.crm
            .delete_records(&w.zhangsan, Entity::Opportunity, &[b])
            .await,
    );
    assert_eq!(last(&w).await, None, "none left");
}
