//! Exports read the store directly when there is no search text and through
//! the list query when there is one; both must give the same cells (field
//! rules, masking, tags, dates, references, custom fields, paging, sort).

use crm_core::auth::{Action, DataScope, FieldAccess, FieldRule, Permission};
use crm_core::custom::{CustomFieldType, NewCustomField};
use crm_core::import::ExportValue;
use crm_core::org::{NewUser, RoleSpec};
use crm_core::query::SortBy;
use crm_core::store::Store;
use crm_core::testing::service_suite::{World, fields};
use crm_core::{Actor, Entity, ListQuery};
use serde_json::json;
use std::sync::Arc;

async fn world() -> World {
    let store: Arc<dyn Store> =
        Arc::new(crm_store_sqlite::SqliteStore::open_in_memory().expect("store"));
    World::new(store).await
}

async fn rows(w: &World, actor: &Actor, entity: Entity, q: ListQuery) -> Vec<Vec<ExportValue>> {
    let cols = w
        .crm
        .export_columns(actor, entity, &[])
        .await
        .expect("columns");
    let mut cur = w
        .crm
        .export_cursor(actor, entity, q, cols, 2)
        .await
        .expect("cursor");
    let mut out = Vec::new();
    while let Some(page) = cur.next_page().await.expect("page") {
        out.extend(page);
    }
    out
}

#[tokio::test]
async fn direct_and_listed_exports_agree() {
    let w = world().await;
    let def = |key: &str, t| NewCustomField {
        entity: Entity::Customer,
        key: key.into(),
        label: format!("自定义{key}"),
        label_en: None,
        field_type: t,
        options: match t {
            CustomFieldType::Select | CustomFieldType::MultiSelect => {
                vec!["线上".into(), "代理".into()]
            }
            _ => Vec::new(),
        },
        required: false,
        unique: false,
    };
    for (key, t) in [
        ("employees", CustomFieldType::Number),
        ("budget", CustomFieldType::Money),
        ("since", CustomFieldType::Date),
        ("channels", CustomFieldType::MultiSelect),
        ("listed", CustomFieldType::Boolean),
        ("note", CustomFieldType::Text),
    ] {
        w.crm
            .define_custom_field(&w.admin, def(key, t))
            .await
            .expect("custom field");
    }
    for i in 0..7 {
        let extra = if i % 3 == 0 {
            json!({})
        } else {
            json!({
                "phone": "13812345678",
                "email": format!("x{i}@example.com"),
                "next_follow_up": "2026-12-01",
                "level": "A",
                "tags": ["重点", "华东"],
                "notes": format!("=cmd{i}"),
                "employees": 10 + i,
                "budget": "12.34",
                "since": "2020-01-02",
                "channels": "线上，代理",
                "listed": "是",
                "note": format!("  备注{i} "),
            })
        };
        let c = w
            .customer(&w.admin, &format!("导出{i}号有限公司"), extra)
            .await;
        w.crm
            .create_record(
                &w.admin,
                Entity::Contact,
                fields(json!({"customer_id": c.id.to_string(), "name": format!("测试联系人{i}"), "mobile": "13912345678"})),
            )
            .await
            .expect("contact");
    }
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "遮蔽".into(),
                is_admin: false,
                permissions: Entity::RECORDS
                    .into_iter()
                    .flat_map(|entity| {
                        [Action::Read, Action::Export].map(|action| Permission {
                            entity,
                            action,
                            scope: DataScope::All,
                        })
                    })
                    .collect(),
                field_rules: vec![
                    FieldRule {
                        entity: Entity::Customer,
                        field: "phone".into(),
                        access: FieldAccess::Masked,
                    },
                    FieldRule {
                        entity: Entity::Customer,
                        field: "next_follow_up".into(),
                        access: FieldAccess::Masked,
                    },
                    FieldRule {
                        entity: Entity::Customer,
                        field: "level".into(),
                        access: FieldAccess::Hidden,
                    },
                    FieldRule {
                        entity: Entity::Customer,
                        field: "custom.note".into(),
                        access: FieldAccess::Masked,
                    },
                    FieldRule {
                        entity: Entity::Customer,
                        field: "custom.channels".into(),
                        access: FieldAccess::Masked,
                    },
                    FieldRule {
                        entity: Entity::Contact,
                        field: "mobile".into(),
                        access: FieldAccess::Masked,
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
                username: "zhebi".into(),
                display_name: "遮蔽用户".into(),
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    let masked = w.crm.actor(u.id).await.expect("actor");
    for actor in [&w.admin, &masked] {
        for (entity, search) in [(Entity::Customer, "有限公司"), (Entity::Contact, "测试")] {
            for sort in [
                Vec::new(),
                vec![SortBy {
                    field: "name".into(),
                    desc: true,
                }],
            ] {
                let q = ListQuery {
                    sort: sort.clone(),
                    ..ListQuery::default()
                };
                let direct = rows(&w, actor, entity, q.clone()).await;
                let listed = rows(&w, actor, entity, q.search(search)).await;
                assert_eq!(direct.len(), 7, "{entity} {sort:?}");
                assert_eq!(
                    direct, listed,
                    "{entity} {sort:?} as {}",
                    actor.display_name
                );
            }
        }
    }
    // The masked actor's cells are masked, and the contacts name their
    // customer.
    let masked_rows = rows(&w, &masked, Entity::Customer, ListQuery::default()).await;
    assert!(
        masked_rows
            .iter()
            .flatten()
            .any(|v| *v == ExportValue::Text("138****5678".into()))
    );
    let admin_rows = rows(&w, &w.admin, Entity::Customer, ListQuery::default()).await;
    let row = admin_rows
        .iter()
        .find(|r| r.contains(&ExportValue::Text("导出1号有限公司".into())))
        .expect("row");
    for v in [
        ExportValue::Money(1234),
        ExportValue::Number(11.0),
        ExportValue::Bool(true),
        ExportValue::Date(chrono::NaiveDate::from_ymd_opt(2020, 1, 2).expect("date")),
        ExportValue::Text("华东,重点".into()),
        ExportValue::Text("线上、代理".into()),
        ExportValue::Text("备注1".into()),
    ] {
        assert!(row.contains(&v), "{v:?} in {row:?}");
    }
    let contacts = rows(&w, &w.admin, Entity::Contact, ListQuery::default()).await;
    assert!(
        contacts
            .iter()
            .flatten()
            .any(|v| *v == ExportValue::Text("导出0号有限公司".into()))
    );
}

/// A follow-up whose customer its author may no longer read (transferred
/// away) is exported with the list's placeholder in the customer column,
/// not the customer's id, whether the export reads the store directly or
/// through the list query (a search text).
#[tokio::test]
async fn a_hidden_customer_of_a_follow_up_is_no_id_on_either_path() {
    let w = world().await;
    let c = w.customer(&w.zhangsan, "转走客户有限公司", json!({})).await;
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({"customer_id": c.id.to_string(), "channel": "call", "content": "转走前的电话"})),
        )
        .await
        .expect("follow-up");
    w.crm
        .transfer_records(&w.zhangsan, Entity::Customer, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    let cols = w
        .crm
        .export_columns(&w.zhangsan, Entity::FollowUp, &[])
        .await
        .expect("columns");
    let at = cols
        .iter()
        .position(|c| c.key == "customer_id")
        .expect("a customer column");
    for q in [ListQuery::default(), ListQuery::default().search("转走前")] {
        let got = rows(&w, &w.zhangsan, Entity::FollowUp, q.clone()).await;
        assert_eq!(got.len(), 1, "{q:?}");
        assert_eq!(
            got[0][at],
            ExportValue::Text("（无权查看的客户）(hidden customer)".into()),
            "{q:?}"
        );
        assert!(!format!("{got:?}").contains(&c.id.to_string()), "{got:?}");
    }
}
