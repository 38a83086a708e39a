//! Customer lifecycle scenarios: pools with claim, release, assign and
//! their limits; recycling rules and the sweep (dry run, warnings,
//! idempotence, locks); duplicate keys, the report and merge; the 360° view,
//! the ready-made lists and batch operations on a filter; and a property
//! test of pool operations against a reference model.

/// Lists the pool scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! pool_scenarios {
    ($each:path; $make:expr) => {
        $each!(
            $crate::testing::pool_suite::pool_moves_announce_the_contacts_and_versions,
            crm_pool_moves_announce_the_contacts_and_versions,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_operations_that_change_nothing_say_so,
            crm_pool_operations_that_change_nothing_say_so,
            $make
        );
        $each!(
            $crate::testing::pool_suite::a_transfer_or_share_given_no_version_takes_a_meanwhile_edit,
            crm_pool_a_transfer_or_share_given_no_version_takes_a_meanwhile_edit,
            $make
        );
        $each!(
            $crate::testing::pool_suite::a_lock_ends_when_its_customer_leaves_the_owner,
            a_lock_ends_when_its_customer_leaves_the_owner,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_members_read_public_customers_as_the_view_shows_them,
            pool_members_read_public_customers_as_the_view_shows_them,
            $make
        );
        $each!(
            $crate::testing::pool_suite::the_reclaim_cooldown_follows_the_customer_to_another_pool,
            the_reclaim_cooldown_follows_the_customer_to_another_pool,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_names_are_unique_spelling_aside,
            pool_names_are_unique_spelling_aside,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_caps_bind_transfers_and_creation,
            pool_caps_bind_transfers_and_creation,
            $make
        );
        $each!(
            $crate::testing::pool_suite::records_go_only_to_who_may_edit_them,
            records_go_only_to_who_may_edit_them,
            $make
        );
        $each!(
            $crate::testing::pool_suite::a_deal_date_is_neither_ahead_nor_before_the_customer,
            a_deal_date_is_neither_ahead_nor_before_the_customer,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_claim_release_assign_within_limits,
            pool_claim_release_assign_within_limits,
            $make
        );
        $each!(
            $crate::testing::pool_suite::a_deal_customer_is_claimed_past_a_cap_that_leaves_deals_out,
            pool_a_deal_customer_is_claimed_past_a_cap_that_leaves_deals_out,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_caps_hold_against_concurrent_claims,
            pool_caps_hold_against_concurrent_claims,
            $make
        );
        $each!(
            $crate::testing::pool_suite::follow_ups_at_once_on_one_customer_are_all_saved,
            pool_follow_ups_at_once_on_one_customer_are_all_saved,
            $make
        );
        $each!(
            $crate::testing::pool_suite::customers_created_at_once_under_a_cap_count_again,
            pool_customers_created_at_once_under_a_cap_count_again,
            $make
        );
        $each!(
            $crate::testing::pool_suite::sweeps_at_once_recycle_each_customer_once,
            pool_sweeps_at_once_recycle_each_customer_once,
            $make
        );
        $each!(
            $crate::testing::pool_suite::a_lost_claim_and_the_cooldown_say_who,
            pool_a_lost_claim_and_the_cooldown_say_who,
            $make
        );
        $each!(
            $crate::testing::pool_suite::a_claim_meets_a_cap_added_meanwhile,
            a_claim_meets_a_cap_added_meanwhile,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_caps_hold_against_concurrent_moves_from_other_pools,
            pool_caps_hold_against_concurrent_moves_from_other_pools,
            $make
        );
        $each!(
            $crate::testing::pool_suite::concurrent_writes_of_one_customer_do_not_both_pass,
            pool_concurrent_writes_of_one_customer_do_not_both_pass,
            $make
        );
        $each!(
            $crate::testing::pool_suite::recycling_sweep_dry_run_warnings_and_idempotence,
            pool_recycling_sweep_dry_run_warnings_and_idempotence,
            $make
        );
        $each!(
            $crate::testing::pool_suite::sweep_reports_only_customers_the_actor_may_read,
            pool_sweep_reports_only_customers_the_actor_may_read,
            $make
        );
        $each!(
            $crate::testing::pool_suite::column_keys_have_rows_only_while_shared,
            pool_column_keys_have_rows_only_while_shared,
            $make
        );
        $each!(
            $crate::testing::pool_suite::duplicate_keys_report_and_merge,
            pool_duplicate_keys_report_and_merge,
            $make
        );
        $each!(
            $crate::testing::pool_suite::customer_view_lists_and_batches_by_filter,
            pool_customer_view_lists_and_batches_by_filter,
            $make
        );
        $each!(
            $crate::testing::pool_suite::duplicate_report_pages_over_visible_groups_only,
            pool_duplicate_report_pages_over_visible_groups_only,
            $make
        );
        $each!(
            $crate::testing::pool_suite::duplicates_follow_field_rules,
            pool_duplicates_follow_field_rules,
            $make
        );
        $each!(
            $crate::testing::pool_suite::view_and_recycling_list_follow_field_rules,
            pool_view_and_recycling_list_follow_field_rules,
            $make
        );
        $each!(
            $crate::testing::pool_suite::place_and_recycling_show_no_field_rules_hide,
            pool_place_and_recycling_show_no_field_rules_hide,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_operations_reveal_nothing_to_outsiders,
            pool_operations_reveal_nothing_to_outsiders,
            $make
        );
        $each!(
            $crate::testing::pool_suite::a_public_customer_is_worked_on_only_once_held,
            pool_a_public_customer_is_worked_on_only_once_held,
            $make
        );
        $each!(
            $crate::testing::pool_suite::merge_fills_blanks_also_in_fields_the_merger_may_not_write,
            pool_merge_fills_blanks_also_in_fields_the_merger_may_not_write,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_operations_match_reference_model,
            pool_operations_match_reference_model,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_delete_leaves_no_customer_ungoverned,
            pool_delete_leaves_no_customer_ungoverned,
            $make
        );
        $each!(
            $crate::testing::pool_suite::contact_created_during_a_transfer_keeps_no_old_owner,
            pool_contact_created_during_a_transfer_keeps_no_old_owner,
            $make
        );
        $each!(
            $crate::testing::pool_suite::merge_carries_shares_to_the_survivor,
            pool_merge_carries_shares_to_the_survivor,
            $make
        );
        $each!(
            $crate::testing::pool_suite::merge_gives_no_user_a_second_share_row,
            pool_merge_gives_no_user_a_second_share_row,
            $make
        );
        $each!(
            $crate::testing::pool_suite::merge_leaves_each_customer_its_pool_history,
            pool_merge_leaves_each_customer_its_pool_history,
            $make
        );
        $each!(
            $crate::testing::pool_suite::pool_changes_and_deletions_are_announced,
            pool_changes_and_deletions_are_announced,
            $make
        );
        $each!(
            $crate::testing::pool_suite::duplicate_names_fold_accents_and_traditional_chinese,
            pool_duplicate_names_fold_accents_and_traditional_chinese,
            $make
        );
        $each!(
            $crate::testing::pool_suite::rebuilt_name_keys_show_new_duplicates_in_the_report,
            pool_rebuilt_name_keys_show_new_duplicates_in_the_report,
            $make
        );
    };
}

use crate::auth::{Action, DataScope, FieldAccess, FieldRule, Permission};
use crate::crm::Crm;
use crate::dedupe::{DedupeMode, DuplicateQuery, MergeSpec};
use crate::entity::Entity;
use crate::error::Error;
use crate::ids::{RecordId, UserId};
use crate::org::{NewUser, RoleSpec};
use crate::pool::{Place, PoolLimits, PoolSpec, RuleKind, RuleSpec, RuleStatus, SweepOptions};
use crate::query::{Cond, ListQuery, PageRequest};
use crate::records::ShareAccess;
use crate::schema::Table;
use crate::store::{
    AuditEntry, ChangeSet, Op, OutboxEvent, Row, Select, Selected, Store, StoreError,
};
use crate::testing::service_suite::{World, fields};
use crate::view::Targets;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Three customers, two of whom share a phone number, and the duplicate
/// report that shows those two (checked), for tests that carry duplicate
/// keys through a migration.
pub async fn two_sharing_a_phone(w: &World) -> crate::dedupe::DuplicateReport {
    let phone = json!({"phone": "010-62345678"});
    let a = w
        .customer(&w.zhangsan, "北京华信智联科技有限公司", phone.clone())
        .await;
    let b = w.customer(&w.wangwu, "华信智联北京分公司", phone).await;
    w.customer(
        &w.wangwu,
        "上海申通物流有限公司",
        json!({"phone": "021-55556666"}),
    )
    .await;
    let report = company_report(w).await;
    assert_eq!(group_of(&report, "phone"), vec![a.id, b.id], "{report:?}");
    report
}

/// The company-wide duplicate report, as the administrator sees it.
pub async fn company_report(w: &World) -> crate::dedupe::DuplicateReport {
    w.crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report")
}

/// The members of the report's group for `field` (none when it has none).
pub fn group_of(report: &crate::dedupe::DuplicateReport, field: &str) -> Vec<RecordId> {
    report
        .groups
        .iter()
        .find(|g| g.field == field)
        .map(|g| g.members.iter().map(|m| m.id).collect())
        .unwrap_or_default()
}

async fn row(w: &World, id: RecordId) -> Row {
    w.crm
        .store()
        .get(Table::Customers, id.0)
        .await
        .expect("get")
        .expect("customer exists")
}

fn place(r: &Row) -> Place {
    Place::of_row(r)
}

fn owner(r: &Row) -> Option<UserId> {
    r.get("owner_id").as_id().map(UserId)
}

async fn event_count(w: &World) -> usize {
    w.crm
        .pending_events("pool-suite", 100_000)
        .await
        .expect("events")
        .len()
}

async fn events_of(w: &World, kind: &str) -> Vec<crate::store::OutboxEvent> {
    w.crm
        .pending_events("pool-suite", 100_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.event.event_type == kind)
        .collect()
}

/// Day `n` after the World's start (2026-11-27 10:00 in Beijing).
fn day(n: i64) -> DateTime<Utc> {
    let start: DateTime<Utc> = "2026-11-27T02:00:00Z".parse().expect("start");
    start + Duration::days(n)
}

/// Work run by [`Interleave`].
type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A store that, once armed, runs a piece of work — another session's
/// operation on the same data, through an engine on the inner store — at a
/// chosen point of this session's operation: just before the next change
/// set that writes a row of a table, just after the next select of a table,
/// or just after the next count of customers is read. Two concurrent
/// operations interleaved the worst way, deterministically. It also counts
/// the writes refused for a changed or already created `pool_holders` row.
pub(crate) struct Interleave {
    inner: Arc<dyn Store>,
    before_write: Mutex<Option<(Table, Hook)>>,
    after_select: Mutex<Option<(Table, Hook)>>,
    after_count: Mutex<Option<Hook>>,
    holder_conflicts: AtomicUsize,
    /// The guard keys of every change set applied with guards, in order.
    guard_keys: Mutex<Vec<Vec<String>>>,
    /// A table whose next write fails as the backend failing would.
    fail_write: Mutex<Option<Table>>,
    /// A table whose next select fails so.
    fail_select: Mutex<Option<Table>>,
}

impl Interleave {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Interleave {
        Interleave {
            inner,
            before_write: Mutex::new(None),
            after_select: Mutex::new(None),
            after_count: Mutex::new(None),
            holder_conflicts: AtomicUsize::new(0),
            guard_keys: Mutex::new(Vec::new()),
            fail_write: Mutex::new(None),
            fail_select: Mutex::new(None),
        }
    }

    /// Makes the next select of `table` fail, as a store whose backend went
    /// away fails.
    pub(crate) fn fail_next_select_of(&self, table: Table) {
        *self.fail_select.lock().expect("fail") = Some(table);
    }

    /// Makes the next change set that writes to `table` fail, as a store
    /// whose backend went away fails, without writing anything.
    pub(crate) fn fail_next_write_to(&self, table: Table) {
        *self.fail_write.lock().expect("fail") = Some(table);
    }

    /// The failure [`Interleave::fail_next_write_to`] asked for, once.
    fn injected_failure(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        let mut slot = self.fail_write.lock().expect("fail");
        let Some(t) = *slot else { return Ok(()) };
        let writes = changes.ops.iter().any(|op| match op {
            Op::Insert { table, .. } | Op::Update { table, .. } | Op::Delete { table, .. } => {
                *table == t
            }
        });
        if !writes {
            return Ok(());
        }
        *slot = None;
        Err(StoreError::Backend {
            backend: "interleave",
            source: "connection lost (injected)".into(),
        })
    }

    /// The guard keys of the change sets applied with guards so far, in order.
    pub(crate) fn guard_keys(&self) -> Vec<Vec<String>> {
        self.guard_keys.lock().expect("keys").clone()
    }

    /// Runs `work` just before the next change set that writes to `table`.
    pub(crate) fn before_write(
        &self,
        table: Table,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        *self.before_write.lock().expect("hook") = Some((table, Box::pin(work)));
    }

    /// Runs `work` just before the next change set that writes a customer.
    pub(crate) fn before_customer_write(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.before_write(Table::Customers, work);
    }

    /// Runs `work` just after the next select of `table`.
    pub(crate) fn after_select(
        &self,
        table: Table,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        *self.after_select.lock().expect("hook") = Some((table, Box::pin(work)));
    }

    /// The armed work of `slot` if it waits for a table `matches` accepts,
    /// disarmed.
    fn take(slot: &Mutex<Option<(Table, Hook)>>, matches: impl Fn(Table) -> bool) -> Option<Hook> {
        let mut slot = slot.lock().expect("hook");
        if slot.as_ref().is_some_and(|(t, _)| matches(*t)) {
            slot.take().map(|(_, work)| work)
        } else {
            None
        }
    }

    fn after_count(&self, work: impl Future<Output = ()> + Send + 'static) {
        *self.after_count.lock().expect("hook") = Some(Box::pin(work));
    }

    fn holder_conflicts(&self) -> usize {
        self.holder_conflicts.load(Ordering::SeqCst)
    }

    async fn run(hook: &Mutex<Option<Hook>>) {
        let work = hook.lock().expect("hook").take();
        if let Some(work) = work {
            work.await;
        }
    }

    async fn before(&self, changes: &ChangeSet) {
        if !changes.guards.is_empty() {
            self.guard_keys
                .lock()
                .expect("keys")
                .push(changes.guards.iter().flat_map(|g| g.keys.clone()).collect());
        }
        let writes = |t: Table| {
            changes.ops.iter().any(|op| match op {
                Op::Insert { table, .. } | Op::Update { table, .. } | Op::Delete { table, .. } => {
                    *table == t
                }
            })
        };
        if let Some(work) = Interleave::take(&self.before_write, writes) {
            work.await;
        }
    }

    fn after(&self, done: &Result<(), StoreError>) {
        if let Err(
            StoreError::Conflict {
                table: Table::PoolHolders,
                ..
            }
            | StoreError::Unique {
                table: Table::PoolHolders,
                ..
            },
        ) = done
        {
            self.holder_conflicts.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl Store for Interleave {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.before(changes).await;
        self.injected_failure(changes)?;
        let done = self.inner.apply(changes).await;
        self.after(&done);
        done
    }
    async fn apply_owned(&self, changes: ChangeSet) -> Result<(), StoreError> {
        self.before(&changes).await;
        self.injected_failure(&changes)?;
        let done = self.inner.apply_owned(changes).await;
        self.after(&done);
        done
    }
    async fn get(&self, table: Table, id: Uuid) -> Result<Option<Row>, StoreError> {
        self.inner.get(table, id).await
    }
    async fn select(&self, select: &Select) -> Result<Selected, StoreError> {
        {
            let mut slot = self.fail_select.lock().expect("fail");
            if *slot == Some(select.table) {
                *slot = None;
                return Err(StoreError::Backend {
                    backend: "interleave",
                    source: "connection lost (injected)".into(),
                });
            }
        }
        let found = self.inner.select(select).await;
        if let Some(work) = Interleave::take(&self.after_select, |t| t == select.table) {
            work.await;
        }
        if select.table == Table::Customers && select.with_total {
            Interleave::run(&self.after_count).await;
        }
        found
    }
    async fn next_sequence(&self, company: Uuid, key: &str) -> Result<i64, StoreError> {
        self.inner.next_sequence(company, key).await
    }
    async fn reserve_sequence(
        &self,
        company: Uuid,
        key: &str,
        count: u32,
    ) -> Result<Vec<i64>, StoreError> {
        self.inner.reserve_sequence(company, key, count).await
    }
    async fn history(&self, table: Table, record_id: Uuid) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.history(table, record_id).await
    }
    async fn outbox_pending(
        &self,
        consumer: &str,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.inner.outbox_pending(consumer, limit).await
    }
    async fn outbox_last_seq(&self) -> Result<i64, StoreError> {
        self.inner.outbox_last_seq().await
    }

    async fn outbox_ack(&self, consumer: &str, seq: i64) -> Result<(), StoreError> {
        self.inner.outbox_ack(consumer, seq).await
    }
}

/// How many live customers a user owns.
async fn owned_by(w: &World, user: UserId) -> usize {
    let mut sel = Select::all(
        Table::Customers,
        w.admin.company_id.0,
        crate::clock::Clock::now(&*w.clock),
    );
    sel.filter = crate::store::Filter::Cmp(
        crate::store::Col::Column("owner_id"),
        crate::store::CmpOp::Eq,
        crate::value::Value::Id(user.0),
    );
    w.crm.store().select(&sel).await.expect("select").rows.len()
}

/// The pools' caps hold when two sessions claim at once: each claim counts
/// what the user and the department hold, then writes; here the other
/// session's claim (or an assignment racing a claim) commits between the
/// two — after this one's write was built, or between its reading of the
/// holder rows and its counts. The late one notices (its holder rows'
/// versions moved), counts again and is refused, and it wrote nothing.
/// Claims under no cap do not contend at all.
pub async fn pool_caps_hold_against_concurrent_claims(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    // The other session: an engine on the same data, not hooked.
    let other = Crm::new(store.clone(), w.clock.clone());
    let pool = |name: &'static str, limits: PoolLimits| {
        let w = &w;
        async move {
            let pool = w
                .crm
                .create_pool(
                    &w.admin,
                    PoolSpec {
                        name: name.into(),
                        admins: vec![w.lisi.user_id],
                        member_users: Vec::new(),
                        member_departments: vec![w.group1],
                        limits,
                    },
                )
                .await
                .expect("pool");
            w.crm
                .import_into_pool(
                    &w.lisi,
                    pool.id,
                    (0..3)
                        .map(|i| fields(json!({"name": format!("{name}公海客户{i}有限公司")})))
                        .collect(),
                )
                .await
                .expect("import into the pool")
        }
    };
    let a = pool(
        "每人一个",
        PoolLimits {
            max_owned_per_user: Some(1),
            ..PoolLimits::default()
        },
    )
    .await;
    let b = pool(
        "每组两个",
        PoolLimits {
            max_owned_per_department: Some(2),
            ..PoolLimits::default()
        },
    )
    .await;
    let d = pool(
        "每天一个",
        PoolLimits {
            max_claims_per_day: Some(1),
            ..PoolLimits::default()
        },
    )
    .await;
    let open = pool("不限", PoolLimits::default()).await;
    let claim_elsewhere = |who: crate::auth::Actor, id: RecordId| {
        let other = other.clone();
        async move {
            let r = other.claim(&who, &[id]).await.expect("the other claim");
            assert_eq!(r.done, vec![id], "{:?}", r.refused);
        }
    };
    let release = |who: crate::auth::Actor, ids: Vec<RecordId>| {
        let w = &w;
        async move {
            let r = w
                .crm
                .release(&who, &ids, "不再跟进", None)
                .await
                .expect("release");
            assert_eq!(r.done, ids, "{:?}", r.refused);
        }
    };

    // One user, two sessions, a cap of one: the second claim is refused.
    hooked.before_customer_write(claim_elsewhere(w.zhangsan.clone(), a[1]));
    let r = w.crm.claim(&w.zhangsan, &[a[0]]).await.expect("claim");
    assert!(r.done.is_empty(), "both claims passed a cap of one");
    assert!(
        r.refused[0].1.contains("already holds 1"),
        "{:?}",
        r.refused
    );
    assert_eq!(owned_by(&w, w.zhangsan.user_id).await, 1);
    let a0 = row(&w, a[0]).await;
    assert_eq!((place(&a0), owner(&a0)), (Place::Public, None));
    assert_eq!(a0.version(), 1, "the refused claim wrote nothing");

    // Two users of one department (which holds one customer), a cap of
    // two: the later claim is refused.
    hooked.before_customer_write(claim_elsewhere(w.zhangsan.clone(), b[1]));
    let r = w.crm.claim(&w.zhaoliu, &[b[0]]).await.expect("claim");
    assert!(r.done.is_empty(), "both claims passed the department's cap");
    assert!(
        r.refused[0]
            .1
            .contains("department of 赵六 already holds 2"),
        "{:?}",
        r.refused
    );
    assert_eq!(owned_by(&w, w.zhaoliu.user_id).await, 0);

    // A pool admin assigns to a user who claims meanwhile, a cap of one:
    // the assignment is refused.
    hooked.before_customer_write(claim_elsewhere(w.zhaoliu.clone(), a[2]));
    let r = w
        .crm
        .assign(&w.lisi, &[a[0]], w.zhaoliu.user_id)
        .await
        .expect("assign");
    assert!(r.done.is_empty(), "the assignment passed a cap of one");
    assert!(
        r.refused[0].1.contains("赵六 already holds 1"),
        "{:?}",
        r.refused
    );
    assert_eq!(owned_by(&w, w.zhaoliu.user_id).await, 1);
    assert_eq!(place(&row(&w, a[0]).await), Place::Public);
    release(w.zhangsan.clone(), vec![a[1], b[1]]).await;
    release(w.zhaoliu.clone(), vec![a[2]]).await;

    // The other claim commits after this one read the holder rows but
    // before it counted: its counts are fresh, yet the versions it holds
    // are not, so it counts again — a claim that counted before reading the
    // versions would pass here.
    hooked.after_count(claim_elsewhere(w.zhaoliu.clone(), a[1]));
    let r = w.crm.claim(&w.zhaoliu, &[a[0]]).await.expect("claim");
    assert!(r.done.is_empty(), "both claims passed a cap of one");
    assert!(
        r.refused[0].1.contains("already holds 1"),
        "{:?}",
        r.refused
    );
    release(w.zhaoliu.clone(), vec![a[1]]).await;

    // The daily limit holds the same way.
    hooked.before_customer_write(claim_elsewhere(w.zhangsan.clone(), d[1]));
    let r = w.crm.claim(&w.zhangsan, &[d[0]]).await.expect("claim");
    assert!(r.done.is_empty(), "both claims passed a daily limit of one");
    assert!(r.refused[0].1.contains("daily limit"), "{:?}", r.refused);
    release(w.zhangsan.clone(), vec![d[1]]).await;

    // Without a race the caps count as before, several customers in one
    // claim included, with no conflict: each move bumps what the next one
    // of the same claim expects.
    let conflicts = hooked.holder_conflicts();
    assert!(conflicts >= 5, "{conflicts} conflicts seen");
    let r = w.crm.claim(&w.zhaoliu, &b[0..2]).await.expect("claim");
    assert_eq!(r.done, b[0..2].to_vec(), "{:?}", r.refused);
    let r = w.crm.claim(&w.zhangsan, &[a[0]]).await.expect("claim");
    assert_eq!(r.done, vec![a[0]], "{:?}", r.refused);
    assert_eq!(hooked.holder_conflicts(), conflicts);

    // Under no cap, two claims at once still pass, but in a company with
    // caps they contend: a cap counts what came from every pool (see
    // `pool_caps_hold_against_concurrent_moves_from_other_pools`), so the
    // late one (same department) counts again and then passes.
    hooked.before_customer_write(claim_elsewhere(w.zhangsan.clone(), open[1]));
    let r = w.crm.claim(&w.zhaoliu, &[open[0]]).await.expect("claim");
    assert_eq!(r.done, vec![open[0]], "{:?}", r.refused);
    assert!(hooked.holder_conflicts() > conflicts);

    // In a company without caps (a daily limit on another pool does not
    // count), two claims at once from a pool without a daily limit bump no
    // holder row, so they do not contend at all.
    let free = World::with_code(hooked.clone(), "NC").await;
    let free_other = Crm::new(store, free.clock.clone());
    pool_of(
        &free,
        "每天一个",
        PoolLimits {
            max_claims_per_day: Some(1),
            ..PoolLimits::default()
        },
        1,
    )
    .await;
    let open = pool_of(&free, "不限", PoolLimits::default(), 2).await;
    let conflicts = hooked.holder_conflicts();
    let (zhangsan, id) = (free.zhangsan.clone(), open[1]);
    hooked.before_customer_write(async move {
        let r = free_other.claim(&zhangsan, &[id]).await.expect("claim");
        assert_eq!(r.done, vec![id], "{:?}", r.refused);
    });
    let r = free
        .crm
        .claim(&free.zhaoliu, &[open[0]])
        .await
        .expect("claim");
    assert_eq!(r.done, vec![open[0]], "{:?}", r.refused);
    assert_eq!(hooked.holder_conflicts(), conflicts);
    assert_eq!(owned_by(&free, free.zhangsan.user_id).await, 1);
}

/// A pool of group one administered by 李四 with `limits` and `n` public
/// customers, whose ids it returns.
async fn pool_of(w: &World, name: &str, limits: PoolLimits, n: usize) -> Vec<RecordId> {
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: name.into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits,
            },
        )
        .await
        .expect("pool");
    w.crm
        .import_into_pool(
            &w.lisi,
            pool.id,
            (0..n)
                .map(|i| fields(json!({"name": format!("{name}公海客户{i}有限公司")})))
                .collect(),
        )
        .await
        .expect("import into the pool")
}

/// A claim that read the pools before an administrator added a cap is
/// refused as the pools having changed meanwhile, writing nothing; tried
/// again, it meets the cap.
pub async fn a_claim_meets_a_cap_added_meanwhile(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let b = pool_of(&w, "不限", PoolLimits::default(), 3).await;
    let r = w.crm.claim(&w.zhangsan, &[b[0]]).await.expect("claim");
    assert_eq!(r.done, vec![b[0]], "{:?}", r.refused);
    let pool = w
        .crm
        .list_pools(&w.admin)
        .await
        .expect("pools")
        .into_iter()
        .find(|p| p.name == "不限")
        .expect("pool");
    let admin = w.admin.clone();
    hooked.before_customer_write(async move {
        other
            .update_pool(
                &admin,
                pool.id,
                pool.version,
                PoolSpec {
                    name: pool.name.clone(),
                    admins: pool.admins.clone(),
                    member_users: pool.member_users.clone(),
                    member_departments: pool.member_departments.clone(),
                    limits: PoolLimits {
                        max_owned_per_user: Some(1),
                        ..PoolLimits::default()
                    },
                },
            )
            .await
            .expect("a cap of one, added meanwhile");
    });
    let r = w.crm.claim(&w.zhangsan, &[b[1]]).await.expect("claim");
    assert!(r.done.is_empty(), "the claim passed a cap added meanwhile");
    assert!(
        r.refused[0].1.contains("settings changed meanwhile"),
        "{:?}",
        r.refused
    );
    assert_eq!(place(&row(&w, b[1]).await), Place::Public);
    let r = w.crm.claim(&w.zhangsan, &[b[1]]).await.expect("claim");
    assert!(r.done.is_empty());
    assert!(
        r.refused[0].1.contains("the limit of pool 不限"),
        "{:?}",
        r.refused
    );
}

/// A cap counts every customer the user or the department holds, whichever
/// pool it came from, so a claim or an assignment from a pool without that
/// cap, committed between a capped claim's (or assignment's) counts and its
/// write, takes the slot the capped one counted. The capped one notices —
/// the uncapped move bumped the same holder rows, as any move does in a
/// company with such a cap — counts again and is refused, having written
/// nothing: the user (or the department) never holds more than the cap.
pub async fn pool_caps_hold_against_concurrent_moves_from_other_pools(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    // The other session: an engine on the same data, not hooked.
    let other = Crm::new(store, w.clock.clone());
    let a = pool_of(
        &w,
        "每人两个",
        PoolLimits {
            max_owned_per_user: Some(2),
            ..PoolLimits::default()
        },
        2,
    )
    .await;
    let c = pool_of(
        &w,
        "每组两个",
        PoolLimits {
            max_owned_per_department: Some(2),
            ..PoolLimits::default()
        },
        1,
    )
    .await;
    let b = pool_of(&w, "不限", PoolLimits::default(), 6).await;
    let claim_elsewhere = |who: crate::auth::Actor, id: RecordId| {
        let other = other.clone();
        async move {
            let r = other.claim(&who, &[id]).await.expect("the other claim");
            assert_eq!(r.done, vec![id], "{:?}", r.refused);
        }
    };
    let assign_elsewhere = |to: UserId, id: RecordId| {
        let (other, lisi) = (other.clone(), w.lisi.clone());
        async move {
            let r = other
                .assign(&lisi, &[id], to)
                .await
                .expect("the other assignment");
            assert_eq!(r.done, vec![id], "{:?}", r.refused);
        }
    };
    let release = |who: crate::auth::Actor, ids: Vec<RecordId>| {
        let w = &w;
        async move {
            let r = w
                .crm
                .release(&who, &ids, "不再跟进", None)
                .await
                .expect("release");
            assert_eq!(r.done, ids, "{:?}", r.refused);
        }
    };
    let zhangsan = w.zhangsan.user_id;
    let refused_over = |r: &crate::records::BatchReport, says: &str| {
        assert!(r.done.is_empty(), "passed a cap with a concurrent move");
        assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
        assert!(r.refused[0].1.contains(says), "{:?}", r.refused);
    };
    let a_over = "张三 already holds 2 customers, the limit of pool 每人两个";

    // 张三 holds one customer, from the pool without caps.
    let r = w.crm.claim(&w.zhangsan, &[b[0]]).await.expect("claim");
    assert_eq!(r.done, vec![b[0]], "{:?}", r.refused);
    let conflicts = hooked.holder_conflicts();

    // 张三 claims from the capped pool while his other session claims from
    // the uncapped one: two would make three under a cap of two.
    hooked.before_customer_write(claim_elsewhere(w.zhangsan.clone(), b[1]));
    let r = w.crm.claim(&w.zhangsan, &[a[0]]).await.expect("claim");
    refused_over(&r, a_over);
    assert_eq!(owned_by(&w, zhangsan).await, 2);
    let a0 = row(&w, a[0]).await;
    assert_eq!((place(&a0), owner(&a0)), (Place::Public, None));
    assert_eq!(a0.version(), 1, "the refused claim wrote nothing");
    assert!(hooked.holder_conflicts() > conflicts, "no conflict seen");
    release(w.zhangsan.clone(), vec![b[1]]).await;

    // The same with a pool admin assigning to him from the uncapped pool.
    let conflicts = hooked.holder_conflicts();
    hooked.before_customer_write(assign_elsewhere(zhangsan, b[2]));
    let r = w.crm.claim(&w.zhangsan, &[a[0]]).await.expect("claim");
    refused_over(&r, a_over);
    assert_eq!(owned_by(&w, zhangsan).await, 2);
    assert_eq!(place(&row(&w, a[0]).await), Place::Public);
    assert!(hooked.holder_conflicts() > conflicts, "no conflict seen");
    release(w.zhangsan.clone(), vec![b[2]]).await;

    // And the other way round: the capped move is an assignment, the
    // uncapped one his own claim.
    hooked.before_customer_write(claim_elsewhere(w.zhangsan.clone(), b[3]));
    let r = w
        .crm
        .assign(&w.lisi, &[a[0]], zhangsan)
        .await
        .expect("assign");
    refused_over(&r, a_over);
    assert_eq!(owned_by(&w, zhangsan).await, 2);
    assert_eq!(place(&row(&w, a[0]).await), Place::Public);
    release(w.zhangsan.clone(), vec![b[3]]).await;

    // A department's cap: group one holds 张三's one customer; 赵六 claims
    // from the pool capping the department at two while a colleague
    // claims, or is assigned, from the uncapped pool.
    let c_over = "the department of 赵六 already holds 2 customers, the limit of pool 每组两个";
    hooked.before_customer_write(claim_elsewhere(w.zhangsan.clone(), b[4]));
    let r = w.crm.claim(&w.zhaoliu, &[c[0]]).await.expect("claim");
    refused_over(&r, c_over);
    assert_eq!(owned_by(&w, w.zhaoliu.user_id).await, 0);
    assert_eq!(place(&row(&w, c[0]).await), Place::Public);
    release(w.zhangsan.clone(), vec![b[4]]).await;
    hooked.before_customer_write(assign_elsewhere(zhangsan, b[5]));
    let r = w.crm.claim(&w.zhaoliu, &[c[0]]).await.expect("claim");
    refused_over(&r, c_over);
    assert_eq!(owned_by(&w, w.zhaoliu.user_id).await, 0);
    release(w.zhangsan.clone(), vec![b[5]]).await;

    // Without a race the slots were there: 张三 takes his second, 赵六 the
    // department's second; then both caps are full.
    let r = w.crm.claim(&w.zhangsan, &[a[0]]).await.expect("claim");
    assert_eq!(r.done, vec![a[0]], "{:?}", r.refused);
    let r = w.crm.claim(&w.zhangsan, &[a[1]]).await.expect("claim");
    refused_over(&r, a_over);
    let r = w.crm.claim(&w.zhaoliu, &[c[0]]).await.expect("claim");
    refused_over(&r, c_over);
    assert_eq!(owned_by(&w, zhangsan).await, 2);
}

/// Two sessions writing the same customer at once: each checks that the
/// credit code is free, then writes; here the other session's create
/// commits between the two. The late create (or an update to the same code,
/// or the restore of a deleted customer holding it) is refused as a
/// duplicate, because the check is repeated inside the write transaction —
/// not both written, silently.
pub async fn concurrent_writes_of_one_customer_do_not_both_pass(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let create_elsewhere = |name: &'static str, uscc: &'static str| {
        let other = other.clone();
        let who = w.wangwu.clone();
        async move {
            other
                .create_record(
                    &who,
                    Entity::Customer,
                    fields(json!({"name": name, "uscc": uscc})),
                )
                .await
                .expect("the other create");
        }
    };
    let with_code = |uscc: &str| {
        let mut sel = Select::all(
            Table::Customers,
            w.admin.company_id.0,
            crate::clock::Clock::now(&*w.clock),
        );
        sel.filter = crate::store::Filter::Cmp(
            crate::store::Col::Column("uscc"),
            crate::store::CmpOp::Eq,
            crate::value::Value::from(uscc),
        );
        sel
    };

    // Two creates of one credit code.
    hooked.before_customer_write(create_elsewhere("深圳甲科技有限公司", "91440300708461136T"));
    let late = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "深圳乙贸易有限公司", "uscc": "91440300708461136T"})),
        )
        .await;
    assert!(matches!(late, Err(Error::Duplicate { .. })), "{late:?}");
    let found = w.crm.store().select(&with_code("91440300708461136T")).await;
    assert_eq!(found.expect("select").rows.len(), 1, "both creates passed");

    // An update to a code that another session's create takes meanwhile.
    let mine = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "深圳丙电子有限公司"})),
        )
        .await
        .expect("create");
    let set_code = |uscc: &'static str| {
        let w = &w;
        let mine = &mine;
        async move {
            w.crm
                .update_record(
                    &w.zhangsan,
                    Entity::Customer,
                    mine.id,
                    mine.version,
                    fields(json!({ "uscc": uscc })),
                )
                .await
        }
    };
    hooked.before_customer_write(create_elsewhere("深圳丁物流有限公司", "914403001922038216"));
    let late = set_code("914403001922038216").await;
    assert!(matches!(late, Err(Error::Duplicate { .. })), "{late:?}");
    let found = w.crm.store().select(&with_code("914403001922038216")).await;
    assert_eq!(
        found.expect("select").rows.len(),
        1,
        "the update passed too"
    );

    // Without a race, nothing changes: a free code is written.
    let r = set_code("91350100M000100Y43").await;
    assert!(r.is_ok(), "{r:?}");

    // A restore from the recycle bin racing a create of its credit code.
    let gone = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "深圳戊软件有限公司", "uscc": "91440300MA5F00004K"})),
        )
        .await
        .expect("create");
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[gone.id])
        .await;
    assert_eq!(r.done, vec![gone.id]);
    hooked.before_customer_write(create_elsewhere("深圳己软件有限公司", "91440300MA5F00004K"));
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[gone.id])
        .await;
    assert!(r.done.is_empty(), "the restore passed too");
    assert!(r.refused[0].1.contains("just taken"), "{:?}", r.refused);
    // The restore and the create guarded a common key: on PostgreSQL they
    // wait for each other.
    // (Between them, the delete guarded the customer's contacts.)
    let keys = hooked.guard_keys();
    let (restore, create) = (&keys[keys.len() - 1], &keys[keys.len() - 3]);
    assert!(
        restore.iter().any(|k| create.contains(k)),
        "{restore:?} / {create:?}"
    );
    // Without a race, a restore is refused as a create of its values would
    // be (the holder, another user's, is not named to this one).
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[gone.id])
        .await;
    let why = &r.refused[0].1;
    assert!(
        why.contains("91440300MA5F00004K") && why.contains("someone else"),
        "{why}"
    );
    let found = w.crm.store().select(&with_code("91440300MA5F00004K")).await;
    assert_eq!(found.expect("select").rows.len(), 1);
}

/// Claim (per claim, per day, caps with closed deals not counted, cooldown),
/// release with a reason, assign by a pool admin, the invalid area, and the
/// history of every move; contacts follow their customer into and out of
/// the pool; only members see and claim.
pub async fn pool_claim_release_assign_within_limits(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let spec = PoolSpec {
        name: "华东公海".into(),
        admins: vec![w.lisi.user_id],
        member_users: Vec::new(),
        member_departments: vec![w.group1],
        limits: PoolLimits {
            max_per_claim: Some(2),
            max_claims_per_day: Some(3),
            max_owned_per_user: Some(3),
            deals_count_toward_cap: false,
            reclaim_cooldown_days: 7,
            ..PoolLimits::default()
        },
    };
    assert!(matches!(
        w.crm.create_pool(&w.lisi, spec.clone()).await,
        Err(Error::Forbidden(_))
    ));
    // Day counts of ten years at most, as a recycling rule's.
    for (cooldown, warn, field) in [
        (3651, 0, "limits.reclaim_cooldown_days"),
        (0, 100_000, "limits.warn_days"),
    ] {
        let mut long = spec.clone();
        long.name = "十年公海".into();
        long.limits.reclaim_cooldown_days = cooldown;
        long.limits.warn_days = warn;
        match w.crm.create_pool(&w.admin, long).await {
            Err(Error::Validation(v)) => {
                assert!(v.0.iter().any(|e| e.field == field), "{v:?}")
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    let pool = w
        .crm
        .create_pool(&w.admin, spec.clone())
        .await
        .expect("pool");
    assert!(matches!(
        w.crm.create_pool(&w.admin, spec).await,
        Err(Error::Duplicate { .. })
    ));
    let ids = w
        .crm
        .import_into_pool(
            &w.lisi,
            pool.id,
            (0..6)
                .map(|i| fields(json!({"name": format!("公海客户{i}有限公司"), "phone": format!("010-6{i}345678")})))
                .collect(),
        )
        .await
        .expect("import into the pool");
    for id in &ids {
        let r = row(&w, *id).await;
        assert_eq!((place(&r), owner(&r)), (Place::Public, None));
        assert_eq!(r.get("pool_id").as_id(), Some(pool.id.0));
        assert!(r.get("department_id").is_null());
        assert!(r.get("owned_since").is_null(), "never owned");
        assert_eq!(r.get("locked"), &crate::value::Value::Bool(false));
        assert_eq!(r.get("open_opportunities"), &crate::value::Value::Int(0));
    }
    // Their `created` events say where they are, and their history
    // starts with their values.
    let events = w
        .crm
        .pending_events("pool-suite", 10_000)
        .await
        .expect("events");
    let created = events
        .iter()
        .find(|e| e.event.record_id == ids[0].0 && e.event.event_type == "customer.created")
        .map(|e| e.event.payload.to_value())
        .expect("created event");
    assert_eq!(created["owner_id"], json!(null));
    assert_eq!(created["place"], json!("public"));
    assert_eq!(created["pool_id"], json!(pool.id.to_string()));
    assert_eq!(created["name"], json!("公海客户0有限公司"));
    assert_eq!(created["attachments"], json!([]));
    assert!(
        created["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("KH-"))
    );
    // A contact of a pool customer follows it when claimed.
    let contact = w
        .crm
        .create_record(
            &w.admin,
            Entity::Contact,
            fields(json!({"customer_id": ids[0].to_string(), "name": "吴工"})),
        )
        .await
        .expect("contact");
    // Members see the public area; others do not; it is not in anyone's list.
    let page = w
        .crm
        .pool_customers(
            &w.zhangsan,
            pool.id,
            Place::Public,
            &ListQuery::default().with_total(),
        )
        .await
        .expect("members see the pool");
    assert_eq!(page.total, Some(6));
    assert!(matches!(
        w.crm
            .pool_customers(&w.wangwu, pool.id, Place::Public, &ListQuery::default())
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        w.visible(&w.zhangsan, ListQuery::default()).await.1,
        Some(0)
    );
    // Per claim: the whole claim is refused.
    let too_many = w.crm.claim(&w.zhangsan, &ids[0..3]).await;
    assert!(
        matches!(too_many, Err(Error::Forbidden(ref m)) if m.contains("at most 2")),
        "{too_many:?}"
    );
    let r = w.crm.claim(&w.zhangsan, &ids[0..2]).await.expect("claim");
    assert_eq!(r.done, ids[0..2].to_vec());
    let r0 = row(&w, ids[0]).await;
    assert_eq!(
        (place(&r0), owner(&r0)),
        (Place::Private, Some(w.zhangsan.user_id))
    );
    assert_eq!(r0.get("department_id").as_id(), Some(w.group1.0));
    let c = w
        .crm
        .get_record(&w.zhangsan, Entity::Contact, contact.id)
        .await
        .expect("the contact came along");
    assert_eq!(c.owner_id, Some(w.zhangsan.user_id));
    // Per day: the third claim of the day passes, the fourth does not.
    let r = w.crm.claim(&w.zhangsan, &ids[2..4]).await.expect("claim");
    assert_eq!(r.done, vec![ids[2]]);
    assert!(r.refused[0].1.contains("daily limit"), "{:?}", r.refused);
    // A closed deal moves to the closed-deal customers and, here, frees a slot.
    w.crm
        .mark_deal(&w.zhangsan, ids[0], None)
        .await
        .expect("deal");
    assert_eq!(place(&row(&w, ids[0]).await), Place::Deal);
    w.clock.advance(Duration::days(1));
    let r = w.crm.claim(&w.zhangsan, &[ids[3]]).await.expect("claim");
    assert_eq!(r.done, vec![ids[3]]);
    let r = w.crm.claim(&w.zhangsan, &[ids[4]]).await.expect("claim");
    assert!(
        r.refused[0].1.contains("already holds 3"),
        "{:?}",
        r.refused
    );
    // Release needs a reason; then the former owner waits out the cooldown.
    assert!(matches!(
        w.crm.release(&w.zhangsan, &[ids[1]], "  ", None).await,
        Err(Error::Validation(_))
    ));
    let r = w
        .crm
        .release(&w.zhangsan, &[ids[1]], "客户暂无采购计划", None)
        .await
        .expect("release");
    assert_eq!(r.done, vec![ids[1]]);
    let r1 = row(&w, ids[1]).await;
    assert_eq!((place(&r1), owner(&r1)), (Place::Public, None));
    assert_eq!(
        r1.get("previous_owner_id").as_id(),
        Some(w.zhangsan.user_id.0)
    );
    let r = w.crm.claim(&w.zhangsan, &[ids[1]]).await.expect("claim");
    assert!(
        r.refused[0]
            .1
            .contains("claimed back from 2026-12-05 10:00"),
        "{:?}",
        r.refused
    );
    let r = w.crm.claim(&w.zhaoliu, &[ids[1]]).await.expect("claim");
    assert_eq!(r.done, vec![ids[1]], "another member may take it at once");
    let r = w.crm.claim(&w.zhangsan, &[ids[4]]).await.expect("claim");
    assert_eq!(r.done, vec![ids[4]]);
    // Cooldown over: a customer given up 8 days ago may be claimed back.
    w.crm
        .release(&w.zhangsan, &[ids[3]], "换人跟进", None)
        .await
        .expect("release");
    w.clock.advance(Duration::days(8));
    let r = w.crm.claim(&w.zhangsan, &[ids[3]]).await.expect("claim");
    assert_eq!(r.done, vec![ids[3]]);
    // Assign: pool admins only, to anyone, within the caps.
    let r = w
        .crm
        .assign(&w.zhangsan, &[ids[5]], w.wangwu.user_id)
        .await
        .expect("assign");
    assert!(r.done.is_empty() && r.refused[0].1.contains("does not administer"));
    let r = w
        .crm
        .assign(&w.lisi, &[ids[5]], w.wangwu.user_id)
        .await
        .expect("assign");
    assert_eq!(r.done, vec![ids[5]]);
    let r5 = row(&w, ids[5]).await;
    assert_eq!(
        (place(&r5), owner(&r5), r5.get("department_id").as_id()),
        (Place::Private, Some(w.wangwu.user_id), Some(w.group2.0))
    );
    // The manager moves it to the invalid area; only pool admins see that.
    let r = w
        .crm
        .move_to_pool(&w.lisi, &[ids[5]], pool.id, Place::Invalid, "空号")
        .await
        .expect("invalidate");
    assert_eq!(r.done, vec![ids[5]]);
    let invalid = w
        .crm
        .pool_customers(
            &w.lisi,
            pool.id,
            Place::Invalid,
            &ListQuery::default().with_total(),
        )
        .await
        .expect("invalid area");
    assert_eq!(invalid.total, Some(1));
    assert!(matches!(
        w.crm
            .pool_customers(&w.zhangsan, pool.id, Place::Invalid, &ListQuery::default())
            .await,
        Err(Error::Forbidden(_))
    ));
    // The invalid area is the pool admins': to its members, unknown.
    assert_eq!(
        w.crm
            .claim(&w.zhangsan, &[ids[5]])
            .await
            .expect("claim")
            .refused[0]
            .1,
        Error::not_found(Entity::Customer, ids[5]).to_string()
    );
    // Every move is in the history: who, when, why.
    let h = w
        .crm
        .pool_history(&w.zhaoliu, ids[1])
        .await
        .expect("history");
    let steps: Vec<(&str, Option<UserId>, Option<&str>)> = h
        .iter()
        .map(|m| (m.action.as_str(), m.actor_id, m.reason.as_deref()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (
                "import",
                Some(w.lisi.user_id),
                Some("imported into pool 华东公海")
            ),
            ("claim", Some(w.zhangsan.user_id), None),
            (
                "release",
                Some(w.zhangsan.user_id),
                Some("客户暂无采购计划")
            ),
            ("claim", Some(w.zhaoliu.user_id), None),
        ]
    );
    assert_eq!(h[2].to, Place::Public);
    let h0 = w
        .crm
        .pool_history(&w.zhangsan, ids[0])
        .await
        .expect("history");
    assert_eq!(
        h0.last().map(|m| (m.action.as_str(), m.to)),
        Some(("deal", Place::Deal))
    );
    assert_eq!(events_of(&w, "customer.claimed").await.len(), 7);
    assert_eq!(events_of(&w, "customer.released").await.len(), 2);
    // Every customer is in exactly one place.
    for id in &ids {
        let r = row(&w, *id).await;
        assert_eq!(place(&r).is_owned(), owner(&r).is_some(), "{id}");
    }
}

/// Rules as data: no follow-up for N days (N per level), no deal within N
/// days with closed deals exempt. A dry run at any date says which rule
/// fires and when; the real sweep uses the clock, warns owners once per due
/// date, recycles (owner cleared on customer and contacts, previous owner
/// kept for the cooldown), never touches locked customers and changes
/// nothing when run again.
pub async fn recycling_sweep_dry_run_warnings_and_idempotence(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "销售部公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.sales],
                limits: PoolLimits {
                    reclaim_cooldown_days: 5,
                    warn_days: 3,
                    ..PoolLimits::default()
                },
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let mut follow = RuleSpec::new(RuleKind::NoFollowUp, 10);
    // A level as the customers' level spells it, letter case aside.
    follow.level_days.insert("a".into(), 20);
    let follow = w
        .crm
        .add_recycle_rule(&w.lisi, pool.id, follow)
        .await
        .expect("rule");
    assert_eq!(
        follow.spec.level_days,
        BTreeMap::from([("A".to_string(), 20)])
    );
    // No level the customers cannot have, none given twice.
    for levels in [vec![("Z", 5)], vec![("A", 5), ("a", 9)]] {
        let mut bad = RuleSpec::new(RuleKind::NoFollowUp, 10);
        for (l, d) in levels {
            bad.level_days.insert(l.into(), d);
        }
        match w.crm.add_recycle_rule(&w.lisi, pool.id, bad).await {
            Err(Error::Validation(e)) => {
                let m = e.to_string();
                assert!(
                    m.contains("no customer level") || m.contains("twice"),
                    "{m}"
                );
            }
            other => panic!("a rule's levels: {other:?}"),
        }
    }
    let mut no_deal = RuleSpec::new(RuleKind::NoDeal, 30);
    no_deal.exempt_deals = true;
    let no_deal = w
        .crm
        .add_recycle_rule(&w.lisi, pool.id, no_deal)
        .await
        .expect("rule");
    assert!(matches!(
        w.crm
            .add_recycle_rule(&w.zhangsan, pool.id, RuleSpec::new(RuleKind::NoDeal, 5))
            .await,
        Err(Error::Forbidden(_)) | Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        w.crm
            .add_recycle_rule(&w.lisi, pool.id, RuleSpec::new(RuleKind::NoDeal, 0))
            .await,
        Err(Error::Validation(_))
    ));
    let c1 = w
        .customer(&w.zhangsan, "回收一有限公司", json!({"level": "B"}))
        .await
        .id;
    let c2 = w
        .customer(&w.zhangsan, "回收二有限公司", json!({"level": "A"}))
        .await
        .id;
    let c3 = w
        .customer(&w.zhangsan, "回收三有限公司", json!({"level": "B"}))
        .await
        .id;
    let c4 = w
        .customer(&w.zhangsan, "回收四有限公司", json!({"level": "B"}))
        .await
        .id;
    let c5 = w
        .customer(&w.zhangsan, "回收五有限公司", json!({"level": "B"}))
        .await
        .id;
    let c6 = w
        .customer(&w.wangwu, "回收六有限公司", json!({"level": "B"}))
        .await
        .id;
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c1.to_string(), "name": "钱经理"})),
        )
        .await
        .expect("contact")
        .id;
    // Owners cannot lock their own customers; their manager can.
    let r = w.crm.set_locked(&w.zhangsan, &[c4], true).await;
    assert!(r.done.is_empty(), "{r:?}");
    let r = w.crm.set_locked(&w.lisi, &[c4], true).await;
    assert_eq!(r.done, vec![c4]);
    w.crm.mark_deal(&w.zhangsan, c5, None).await.expect("deal");
    w.clock.advance(Duration::days(6));
    for c in [c3, c5] {
        w.crm
            .create_record(
                &w.zhangsan,
                Entity::FollowUp,
                fields(json!({"customer_id": c.to_string(), "channel": "call", "content": "回访"})),
            )
            .await
            .expect("follow-up");
    }
    let ids = |items: &[crate::pool::SweepItem]| -> BTreeSet<RecordId> {
        items.iter().map(|i| i.customer).collect()
    };
    // Dry runs at day 12 and 14: nothing changes, each customer is explained.
    let before = event_count(&w).await;
    let dry = w
        .crm
        .sweep(
            &w.admin,
            &SweepOptions {
                dry_run: true,
                at: Some(day(12)),
                pool: None,
            },
        )
        .await
        .expect("dry run");
    assert_eq!(ids(&dry.recycled), BTreeSet::from([c1, c6]));
    assert!(dry.upcoming.is_empty(), "{:?}", dry.upcoming);
    let item = dry.recycled.iter().find(|i| i.customer == c1).expect("c1");
    assert_eq!(item.rule_id, follow.id);
    assert_eq!(item.due_at, Some(day(10)));
    assert!(
        item.why.contains("held since 2026-11-27, 10 days"),
        "{}",
        item.why
    );
    let dry = w
        .crm
        .sweep(
            &w.lisi,
            &SweepOptions {
                dry_run: true,
                at: Some(day(14)),
                pool: Some(pool.id),
            },
        )
        .await
        .expect("dry run");
    assert_eq!(ids(&dry.upcoming), BTreeSet::from([c3, c5]));
    assert!(
        dry.upcoming
            .iter()
            .all(|i| i.due_at == Some(day(16)) && i.why.contains("last follow-up 2026-12-03")),
        "{:?}",
        dry.upcoming
    );
    assert_eq!(event_count(&w).await, before, "a dry run writes nothing");
    assert_eq!(place(&row(&w, c1).await), Place::Private);
    // The explanation, rule by rule.
    let e = w
        .crm
        .explain_recycling(&w.zhangsan, c5, Some(day(40)))
        .await
        .expect("explain");
    let by_rule: BTreeMap<_, _> = e.outcomes.iter().map(|o| (o.rule_id, o.status)).collect();
    assert_eq!(by_rule[&follow.id], RuleStatus::Fires);
    assert_eq!(by_rule[&no_deal.id], RuleStatus::Exempt);
    let e = w
        .crm
        .explain_recycling(&w.zhangsan, c4, None)
        .await
        .expect("explain");
    assert!(e.summary.contains("locked"), "{}", e.summary);
    let e = w
        .crm
        .explain_recycling(&w.zhangsan, c2, Some(day(12)))
        .await
        .expect("explain");
    assert_eq!(e.next.as_ref().and_then(|o| o.due_at), Some(day(20)));
    assert!(e.summary.contains("2026-12-17"), "{}", e.summary);
    // Only admins of the pool sweep; a real sweep runs at the clock's time.
    assert!(matches!(
        w.crm.sweep(&w.zhangsan, &SweepOptions::default()).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        w.crm
            .sweep(
                &w.admin,
                &SweepOptions {
                    dry_run: false,
                    at: Some(day(30)),
                    pool: None
                }
            )
            .await,
        Err(Error::Validation(_))
    ));
    // Day 7: the owners of c1 and c6 are warned, once.
    w.clock.advance(Duration::days(1));
    let s = w
        .crm
        .sweep(&w.admin, &SweepOptions::default())
        .await
        .expect("sweep");
    assert!(s.recycled.is_empty());
    assert_eq!(ids(&s.warned), BTreeSet::from([c1, c6]));
    let warnings = events_of(&w, "customer.recycle_warning").await;
    assert_eq!(warnings.len(), 2);
    let again = w
        .crm
        .sweep(&w.admin, &SweepOptions::default())
        .await
        .expect("sweep");
    assert!(again.warned.is_empty() && again.recycled.is_empty());
    assert_eq!(events_of(&w, "customer.recycle_warning").await.len(), 2);
    // Day 10 and an hour: c1 and c6 go back to the pool.
    w.clock.advance(Duration::days(3) + Duration::hours(1));
    let s = w
        .crm
        .sweep(&w.admin, &SweepOptions::default())
        .await
        .expect("sweep");
    assert_eq!(ids(&s.recycled), BTreeSet::from([c1, c6]));
    let r1 = row(&w, c1).await;
    assert_eq!((place(&r1), owner(&r1)), (Place::Public, None));
    assert_eq!(
        r1.get("previous_owner_id").as_id(),
        Some(w.zhangsan.user_id.0)
    );
    assert_eq!(r1.get("pool_id").as_id(), Some(pool.id.0));
    let k = w
        .crm
        .store()
        .get(Table::Contacts, contact.0)
        .await
        .expect("get")
        .expect("contact");
    assert!(
        k.get("owner_id").is_null(),
        "the contact's owner is cleared too"
    );
    let h = w
        .crm
        .pool_history(&w.zhangsan, c1)
        .await
        .expect("history of a pool customer");
    let last = h.last().expect("moved");
    assert_eq!(
        (
            last.action.as_str(),
            last.actor_id,
            last.rule_id,
            last.from_owner
        ),
        ("recycle", None, Some(follow.id), Some(w.zhangsan.user_id))
    );
    assert!(
        last.reason
            .as_deref()
            .unwrap_or_default()
            .contains("no follow-up for 10 days")
    );
    // Idempotent: a second sweep changes nothing.
    let events = event_count(&w).await;
    let moves = h.len();
    let again = w
        .crm
        .sweep(&w.admin, &SweepOptions::default())
        .await
        .expect("sweep");
    assert!(
        again.recycled.is_empty() && again.warned.is_empty(),
        "{again:?}"
    );
    assert_eq!(event_count(&w).await, events);
    assert_eq!(
        w.crm
            .pool_history(&w.zhangsan, c1)
            .await
            .expect("history")
            .len(),
        moves
    );
    // The former owner waits out the cooldown.
    let r = w.crm.claim(&w.zhangsan, &[c1]).await.expect("claim");
    assert!(r.refused[0].1.contains("claimed back"), "{r:?}");
    // What is about to go, for its owner.
    let soon = w
        .crm
        .about_to_be_recycled(&w.zhangsan, 7)
        .await
        .expect("list");
    assert_eq!(ids(&soon), BTreeSet::from([c3, c5]));
    assert!(
        w.crm
            .about_to_be_recycled(&w.wangwu, 30)
            .await
            .expect("list")
            .is_empty()
    );
    // Far ahead, everything but the locked customer would go.
    let dry = w
        .crm
        .sweep(
            &w.admin,
            &SweepOptions {
                dry_run: true,
                at: Some(day(100)),
                pool: None,
            },
        )
        .await
        .expect("dry run");
    assert_eq!(ids(&dry.recycled), BTreeSet::from([c2, c3, c5]));
    let far = w
        .crm
        .explain_recycling(&w.zhangsan, c4, Some(day(100)))
        .await
        .expect("explain");
    assert_eq!(far.locked, Some(true));
}

/// Administering a pool lets one sweep the customers it governs, not read
/// them: a pool admin whose data scope is their own department (赵六, 销售一组)
/// sees in a dry run and in the sweep's report only the customers they may
/// read (their department's, and one shared with them), the others
/// counted per list without a code, name, owner or id — the same in the
/// preview and in the sweep it previews, which recycles and warns the
/// hidden ones as any other. `explain` of a customer they may not read
/// says not found, exactly as for a customer that does not exist.
pub async fn sweep_reports_only_customers_the_actor_may_read(store: Arc<dyn Store>) {
    use crate::pool::{SweepHidden, SweepItem, SweepReport};
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "销售部公海".into(),
                admins: vec![w.zhaoliu.user_id],
                member_departments: vec![w.sales],
                limits: PoolLimits {
                    warn_days: 3,
                    ..PoolLimits::default()
                },
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    w.crm
        .add_recycle_rule(&w.zhaoliu, pool.id, RuleSpec::new(RuleKind::NoFollowUp, 10))
        .await
        .expect("rule");
    // Group one's customers (read by 赵六), group two's (not), one of which
    // is shared with him.
    let mine = w.customer(&w.zhangsan, "一组回收有限公司", json!({})).await;
    let mine_soon = w
        .customer(&w.zhangsan, "一组将到期有限公司", json!({}))
        .await;
    let hidden = w.customer(&w.wangwu, "二组隐藏有限公司", json!({})).await;
    let hidden_soon = w.customer(&w.wangwu, "二组将到期有限公司", json!({})).await;
    let shared = w.customer(&w.wangwu, "二组共享有限公司", json!({})).await;
    w.crm
        .share_record(
            &w.wangwu,
            Entity::Customer,
            shared.id,
            w.zhaoliu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    assert!(matches!(
        w.crm
            .get_record(&w.zhaoliu, Entity::Customer, hidden.id)
            .await,
        Err(Error::NotFound { .. })
    ));
    // A follow-up on day 6 puts the due date of two of them at day 16.
    w.clock.advance(Duration::days(6));
    for (who, c) in [(&w.zhangsan, mine_soon.id), (&w.wangwu, hidden_soon.id)] {
        w.crm
            .create_record(
                who,
                Entity::FollowUp,
                fields(json!({"customer_id": c.to_string(), "channel": "call", "content": "回访"})),
            )
            .await
            .expect("follow-up");
    }
    let ids =
        |items: &[SweepItem]| -> BTreeSet<RecordId> { items.iter().map(|i| i.customer).collect() };
    // Nothing of a hidden customer is in the report: not its id, code,
    // name, nor (the shared customer aside) its owner.
    let tells_nothing_of = |report: &SweepReport, who: &[&crate::records::Record]| {
        let text = serde_json::to_string(report).expect("json");
        for c in who {
            for s in [
                c.id.to_string(),
                c.code.clone().expect("code"),
                c.fields["name"].as_str().expect("name").to_string(),
            ] {
                assert!(!text.contains(&s), "{s} in {text}");
            }
        }
        assert!(
            report
                .recycled
                .iter()
                .chain(&report.warned)
                .chain(&report.upcoming)
                .filter(|i| i.customer != shared.id)
                .all(|i| i.owner_id != Some(w.wangwu.user_id)),
            "{text}"
        );
    };
    let dry = |actor: &crate::auth::Actor, at: DateTime<Utc>| {
        let crm = &w.crm;
        let actor = actor.clone();
        async move {
            crm.sweep(
                &actor,
                &SweepOptions {
                    dry_run: true,
                    at: Some(at),
                    pool: Some(pool.id),
                },
            )
            .await
            .expect("dry run")
        }
    };
    // The administrator reads everyone: all listed, nothing counted aside.
    let all = dry(&w.admin, day(13)).await;
    assert_eq!(
        ids(&all.recycled),
        BTreeSet::from([mine.id, hidden.id, shared.id])
    );
    assert_eq!(
        ids(&all.upcoming),
        BTreeSet::from([mine_soon.id, hidden_soon.id])
    );
    assert_eq!(all.hidden, SweepHidden::default());
    // The pool admin reads only group one's and the shared customer.
    let preview = dry(&w.zhaoliu, day(13)).await;
    assert_eq!(ids(&preview.recycled), BTreeSet::from([mine.id, shared.id]));
    assert_eq!(ids(&preview.upcoming), BTreeSet::from([mine_soon.id]));
    assert_eq!(
        preview.hidden,
        SweepHidden {
            recycled: 1,
            upcoming: 1,
            ..SweepHidden::default()
        }
    );
    assert_eq!(preview.hidden.total(), 2);
    tells_nothing_of(&preview, &[&hidden, &hidden_soon]);
    // Nor does explaining one: not found, as for a customer nobody has.
    let missing = RecordId(Uuid::now_v7());
    for (id, at) in [
        (hidden.id, None),
        (hidden_soon.id, Some(day(13))),
        (missing, None),
    ] {
        match w.crm.explain_recycling(&w.zhaoliu, id, at).await {
            Err(e) => assert_eq!(
                e.to_string(),
                Error::not_found(Entity::Customer, id).to_string()
            ),
            Ok(e) => panic!("{id} explained to who may not read it: {e:?}"),
        }
    }
    let e = w
        .crm
        .explain_recycling(&w.zhaoliu, shared.id, Some(day(13)))
        .await
        .expect("a shared customer is explained");
    assert_eq!(
        e.next.map(|o| o.status),
        Some(RuleStatus::Fires),
        "{}",
        e.summary
    );
    // The sweep it previews, on day 13: the same customers listed, the
    // hidden ones recycled and their owners warned all the same.
    w.clock.advance(Duration::days(7));
    let report = w
        .crm
        .sweep(&w.zhaoliu, &SweepOptions::default())
        .await
        .expect("sweep");
    assert_eq!(ids(&report.recycled), ids(&preview.recycled));
    assert_eq!(ids(&report.warned), ids(&preview.upcoming));
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!(
        report.hidden,
        SweepHidden {
            recycled: 1,
            warned: 1,
            ..SweepHidden::default()
        }
    );
    tells_nothing_of(&report, &[&hidden, &hidden_soon]);
    for c in [mine.id, hidden.id, shared.id] {
        assert_eq!(place(&row(&w, c).await), Place::Public, "{c}");
    }
    let warned: BTreeSet<Uuid> = events_of(&w, "customer.recycle_warning")
        .await
        .iter()
        .map(|e| e.event.record_id)
        .collect();
    assert_eq!(warned, BTreeSet::from([mine_soon.id.0, hidden_soon.id.0]));
}

/// The key rows of one kind, as (customer, flagged) pairs.
async fn key_rows(w: &World, kind: &str) -> BTreeSet<(RecordId, bool)> {
    let mut sel = Select::all(
        Table::CustomerKeys,
        w.admin.company_id.0,
        crate::clock::Clock::now(&*w.clock),
    );
    sel.filter = crate::store::Filter::Cmp(
        crate::store::Col::Column("kind"),
        crate::store::CmpOp::Eq,
        kind.into(),
    );
    w.crm
        .store()
        .select(&sel)
        .await
        .expect("keys")
        .rows
        .iter()
        .map(|r| {
            (
                RecordId(r.get("customer_id").as_id().unwrap_or_default()),
                r.get("duplicate").as_bool() == Some(true),
            )
        })
        .collect()
}

/// The name, credit code, phone and e-mail are looked up through the
/// customers' own columns: their key rows exist only while two or more live
/// customers share the key (flagged, one per holder) and go when a holder
/// moves away, is deleted, and come back with a restore. Rebuilding the
/// keys of a consistent company changes nothing, and drops an unshared
/// column-key row (as a database before this rule holds).
pub async fn column_keys_have_rows_only_while_shared(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = w
        .customer(
            &w.zhangsan,
            "甲乙丙有限公司",
            json!({"phone": "010-62340099", "email": "A@Example.cn"}),
        )
        .await;
    assert!(key_rows(&w, "phone").await.is_empty());
    assert!(key_rows(&w, "name").await.is_empty());
    assert!(key_rows(&w, "email").await.is_empty());
    let b = w
        .customer(
            &w.wangwu,
            "丁戊己有限公司",
            json!({"phone": "010 6234 0099", "email": "a@EXAMPLE.cn"}),
        )
        .await;
    let shared = BTreeSet::from([(a.id, true), (b.id, true)]);
    assert_eq!(key_rows(&w, "phone").await, shared);
    assert_eq!(
        key_rows(&w, "email").await,
        shared,
        "e-mail keys are lowercased"
    );
    assert_eq!(group_of(&company_report(&w).await, "phone").len(), 2);
    let set_phone = |version: i64, phone: &'static str| {
        let w = &w;
        let id = b.id;
        async move {
            w.crm
                .update_record(
                    &w.admin,
                    Entity::Customer,
                    id,
                    version,
                    fields(json!({ "phone": phone })),
                )
                .await
                .expect("update")
        }
    };
    let b = set_phone(b.version, "010-62340100").await;
    assert!(key_rows(&w, "phone").await.is_empty(), "moved away");
    assert!(group_of(&company_report(&w).await, "phone").is_empty());
    set_phone(b.version, "010-62340099").await;
    assert_eq!(key_rows(&w, "phone").await, shared, "back again");
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[a.id])
        .await;
    assert_eq!(r.done, vec![a.id]);
    assert!(
        key_rows(&w, "phone").await.is_empty(),
        "one live holder left"
    );
    assert!(key_rows(&w, "email").await.is_empty());
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[a.id])
        .await;
    assert_eq!(r.done, vec![a.id], "{:?}", r.refused);
    assert_eq!(key_rows(&w, "phone").await, shared, "restored");
    assert_eq!(key_rows(&w, "email").await, shared, "restored");
    // A third holder joins and leaves: the other two stay flagged.
    let c = w
        .customer(&w.lisi, "庚辛壬有限公司", json!({"phone": "010-62340099"}))
        .await;
    let mut three = shared.clone();
    three.insert((c.id, true));
    assert_eq!(key_rows(&w, "phone").await, three);
    let r = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id]);
    assert_eq!(key_rows(&w, "phone").await, shared, "two still share it");
    let r = w
        .crm
        .purge_records(&w.admin, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id]);
    assert_eq!(key_rows(&w, "phone").await, shared);

    let stats = w
        .crm
        .rebuild_duplicate_keys(&w.admin)
        .await
        .expect("rebuild");
    assert_eq!(
        (stats.customers, stats.added, stats.removed, stats.flagged),
        (2, 0, 0, 0),
        "{stats:?}"
    );
    // An unshared name row, as kept before: the rebuild drops it.
    let now = crate::clock::Clock::now(&*w.clock);
    let mut values = vec![
        ("id", crate::value::Value::Id(Uuid::now_v7())),
        ("company_id", crate::value::Value::Id(w.admin.company_id.0)),
        ("version", crate::value::Value::Int(1)),
        ("created_at", crate::value::Value::Timestamp(now)),
        ("updated_at", crate::value::Value::Timestamp(now)),
        ("deleted_at", crate::value::Value::Null),
    ];
    values.extend([
        ("customer_id", crate::value::Value::Id(a.id.0)),
        ("kind", "name".into()),
        ("key", "甲乙丙".into()),
        ("duplicate", false.into()),
    ]);
    w.crm
        .store()
        .apply(&ChangeSet {
            ops: vec![Op::Insert {
                table: Table::CustomerKeys,
                values,
            }],
            ..ChangeSet::default()
        })
        .await
        .expect("stale row");
    assert_eq!(key_rows(&w, "name").await.len(), 1);
    let stats = w
        .crm
        .rebuild_duplicate_keys(&w.admin)
        .await
        .expect("rebuild");
    assert_eq!((stats.added, stats.removed), (0, 1), "{stats:?}");
    assert!(key_rows(&w, "name").await.is_empty());
    assert_eq!(key_rows(&w, "phone").await, shared);

    // A restore recomputes the derived keys (here an e-mail key left stale,
    // as a migration's SQL could), even of a record that fails a rule
    // across fields (an individual with a credit code, which an import's
    // update can leave).
    let stored = row(&w, a.id).await;
    w.crm
        .store()
        .apply(&ChangeSet {
            ops: vec![Op::Update {
                table: Table::Customers,
                id: a.id.0,
                expected_version: stored.version(),
                values: vec![
                    ("email_key", "stale@example.cn".into()),
                    ("kind", "individual".into()),
                    ("uscc", "91110000802100433B".into()),
                ],
            }],
            ..ChangeSet::default()
        })
        .await
        .expect("stale key");
    let r = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[a.id])
        .await;
    assert_eq!(r.done, vec![a.id]);
    let r = w
        .crm
        .restore_records(&w.admin, Entity::Customer, &[a.id])
        .await;
    assert_eq!(r.done, vec![a.id], "{:?}", r.refused);
    let back = row(&w, a.id).await;
    assert_eq!(back.get("email_key").as_text(), Some("a@example.cn"));
    assert_eq!(key_rows(&w, "email").await, shared, "shared again");
}

/// Phone and e-mail duplicates are allowed but reported (event, report with
/// the reason, invisible members counted, not shown); a refusing key refuses
/// even a customer the actor cannot see without naming its owner; custom
/// fields become keys; merge keeps the survivor, takes chosen fields, moves
/// contacts and follow-ups, is audited and permission-checked.
pub async fn duplicate_keys_report_and_merge(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = w
        .customer(
            &w.zhangsan,
            "北京华信智联科技有限公司",
            json!({"phone": "010-62345678", "email": "info@hxzl.cn", "tags": "重点"}),
        )
        .await;
    let b = w
        .customer(
            &w.wangwu,
            "华信智联北京分公司",
            json!({"phone": "010-62345678", "email": "INFO@HXZL.CN", "city": "北京", "tags": "渠道"}),
        )
        .await;
    for (c, owner, name) in [(a.id, &w.zhangsan, "赵总"), (b.id, &w.wangwu, "钱总")] {
        w.crm
            .create_record(
                owner,
                Entity::Contact,
                fields(json!({"customer_id": c.to_string(), "name": name})),
            )
            .await
            .expect("contact");
        w.crm
            .create_record(
                owner,
                Entity::FollowUp,
                fields(
                    json!({"customer_id": c.to_string(), "channel": "visit", "content": "拜访"}),
                ),
            )
            .await
            .expect("follow-up");
    }
    let possible = events_of(&w, "customer.possible_duplicate").await;
    assert_eq!(possible.len(), 2, "phone and e-mail of the second customer");
    assert!(possible.iter().all(|e| e.event.record_id == b.id.0));
    // On demand, before creating: invisible matches say only "someone else".
    let found = w
        .crm
        .find_duplicates(
            &w.wangwu,
            &fields(json!({"name": "新公司", "phone": "010-62345678"})),
        )
        .await
        .expect("check");
    let hidden = found
        .iter()
        .find(|m| m.customer.is_none())
        .expect("a's phone");
    assert_eq!(
        (hidden.field.as_str(), hidden.mode, hidden.visible),
        ("phone", DedupeMode::Warn, false)
    );
    assert_eq!(hidden.owner, "owned by someone else");
    assert!(found.iter().any(|m| m.customer == Some(b.id)));
    // The company-wide report: phone and e-mail groups with their reason.
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    let fields_found: BTreeSet<&str> = report.groups.iter().map(|g| g.field.as_str()).collect();
    assert_eq!(fields_found, BTreeSet::from(["email", "phone"]));
    let phone = report
        .groups
        .iter()
        .find(|g| g.field == "phone")
        .expect("phone");
    assert_eq!(
        phone.members.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    assert!(phone.reason.contains("same phone"), "{}", phone.reason);
    let page = w
        .crm
        .duplicate_report(
            &w.admin,
            &DuplicateQuery {
                limit: 1,
                ..DuplicateQuery::default()
            },
        )
        .await
        .expect("report");
    assert_eq!(page.groups.len(), 1);
    let rest = w
        .crm
        .duplicate_report(
            &w.admin,
            &DuplicateQuery {
                after: page.next.clone(),
                limit: 10,
                ..DuplicateQuery::default()
            },
        )
        .await
        .expect("report");
    assert_eq!((rest.groups.len(), rest.next.clone()), (1, None));
    let mine = w
        .crm
        .duplicate_report(&w.wangwu, &DuplicateQuery::default())
        .await
        .expect("report");
    assert!(
        mine.groups
            .iter()
            .all(|g| g.members.len() == 1 && g.hidden == 1)
    );
    // A refusing e-mail key refuses even when the match is invisible.
    assert!(matches!(
        w.crm
            .set_dedupe_rule(&w.lisi, "email", DedupeMode::Block)
            .await,
        Err(Error::Forbidden(_))
    ));
    w.crm
        .set_dedupe_rule(&w.admin, "email", DedupeMode::Block)
        .await
        .expect("setting");
    let err = w
        .crm
        .create_record(
            &w.zhaoliu,
            Entity::Customer,
            fields(json!({"name": "另一家公司", "email": "Info@hxzl.cn"})),
        )
        .await
        .expect_err("refused");
    // zhaoliu sees group one (zhangsan's a) and is told whose it is.
    assert!(err.to_string().contains("张三"), "{err}");
    w.customer(
        &w.zhangsan,
        "销售邮箱有限公司",
        json!({"email": "sales@hxzl.cn"}),
    )
    .await;
    let err = w
        .crm
        .create_record(
            &w.wangwu,
            Entity::Customer,
            fields(json!({"name": "新客户有限公司", "email": "SALES@hxzl.cn"})),
        )
        .await
        .expect_err("refused");
    match &err {
        Error::Duplicate { message, .. } => {
            assert!(
                message.contains("someone else") && !message.contains("张三"),
                "{message}"
            );
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // Custom fields as keys.
    w.crm
        .define_custom_field(
            &w.admin,
            crate::custom::NewCustomField {
                entity: Entity::Customer,
                key: "erp_code".into(),
                label: "ERP编码".into(),
                label_en: None,
                field_type: crate::custom::CustomFieldType::Text,
                options: Vec::new(),
                required: false,
                unique: false,
            },
        )
        .await
        .expect("field");
    let x = w
        .customer(&w.zhangsan, "甲有限公司", json!({"erp_code": "E-001"}))
        .await;
    let y = w
        .customer(&w.zhangsan, "乙有限公司", json!({"erp_code": " e-001 "}))
        .await;
    w.crm
        .set_dedupe_rule(&w.admin, "ERP编码", DedupeMode::Warn)
        .await
        .expect("setting with rebuild");
    let report = w
        .crm
        .duplicate_report(
            &w.zhangsan,
            &DuplicateQuery {
                fields: vec!["custom.erp_code".into()],
                ..DuplicateQuery::default()
            },
        )
        .await
        .expect("report");
    assert_eq!(report.groups.len(), 1);
    assert_eq!(
        report.groups[0]
            .members
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![x.id, y.id]
    );
    assert!(
        report.groups[0].reason.contains("ERP编码"),
        "{}",
        report.groups[0].reason
    );
    // Merge: permission-checked.
    let spec = MergeSpec {
        survivor: a.id,
        others: vec![b.id],
        take: BTreeMap::from([("city".to_string(), b.id), ("tags".to_string(), a.id)]),
    };
    assert!(
        w.crm.merge_customers(&w.zhangsan, &spec).await.is_err(),
        "b is not zhangsan's"
    );
    assert!(matches!(
        w.crm
            .merge_customers(
                &w.lisi,
                &MergeSpec {
                    take: BTreeMap::from([("city".to_string(), x.id)]),
                    ..spec.clone()
                }
            )
            .await,
        Err(Error::Validation(_))
    ));
    let merged = w.crm.merge_customers(&w.lisi, &spec).await.expect("merge");
    assert_eq!(merged.id, a.id);
    assert_eq!(merged.text("name"), Some("北京华信智联科技有限公司"));
    assert_eq!(merged.text("city"), Some("北京"));
    assert_eq!(merged.fields["tags"], json!(["重点"]));
    let kids = w
        .crm
        .list_records(
            &w.lisi,
            Entity::Contact,
            &ListQuery::default().filter(Cond::Eq("customer_id".into(), json!(a.id.to_string()))),
        )
        .await
        .expect("contacts");
    assert_eq!(kids.items.len(), 2);
    assert!(
        kids.items
            .iter()
            .all(|c| c.owner_id == Some(w.zhangsan.user_id))
    );
    let fups = w
        .crm
        .list_records(
            &w.lisi,
            Entity::FollowUp,
            &ListQuery::default().filter(Cond::Eq("customer_id".into(), json!(a.id.to_string()))),
        )
        .await
        .expect("follow-ups");
    assert_eq!(fups.items.len(), 2);
    let gone = row(&w, b.id).await;
    assert!(gone.get("deleted_at").as_timestamp().is_some());
    assert_eq!(gone.get("merged_into").as_id(), Some(a.id.0));
    let audit = w
        .crm
        .history(&w.lisi, Entity::Customer, a.id.0)
        .await
        .expect("history");
    let last = audit.last().expect("merge audited");
    assert_eq!(last.action, "merge");
    assert!(last.changes.iter().any(|c| c.field == "city"));
    assert_eq!(events_of(&w, "customer.merged").await.len(), 1);
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    assert!(
        report.groups.iter().all(|g| g.field == "custom.erp_code"),
        "{:?}",
        report.groups
    );
    // A company may let equal names through and only report them.
    w.crm
        .set_dedupe_rule(&w.admin, "name", DedupeMode::Warn)
        .await
        .expect("setting");
    w.customer(&w.wangwu, "北京华信智联科技有限公司", json!({}))
        .await;
    let names = w
        .crm
        .duplicate_report(
            &w.admin,
            &DuplicateQuery {
                fields: vec!["name".into()],
                ..DuplicateQuery::default()
            },
        )
        .await
        .expect("report");
    assert_eq!(names.groups.len(), 1);
    assert_eq!(names.groups[0].members.len(), 2);
}

/// The 360° view gathers contacts (masked per field rules), follow-ups,
/// pool history and the forecast; the ready-made lists; batch transfer,
/// share, move to pool, delete and archive on a filter report per record.
pub async fn customer_view_lists_and_batches_by_filter(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut perms = Vec::new();
    for e in Entity::RECORDS {
        perms.push(Permission {
            entity: e,
            action: Action::Read,
            scope: DataScope::All,
        });
    }
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "客服".into(),
                is_admin: false,
                permissions: perms,
                field_rules: vec![FieldRule {
                    entity: Entity::Contact,
                    field: "mobile".into(),
                    access: FieldAccess::Masked,
                }],
            },
        )
        .await
        .expect("role");
    let service = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "liuyang".into(),
                display_name: "刘洋".into(),
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    let service = w.crm.actor(service.id).await.expect("actor");
    let today = w.crm.today();
    let k = w
        .customer(
            &w.zhangsan,
            "三六零视图有限公司",
            json!({"city": "北京", "next_follow_up": today.to_string(),
                   "attachments": [{"name": "营业执照.png", "kind": "image", "uri": "s3://bucket/l.png", "size": 1024}]}),
        )
        .await;
    let overdue = w
        .customer(
            &w.zhangsan,
            "逾期跟进有限公司",
            json!({"city": "北京", "next_follow_up": (today - Duration::days(2)).to_string()}),
        )
        .await;
    let third = w
        .customer(&w.zhangsan, "第三有限公司", json!({"city": "上海"}))
        .await;
    let birthday = format!("1985-{}", (today + Duration::days(3)).format("%m-%d"));
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": k.id.to_string(), "name": "孙丽", "mobile": "13812345678", "birthday": birthday})),
        )
        .await
        .expect("contact");
    // A birthday lies between 1900 and today.
    for (bad, why) in [
        ((today + Duration::days(1)).to_string(), "in the future"),
        ("1899-12-31".to_string(), "before 1900"),
    ] {
        let err = w
            .crm
            .create_record(
                &w.zhangsan,
                Entity::Contact,
                fields(json!({"customer_id": k.id.to_string(), "name": "周未", "birthday": bad})),
            )
            .await
            .expect_err("birthday refused");
        let text = err.to_string();
        assert!(text.contains("生日") && text.contains(why), "{text}");
    }
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({"customer_id": k.id.to_string(), "channel": "wechat", "content": "发了报价"})),
        )
        .await
        .expect("follow-up");
    // The view, as the service agent sees it.
    let v = w.crm.customer_view(&service, k.id).await.expect("view");
    assert_eq!(v.customer.id, k.id);
    assert_eq!(v.contacts.total, 1);
    assert_eq!(v.contacts.items[0].text("mobile"), Some("138****5678"));
    assert_eq!(v.follow_ups.total, 1);
    assert_eq!(v.attachments.len(), 1);
    assert_eq!(v.place.place, Some(Place::Private));
    assert!(v.pool_history.is_empty());
    assert!(v.sections.keys().all(|t| Table::from_name(t).is_some()));
    assert!(matches!(
        w.crm.customer_view(&w.wangwu, k.id).await,
        Err(Error::NotFound { .. })
    ));
    // Lists.
    let due = w
        .crm
        .follow_ups_due_today(&w.zhangsan, PageRequest::default())
        .await
        .expect("due");
    assert_eq!(
        due.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![k.id]
    );
    let late = w
        .crm
        .follow_ups_overdue(&w.zhangsan, PageRequest::default())
        .await
        .expect("overdue");
    assert_eq!(
        late.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![overdue.id]
    );
    let b = w
        .crm
        .upcoming_birthdays(&w.zhangsan, 7)
        .await
        .expect("birthdays");
    assert_eq!(b.iter().map(|b| b.in_days).collect::<Vec<_>>(), vec![3]);
    assert!(
        w.crm
            .upcoming_birthdays(&w.zhangsan, 2)
            .await
            .expect("birthdays")
            .is_empty()
    );
    assert!(
        w.crm
            .upcoming_birthdays(&w.wangwu, 7)
            .await
            .expect("birthdays")
            .is_empty()
    );
    // Batch on a filter: what zhangsan sees in 北京, including a customer
    // shared with him that he may not transfer.
    let shared = w
        .customer(&w.wangwu, "北京共享有限公司", json!({"city": "北京"}))
        .await;
    w.crm
        .share_record(
            &w.wangwu,
            Entity::Customer,
            shared.id,
            w.zhangsan.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    let beijing =
        Targets::Matching(ListQuery::default().filter(Cond::Eq("city".into(), json!("北京"))));
    let targets = w
        .crm
        .resolve_targets(&w.zhangsan, Entity::Customer, &beijing)
        .await
        .expect("targets");
    assert_eq!(targets.len(), 3);
    let report = w
        .crm
        .transfer_records(&w.zhangsan, Entity::Customer, &targets, w.wangwu.user_id)
        .await
        .expect("transfer");
    assert_eq!(report.done.len(), 2);
    assert_eq!(
        report.refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![shared.id]
    );
    assert!(
        report.refused[0].1.contains("may not transfer"),
        "{:?}",
        report.refused
    );
    let moved = w
        .crm
        .recently_transferred_to_me(&w.wangwu, 7, PageRequest::default())
        .await
        .expect("list");
    let moved: BTreeSet<RecordId> = moved.items.iter().map(|r| r.id).collect();
    assert_eq!(moved, BTreeSet::from([k.id, overdue.id]));
    let h = w.crm.pool_history(&w.wangwu, k.id).await.expect("history");
    assert_eq!(
        h.last().map(|m| (m.action.as_str(), m.to_owner)),
        Some(("transfer", Some(w.wangwu.user_id)))
    );
    // Share, move to pool, archive and delete on filters.
    let shanghai =
        Targets::Matching(ListQuery::default().filter(Cond::Eq("city".into(), json!("上海"))));
    let ids = w
        .crm
        .resolve_targets(&w.zhangsan, Entity::Customer, &shanghai)
        .await
        .expect("targets");
    assert_eq!(ids, vec![third.id]);
    let r = w
        .crm
        .share_records(
            &w.zhangsan,
            Entity::Customer,
            &ids,
            w.zhaoliu.user_id,
            ShareAccess::Read,
            None,
        )
        .await;
    assert_eq!(r.done, vec![third.id]);
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "测试公海".into(),
                member_users: vec![w.zhangsan.user_id],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let wang_all = Targets::Matching(ListQuery::default());
    let ids = w
        .crm
        .resolve_targets(&w.wangwu, Entity::Customer, &wang_all)
        .await
        .expect("targets");
    assert_eq!(ids.len(), 3);
    let r = w
        .crm
        .move_to_pool(&w.wangwu, &ids, pool.id, Place::Public, "集中清理")
        .await;
    assert!(r.is_err(), "wangwu is not a member of the pool: {r:?}");
    let r = w
        .crm
        .release(&w.wangwu, &ids, "集中清理", Some(pool.id))
        .await;
    assert!(r.is_err(), "nor may he name it");
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[third.id])
        .await;
    assert_eq!(r.done, vec![third.id]);
    let r = w
        .crm
        .delete_records(
            &w.wangwu,
            Entity::Customer,
            &w.crm
                .resolve_targets(
                    &w.wangwu,
                    Entity::Customer,
                    &Targets::Matching(
                        ListQuery::default()
                            .filter(Cond::Eq("name".into(), json!("逾期跟进有限公司"))),
                    ),
                )
                .await
                .expect("targets"),
        )
        .await;
    assert_eq!(r.done, vec![overdue.id]);
    assert!(
        w.crm
            .resolve_targets(&w.wangwu, Entity::Customer, &Targets::Ids(vec![k.id]))
            .await
            .expect("ids pass through")
            == vec![k.id]
    );
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Step {
    Claim(usize, Vec<usize>),
    Release(usize),
    Assign(usize, usize),
    FollowUp(usize),
    Deal(usize),
    Advance(i64),
    Sweep,
}

/// The reference model of one customer.
#[derive(Clone, Debug)]
struct ModelCustomer {
    place: Place,
    owner: Option<usize>,
    since: DateTime<Utc>,
    last_follow_up: Option<DateTime<Utc>>,
    previous: Option<usize>,
    released: Option<DateTime<Utc>>,
    closed: bool,
}

/// Random sequences of claim, release, assign, follow-up, deal, time and
/// sweep, compared after every step with an in-memory model: every
/// customer's place and owner agree, a customer has exactly one place,
/// caps and daily limits are never exceeded and cooldowns hold.
pub async fn pool_operations_match_reference_model(store: Arc<dyn Store>) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    const N: usize = 5;
    const CAP: usize = 2;
    const PER_DAY: usize = 2;
    const COOLDOWN: i64 = 2;
    const RULE_DAYS: i64 = 3;
    let step = prop_oneof![
        3 => (0usize..2, prop::collection::btree_set(0usize..N, 1..4))
            .prop_map(|(u, s)| Step::Claim(u, s.into_iter().collect())),
        2 => (0usize..N).prop_map(Step::Release),
        1 => (0usize..3, 0usize..N).prop_map(|(u, c)| Step::Assign(u, c)),
        1 => (0usize..N).prop_map(Step::FollowUp),
        1 => (0usize..N).prop_map(Step::Deal),
        2 => (6i64..60).prop_map(Step::Advance),
        2 => Just(Step::Sweep),
    ];
    let strategy = prop::collection::vec(step, 20..30);
    let mut runner = TestRunner::deterministic();
    for case in 0..4 {
        let steps = strategy.new_tree(&mut runner).expect("case").current();
        let w = World::with_code(store.clone(), &format!("PM{case}")).await;
        let pool = w
            .crm
            .create_pool(
                &w.admin,
                PoolSpec {
                    name: "模型公海".into(),
                    admins: vec![w.lisi.user_id],
                    member_departments: vec![w.group1],
                    limits: PoolLimits {
                        max_per_claim: Some(2),
                        max_claims_per_day: Some(PER_DAY as u32),
                        max_owned_per_user: Some(CAP as u32),
                        deals_count_toward_cap: false,
                        reclaim_cooldown_days: COOLDOWN as u32,
                        warn_days: 0,
                        ..PoolLimits::default()
                    },
                    ..PoolSpec::default()
                },
            )
            .await
            .expect("pool");
        w.crm
            .add_recycle_rule(
                &w.lisi,
                pool.id,
                RuleSpec::new(RuleKind::NoFollowUp, RULE_DAYS as u32),
            )
            .await
            .expect("rule");
        let ids = w
            .crm
            .import_into_pool(
                &w.lisi,
                pool.id,
                (0..N)
                    .map(|i| fields(json!({"name": format!("模型客户{i}有限公司")})))
                    .collect(),
            )
            .await
            .expect("import");
        // Users 0 and 1 are members (group one); 2 is not.
        let users = [&w.zhangsan, &w.zhaoliu, &w.wangwu];
        let mut model: Vec<ModelCustomer> = (0..N)
            .map(|_| ModelCustomer {
                place: Place::Public,
                owner: None,
                since: w.crm.now(),
                last_follow_up: None,
                previous: None,
                released: None,
                closed: false,
            })
            .collect();
        let mut claims: Vec<(usize, chrono::NaiveDate)> = Vec::new();
        let held = |m: &[ModelCustomer], u: usize| {
            m.iter()
                .filter(|c| c.owner == Some(u) && c.place == Place::Private)
                .count()
        };
        for (n, step) in steps.iter().enumerate() {
            let now = w.crm.now();
            let today = w.crm.today();
            let ctx = format!("case {case}, step {n} {step:?}");
            match step {
                Step::Claim(u, set) => {
                    let picked: Vec<RecordId> = set.iter().map(|i| ids[*i]).collect();
                    let got = w.crm.claim(users[*u], &picked).await;
                    // The per-claim limit counts the customers the user may
                    // look at (public ones, their own, and for user 1 with
                    // group scope those of group one's users 0 and 1); the
                    // others are refused as unknown.
                    let asked = set
                        .iter()
                        .filter(|i| {
                            let c = &model[**i];
                            c.place == Place::Public
                                || c.owner == Some(*u)
                                || (*u == 1 && c.owner.is_some_and(|o| o < 2))
                        })
                        .count();
                    if asked > 2 {
                        assert!(got.is_err(), "{ctx}: over the per-claim limit");
                        continue;
                    }
                    let got = got.expect("claim");
                    let mut expect_done = Vec::new();
                    for i in set {
                        let c = &model[*i];
                        let cooling = c.previous == Some(*u)
                            && c.released
                                .is_some_and(|r| now < r + Duration::days(COOLDOWN));
                        let today_claims = claims
                            .iter()
                            .filter(|(cu, d)| cu == u && *d == today)
                            .count();
                        let ok = c.place == Place::Public
                            && !cooling
                            && today_claims < PER_DAY
                            // A customer that made a deal is held as one,
                            // which the cap does not count here.
                            && (c.closed || held(&model, *u) < CAP);
                        if ok {
                            let c = &mut model[*i];
                            c.place = if c.closed {
                                Place::Deal
                            } else {
                                Place::Private
                            };
                            c.owner = Some(*u);
                            c.since = now;
                            claims.push((*u, today));
                            expect_done.push(ids[*i]);
                        }
                    }
                    assert_eq!(got.done, expect_done, "{ctx}: {:?}", got.refused);
                }
                Step::Release(i) => {
                    let c = model[*i].clone();
                    let actor = match c.owner {
                        Some(o) => users[o],
                        None => users[0],
                    };
                    let got = w
                        .crm
                        .release(actor, &[ids[*i]], "模型退回", None)
                        .await
                        .expect("release");
                    if let Some(o) = c.owner {
                        assert_eq!(got.done, vec![ids[*i]], "{ctx}: {:?}", got.refused);
                        let m = &mut model[*i];
                        m.place = Place::Public;
                        m.owner = None;
                        m.previous = Some(o);
                        m.released = Some(now);
                    } else {
                        assert!(got.done.is_empty(), "{ctx}");
                    }
                }
                Step::Assign(u, i) => {
                    let got = w
                        .crm
                        .assign(&w.lisi, &[ids[*i]], users[*u].user_id)
                        .await
                        .expect("assign");
                    let ok = model[*i].place == Place::Public
                        && (model[*i].closed || held(&model, *u) < CAP);
                    if ok {
                        let m = &mut model[*i];
                        m.place = if m.closed {
                            Place::Deal
                        } else {
                            Place::Private
                        };
                        m.owner = Some(*u);
                        m.since = now;
                    }
                    assert_eq!(got.done.len(), usize::from(ok), "{ctx}: {:?}", got.refused);
                }
                Step::FollowUp(i) => {
                    w.crm
                        .create_record(
                            &w.admin,
                            Entity::FollowUp,
                            fields(json!({"customer_id": ids[*i].to_string(), "channel": "call", "content": "模型跟进"})),
                        )
                        .await
                        .expect("follow-up");
                    model[*i].last_follow_up = Some(now);
                }
                Step::Deal(i) => {
                    let marked = w.crm.mark_deal(&w.admin, ids[*i], None).await;
                    if matches!(model[*i].place, Place::Public | Place::Invalid) {
                        // Held by nobody: claimed or assigned first.
                        assert!(marked.is_err(), "a deal on a public customer: {marked:?}");
                        continue;
                    }
                    marked.expect("deal");
                    let m = &mut model[*i];
                    m.closed = true;
                    if m.place == Place::Private {
                        m.place = Place::Deal;
                    }
                }
                Step::Advance(h) => w.clock.advance(Duration::hours(*h)),
                Step::Sweep => {
                    let s = w
                        .crm
                        .sweep(&w.admin, &SweepOptions::default())
                        .await
                        .expect("sweep");
                    let mut expected = BTreeSet::new();
                    for (i, m) in model.iter_mut().enumerate() {
                        if !m.place.is_owned() {
                            continue;
                        }
                        let base = m.last_follow_up.filter(|l| *l > m.since).unwrap_or(m.since);
                        if base + Duration::days(RULE_DAYS) <= now {
                            expected.insert(ids[i]);
                            m.previous = m.owner;
                            m.owner = None;
                            m.place = Place::Public;
                            m.released = Some(now);
                        }
                    }
                    let got: BTreeSet<RecordId> = s.recycled.iter().map(|x| x.customer).collect();
                    assert_eq!(got, expected, "{ctx}");
                    assert!(s.refused.is_empty(), "{ctx}: {:?}", s.refused);
                }
            }
            // Invariants after every step.
            let mut per_user = [0usize; 3];
            for (i, id) in ids.iter().enumerate() {
                let r = row(&w, *id).await;
                let p = place(&r);
                let o = owner(&r).map(|o| {
                    users
                        .iter()
                        .position(|u| u.user_id == o)
                        .expect("known user")
                });
                assert_eq!(
                    (p, o),
                    (model[i].place, model[i].owner),
                    "{ctx}: customer {i}"
                );
                assert_eq!(p.is_owned(), o.is_some(), "{ctx}: exactly one place");
                if p == Place::Private
                    && let Some(o) = o
                {
                    per_user[o] += 1;
                }
            }
            assert!(
                per_user.iter().all(|n| *n <= CAP),
                "{ctx}: caps {per_user:?}"
            );
            for u in 0..2 {
                let per_day = claims
                    .iter()
                    .filter(|(cu, d)| *cu == u && *d == today)
                    .count();
                assert!(per_day <= PER_DAY, "{ctx}");
            }
        }
        // The recorded history agrees: no claim by the previous owner
        // during the cooldown after it gave the customer up.
        for (i, id) in ids.iter().enumerate() {
            let h = w.crm.pool_history(&w.admin, *id).await.expect("history");
            let mut last_release: Option<(UserId, DateTime<Utc>)> = None;
            for m in &h {
                match m.action.as_str() {
                    "release" | "recycle" => last_release = m.from_owner.map(|o| (o, m.at)),
                    "claim" => {
                        if let (Some(o), Some((prev, at))) = (m.to_owner, last_release)
                            && o == prev
                        {
                            assert!(
                                m.at >= at + Duration::days(COOLDOWN),
                                "case {case}: customer {i} reclaimed by {o} too early: {h:#?}"
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A user of its own role granting `grants` on every customer, with the
/// given field rules on customers.
async fn user_with_rules(
    w: &World,
    username: &str,
    grants: &[Action],
    rules: &[(&str, FieldAccess)],
) -> crate::auth::Actor {
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: format!("{username}的角色"),
                is_admin: false,
                permissions: grants
                    .iter()
                    .map(|a| Permission {
                        entity: Entity::Customer,
                        action: *a,
                        scope: DataScope::All,
                    })
                    .collect(),
                field_rules: rules
                    .iter()
                    .map(|(f, access)| FieldRule {
                        entity: Entity::Customer,
                        field: (*f).into(),
                        access: *access,
                    })
                    .collect(),
            },
        )
        .await
        .expect("role");
    let user = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: username.into(),
                display_name: username.into(),
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    w.crm.actor(user.id).await.expect("actor")
}

/// Every page of the duplicate report for `actor` with `limit`, following
/// `next`: the groups' values and the cursors given.
async fn report_pages(
    w: &World,
    actor: &crate::auth::Actor,
    fields: &[&str],
    limit: usize,
) -> (Vec<Vec<String>>, Vec<String>) {
    let mut pages = Vec::new();
    let mut cursors = Vec::new();
    let mut after = None;
    loop {
        let page = w
            .crm
            .duplicate_report(
                actor,
                &DuplicateQuery {
                    fields: fields.iter().map(|f| f.to_string()).collect(),
                    after: after.clone(),
                    limit,
                },
            )
            .await
            .expect("report");
        pages.push(page.groups.iter().map(|g| g.value.clone()).collect());
        match page.next {
            Some(next) => {
                assert!(pages.len() < 20, "the report does not end: {pages:?}");
                cursors.push(next.clone());
                after = Some(next);
            }
            None => return (pages, cursors),
        }
    }
}

/// The duplicate report pages over the groups the actor can see only: a
/// page holds `limit` of them, and no cursor names the key of a group
/// without a visible member.
pub async fn duplicate_report_pages_over_visible_groups_only(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // Phone groups in key order: wangwu's only, shared with zhangsan,
    // wangwu's only, shared with zhangsan, wangwu's only.
    let plan: [(&str, bool); 5] = [
        ("010-61111111", false),
        ("010-62222222", true),
        ("010-63333333", false),
        ("010-64444444", true),
        ("010-65555555", false),
    ];
    for (i, (phone, shared)) in plan.iter().enumerate() {
        let first = if *shared { &w.zhangsan } else { &w.wangwu };
        w.customer(
            first,
            &format!("查重甲{i}有限公司"),
            json!({"phone": phone}),
        )
        .await;
        w.customer(
            &w.wangwu,
            &format!("查重乙{i}有限公司"),
            json!({"phone": phone}),
        )
        .await;
    }
    // The administrator sees the five, two by two, in key order.
    let (pages, _) = report_pages(&w, &w.admin, &["phone"], 2).await;
    let keys: Vec<String> = pages.concat();
    assert_eq!(keys.len(), 5, "{pages:?}");
    assert_eq!(pages.len(), 3, "{pages:?}");
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let invisible = [&keys[0], &keys[2], &keys[4]];
    // zhangsan sees two groups, one a page, and then the report ends.
    for fields in [vec!["phone"], Vec::new()] {
        let (pages, cursors) = report_pages(&w, &w.zhangsan, &fields, 1).await;
        assert_eq!(
            pages,
            vec![vec![keys[1].clone()], vec![keys[3].clone()]],
            "{cursors:?}"
        );
        assert_eq!(cursors.len(), 1, "{cursors:?}");
        for c in &cursors {
            assert!(
                invisible.iter().all(|k| !c.contains(k.as_str())),
                "the cursor {c:?} names a group zhangsan cannot see"
            );
        }
    }
    // A page of several groups skips the invisible ones too.
    let (pages, cursors) = report_pages(&w, &w.zhangsan, &["phone"], 10).await;
    assert_eq!(
        (pages, cursors.len()),
        (vec![vec![keys[1].clone(), keys[3].clone()]], 0)
    );
}

/// Duplicate matches and the 360° view show the shared value, the reason
/// and the names as the actor's field rules say: masked, or left out when
/// hidden; the report refuses a key field the actor may not read in full.
pub async fn duplicates_follow_field_rules(store: Arc<dyn Store>) {
    use crate::auth::mask;
    use crate::entity::MaskStyle;
    let w = World::new(store).await;
    let a = w
        .customer(
            &w.zhangsan,
            "规则甲有限公司",
            json!({"phone": "010-62345678"}),
        )
        .await;
    let b = w
        .customer(
            &w.wangwu,
            "规则乙有限公司",
            json!({"phone": "010-62345678"}),
        )
        .await;
    w.customer(
        &w.zhangsan,
        "规则丙有限公司",
        json!({"phone": "010-68888888"}),
    )
    .await;
    w.customer(
        &w.wangwu,
        "规则丁有限公司",
        json!({"phone": "010-68888888"}),
    )
    .await;
    let full = company_report(&w).await;
    let keys: Vec<String> = full
        .groups
        .iter()
        .filter(|g| g.field == "phone")
        .map(|g| g.value.clone())
        .collect();
    assert_eq!(keys.len(), 2, "{full:?}");
    let masked = user_with_rules(
        &w,
        "masked",
        &[Action::Read],
        &[
            ("phone", FieldAccess::Masked),
            ("name", FieldAccess::Masked),
        ],
    )
    .await;
    let hidden = user_with_rules(
        &w,
        "hidden",
        &[Action::Read],
        &[
            ("phone", FieldAccess::Hidden),
            ("name", FieldAccess::Hidden),
        ],
    )
    .await;
    let shown_key = mask(MaskStyle::Phone, &keys[0]);
    let shown_name = mask(MaskStyle::Text, "规则乙有限公司");
    assert_ne!(shown_key, keys[0]);
    // Matches of one customer, directly and in the 360° view.
    let view = w.crm.customer_view(&masked, a.id).await.expect("view");
    let direct = w.crm.duplicates_of(&masked, a.id).await.expect("matches");
    for matches in [&view.possible_duplicates, &direct] {
        let m = matches
            .iter()
            .find(|m| m.field == "phone")
            .expect("b's phone");
        assert_eq!(m.customer, Some(b.id));
        assert_eq!(
            (m.value.as_str(), m.name.as_deref()),
            (shown_key.as_str(), Some(shown_name.as_str())),
            "{matches:?}"
        );
    }
    // A hidden key field shows no match at all: not even that the two
    // customers share a value in it.
    let view = w.crm.customer_view(&hidden, a.id).await.expect("view");
    let direct = w.crm.duplicates_of(&hidden, a.id).await.expect("matches");
    for matches in [&view.possible_duplicates, &direct] {
        assert!(matches.iter().all(|m| m.field != "phone"), "{matches:?}");
    }
    // The report, page by page.
    let page = |actor: &crate::auth::Actor, after: Option<String>| {
        let crm = &w.crm;
        let actor = actor.clone();
        async move {
            crm.duplicate_report(
                &actor,
                &DuplicateQuery {
                    fields: vec!["phone".into()],
                    after,
                    limit: 1,
                },
            )
            .await
        }
    };
    // The report holds only key fields read in full (equal values grouped,
    // in their order, would tell what the mask hides): asked for a masked or
    // hidden one by name, it refuses.
    for actor in [&masked, &hidden] {
        assert!(matches!(page(actor, None).await, Err(Error::Forbidden(_))));
    }
}

/// The 360° view masks attachments as the customer record does, and the
/// list of customers about to be recycled shows names as the name rule says.
pub async fn view_and_recycling_list_follow_field_rules(store: Arc<dyn Store>) {
    use crate::auth::mask;
    use crate::entity::MaskStyle;
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "规则公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.sales],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    w.crm
        .add_recycle_rule(&w.lisi, pool.id, RuleSpec::new(RuleKind::NoFollowUp, 10))
        .await
        .expect("rule");
    let name = "附件视图有限公司";
    let k = w
        .customer(
            &w.zhangsan,
            name,
            json!({"attachments": [{"name": "合同.pdf", "kind": "file", "uri": "s3://bucket/c.pdf", "size": 2048}]}),
        )
        .await;
    let masked = user_with_rules(
        &w,
        "masked",
        &[Action::Read],
        &[
            ("attachments", FieldAccess::Masked),
            ("name", FieldAccess::Masked),
        ],
    )
    .await;
    let hidden = user_with_rules(
        &w,
        "hidden",
        &[Action::Read],
        &[
            ("attachments", FieldAccess::Hidden),
            ("name", FieldAccess::Hidden),
        ],
    )
    .await;
    let view = w.crm.customer_view(&masked, k.id).await.expect("view");
    assert_eq!(view.attachments, vec![json!("***")]);
    assert_eq!(
        view.customer.fields.get("attachments"),
        Some(&json!(["***"]))
    );
    let view = w.crm.customer_view(&hidden, k.id).await.expect("view");
    assert!(view.attachments.is_empty());
    let view = w.crm.customer_view(&w.admin, k.id).await.expect("view");
    assert_eq!(view.attachments.len(), 1);
    assert_eq!(view.attachments[0]["uri"], json!("s3://bucket/c.pdf"));
    let names = |items: Vec<crate::pool::SweepItem>| -> Vec<String> {
        items
            .into_iter()
            .filter(|i| i.customer == k.id)
            .map(|i| i.name)
            .collect()
    };
    let soon = w.crm.about_to_be_recycled(&masked, 30).await.expect("list");
    assert_eq!(names(soon), vec![mask(MaskStyle::Text, name)]);
    let soon = w.crm.about_to_be_recycled(&hidden, 30).await.expect("list");
    assert_eq!(names(soon), vec![String::new()]);
    let soon = w
        .crm
        .about_to_be_recycled(&w.admin, 30)
        .await
        .expect("list");
    assert_eq!(names(soon), vec![name.to_string()]);
}

/// The 360° view's place section, the recycling explanation, the list of
/// customers about to be recycled and the pool history name no value a
/// field rule hides or masks (level, place, lock, pool, open opportunities,
/// the dates of the last follow-up, the claim, the latest opportunity and
/// deal), nor a due date computed from them; an actor who reads everything
/// sees them all.
pub async fn place_and_recycling_show_no_field_rules_hide(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "字段公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.sales],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let mut follow = RuleSpec::new(RuleKind::NoFollowUp, 10);
    follow.level_days.insert("A".into(), 20);
    w.crm
        .add_recycle_rule(&w.lisi, pool.id, follow)
        .await
        .expect("rule");
    let mut no_opportunity = RuleSpec::new(RuleKind::NoOpportunity, 30);
    no_opportunity.exempt_open_opportunities = true;
    w.crm
        .add_recycle_rule(&w.lisi, pool.id, no_opportunity)
        .await
        .expect("rule");
    w.crm
        .add_recycle_rule(&w.lisi, pool.id, RuleSpec::new(RuleKind::NoDeal, 30))
        .await
        .expect("rule");
    // Held since day 0 (2026-11-27); followed up, an opportunity (two
    // open) and a deal on day 2 (2026-11-29).
    let c = w
        .customer(&w.zhangsan, "字段规则有限公司", json!({"level": "A"}))
        .await
        .id;
    let gone = w
        .customer(&w.zhangsan, "回收字段有限公司", json!({"level": "B"}))
        .await
        .id;
    w.clock.advance(Duration::days(2));
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({"customer_id": c.to_string(), "channel": "call", "content": "回访"})),
        )
        .await
        .expect("follow-up");
    w.crm
        .record_sales_activity(
            &w.zhangsan,
            c,
            crate::pool::SalesActivity {
                opportunity_at: Some(w.crm.now()),
                open_opportunities: Some(2),
                deal_closed_at: None,
                last_opportunity_is: None,
            },
        )
        .await
        .expect("opportunity");
    w.crm.mark_deal(&w.zhangsan, c, None).await.expect("deal");
    let hidden = user_with_rules(
        &w,
        "hidden",
        &[Action::Read],
        &[
            ("level", FieldAccess::Hidden),
            ("place", FieldAccess::Hidden),
            ("pool_id", FieldAccess::Hidden),
            ("locked", FieldAccess::Hidden),
            ("open_opportunities", FieldAccess::Hidden),
            ("last_follow_up_at", FieldAccess::Hidden),
            ("owned_since", FieldAccess::Masked),
            ("last_opportunity_at", FieldAccess::Hidden),
            ("closed_at", FieldAccess::Masked),
        ],
    )
    .await;
    // Every text shown about the recycling, and its due dates.
    let texts = |e: &crate::pool::RecycleExplanation| -> Vec<String> {
        e.outcomes
            .iter()
            .map(|o| o.why.clone())
            .chain([e.summary.clone()])
            .collect()
    };
    let dues = |e: &crate::pool::RecycleExplanation| -> Vec<Option<DateTime<Utc>>> {
        e.outcomes.iter().map(|o| o.due_at).collect()
    };
    let revealing = ["2026-", "level A", "2 open", "closed-deal"];

    // The administrator sees every value.
    let full = w.crm.customer_view(&w.admin, c).await.expect("view");
    assert_eq!(full.place.place, Some(Place::Deal));
    assert_eq!(full.place.pool.as_ref().map(|p| p.0), Some(pool.id));
    assert_eq!(full.place.locked, Some(false));
    assert_eq!(full.place.open_opportunities, Some(2));
    assert_eq!(full.place.owned_since, Some(day(0)));
    assert!(full.place.closed_at.is_some() && full.place.last_opportunity_at.is_some());
    let e = full.recycling.expect("owned: explained");
    let all = texts(&e).join(" | ");
    for s in [
        "last follow-up 2026-11-29, 20 days for level A",
        "it has 2 open opportunities",
        "deal closed on 2026-11-29 since it was taken on 2026-11-27",
        "would recycle it on 2026-12-19",
    ] {
        assert!(all.contains(s), "{s}: {all}");
    }
    assert_eq!(dues(&e), vec![Some(day(22)), None, None]);

    // An actor whose rules hide or mask them sees none.
    let view = w.crm.customer_view(&hidden, c).await.expect("view");
    assert_eq!(view.place.place, None);
    assert_eq!(view.place.place_zh, None);
    assert_eq!(view.place.pool, None);
    assert_eq!(view.place.locked, None);
    assert_eq!(view.place.open_opportunities, None);
    assert_eq!(view.place.owned_since, None);
    assert_eq!(view.place.closed_at, None);
    assert_eq!(view.place.last_opportunity_at, None);
    for e in [
        view.recycling.expect("owned: explained"),
        w.crm
            .explain_recycling(&hidden, c, None)
            .await
            .expect("explain"),
    ] {
        assert_eq!((e.place, e.locked, e.pool.clone()), (None, None, None));
        let all = texts(&e).join(" | ");
        for s in revealing {
            assert!(!all.contains(s), "{s}: {all}");
        }
        assert_eq!(dues(&e), vec![None, None, None]);
        assert_eq!(e.next.as_ref().map(|o| o.due_at), Some(None));
        assert!(
            all.contains("would recycle it unless it is locked ("),
            "{all}"
        );
    }
    // Locking it changes nothing they read: the lock does not show through
    // the summary.
    let before = w
        .crm
        .explain_recycling(&hidden, c, None)
        .await
        .expect("explain");
    let locked = w.crm.set_locked(&w.admin, &[c], true).await;
    assert!(locked.refused.is_empty(), "{:?}", locked.refused);
    let after = w
        .crm
        .explain_recycling(&hidden, c, None)
        .await
        .expect("explain");
    assert_eq!(before.summary, after.summary);
    assert_eq!(
        w.crm
            .explain_recycling(&w.admin, c, None)
            .await
            .expect("explain")
            .summary,
        "it is locked and is never recycled"
    );
    let unlocked = w.crm.set_locked(&w.admin, &[c], false).await;
    assert!(unlocked.refused.is_empty(), "{:?}", unlocked.refused);
    let soon = |items: Vec<crate::pool::SweepItem>| -> Vec<(Option<DateTime<Utc>>, String)> {
        items
            .into_iter()
            .filter(|i| i.customer == c)
            .map(|i| (i.due_at, i.why))
            .collect()
    };
    let seen = soon(
        w.crm
            .about_to_be_recycled(&w.admin, 30)
            .await
            .expect("list"),
    );
    assert_eq!(
        seen,
        vec![(
            Some(day(22)),
            "last follow-up 2026-11-29, 20 days for level A".to_string()
        )]
    );
    // Listed by a due date counted from a hidden date, the customer would
    // tell that date by the day it first appears: it is not listed.
    let seen = soon(w.crm.about_to_be_recycled(&hidden, 30).await.expect("list"));
    assert!(seen.is_empty(), "{seen:?}");

    // A recycling's reason in the history names the dates it counted from.
    w.clock.advance(Duration::days(10));
    let report = w
        .crm
        .sweep(&w.lisi, &SweepOptions::default())
        .await
        .expect("sweep");
    assert_eq!(
        report
            .recycled
            .iter()
            .map(|i| i.customer)
            .collect::<Vec<_>>(),
        vec![gone]
    );
    let reasons = |h: Vec<crate::pool::PoolMove>| -> Vec<Option<String>> {
        h.into_iter()
            .filter(|m| m.action == "recycle")
            .map(|m| m.reason)
            .collect()
    };
    let history = reasons(w.crm.pool_history(&w.admin, gone).await.expect("history"));
    assert_eq!(history.len(), 1);
    assert!(
        history[0]
            .as_deref()
            .is_some_and(|r| r.contains("held since 2026-11-27, 10 days")),
        "{history:?}"
    );
    let history = w.crm.pool_history(&hidden, gone).await.expect("history");
    assert_eq!(reasons(history), vec![None]);
    // Who may read what the rule counted from (the dates of the follow-up
    // and the claim, and the level: its days are per level) reads it,
    // whatever else is kept from them.
    let partly = user_with_rules(
        &w,
        "partly",
        &[Action::Read],
        &[
            ("closed_at", FieldAccess::Hidden),
            ("last_opportunity_at", FieldAccess::Hidden),
            ("locked", FieldAccess::Masked),
        ],
    )
    .await;
    let history = reasons(w.crm.pool_history(&partly, gone).await.expect("history"));
    assert!(
        history[0]
            .as_deref()
            .is_some_and(|r| r.contains("held since 2026-11-27, 10 days")),
        "{history:?}"
    );
    let no_level = user_with_rules(
        &w,
        "nolevel",
        &[Action::Read],
        &[("level", FieldAccess::Hidden)],
    )
    .await;
    let history = w.crm.pool_history(&no_level, gone).await.expect("history");
    assert_eq!(reasons(history), vec![None], "its days tell the level");
    // The customer's own history (its audit entries) follows the same rule.
    let audit_reasons = |h: Vec<AuditEntry>| -> Vec<String> {
        h.into_iter()
            .filter(|e| e.action == "recycle")
            .flat_map(|e| e.changes)
            .filter(|c| c.field == "reason")
            .map(|c| c.after.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let history = |who: crate::auth::Actor| {
        let w = &w;
        async move {
            w.crm
                .history(&who, Entity::Customer, gone.0)
                .await
                .expect("history")
        }
    };
    let seen = audit_reasons(history(w.admin.clone()).await);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].contains("held since 2026-11-27, 10 days") && seen[0].contains("(A: 20)"),
        "{seen:?}"
    );
    assert_eq!(audit_reasons(history(partly.clone()).await), seen);
    for who in [hidden.clone(), no_level.clone()] {
        let entries = history(who).await;
        assert!(
            entries.iter().any(|e| e.action == "recycle"),
            "the recycling itself stays in the history"
        );
        assert_eq!(audit_reasons(entries.clone()), Vec::<String>::new());
        let all = serde_json::to_string(&entries).expect("json");
        for s in ["2026-11-27, 10 days", "(A: 20)", "level A"] {
            assert!(!all.contains(s), "{s}: {all}");
        }
    }
}

/// Pool operations and lists tell an actor nothing about a customer they
/// may not look at (one neither readable to them nor in a pool they belong
/// to): claiming, assigning or moving it answers as for a customer that
/// does not exist. A pool lists its current customers only, and counts its
/// invalid area for its admins only, who alone may list it.
pub async fn pool_operations_reveal_nothing_to_outsiders(store: Arc<dyn Store>) {
    use crate::store::Lifecycle;
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "一组公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.group1],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    // wangwu (group two, own customers only) administers a pool of his own.
    let other = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "二组公海".into(),
                admins: vec![w.wangwu.user_id],
                member_departments: vec![w.group2],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let deal = w.customer(&w.zhangsan, "成交保密有限公司", json!({})).await;
    w.crm
        .mark_deal(&w.zhangsan, deal.id, None)
        .await
        .expect("deal");
    let public = w.customer(&w.zhangsan, "公海保密有限公司", json!({})).await;
    let invalid = w.customer(&w.zhangsan, "无效保密有限公司", json!({})).await;
    let bin = w
        .customer(&w.zhangsan, "回收站保密有限公司", json!({}))
        .await;
    let r = w
        .crm
        .release(
            &w.zhangsan,
            &[public.id, invalid.id, bin.id],
            "暂不跟进",
            Some(pool.id),
        )
        .await
        .expect("release");
    assert_eq!(r.done.len(), 3, "{r:?}");
    let r = w
        .crm
        .move_to_pool(&w.lisi, &[invalid.id], pool.id, Place::Invalid, "空号")
        .await
        .expect("invalidate");
    assert_eq!(r.done, vec![invalid.id]);
    let r = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[bin.id])
        .await;
    assert_eq!(r.done, vec![bin.id], "{r:?}");

    // Answered as for a customer that does not exist: no code, no place.
    let unknown = |id: RecordId| Error::not_found(Entity::Customer, id).to_string();
    let refusal = |r: crate::records::BatchReport| -> Vec<String> {
        assert!(r.done.is_empty(), "{r:?}");
        r.refused.into_iter().map(|(_, e)| e).collect()
    };
    let r = w
        .crm
        .claim(&w.wangwu, &[deal.id, public.id])
        .await
        .expect("claim");
    assert_eq!(refusal(r), vec![unknown(deal.id), unknown(public.id)]);
    let r = w
        .crm
        .assign(&w.wangwu, &[deal.id, public.id], w.wangwu.user_id)
        .await
        .expect("assign");
    assert_eq!(refusal(r), vec![unknown(deal.id), unknown(public.id)]);
    let r = w
        .crm
        .move_to_pool(
            &w.wangwu,
            &[deal.id, public.id, invalid.id],
            other.id,
            Place::Public,
            "挪走",
        )
        .await
        .expect("move");
    assert_eq!(
        refusal(r),
        vec![unknown(deal.id), unknown(public.id), unknown(invalid.id)]
    );
    // A member sees the public area, not the invalid one.
    let r = w
        .crm
        .move_to_pool(&w.zhaoliu, &[invalid.id], pool.id, Place::Public, "恢复")
        .await
        .expect("move");
    assert_eq!(refusal(r), vec![unknown(invalid.id)]);
    // Those who may look at it are still told why.
    let r = w
        .crm
        .assign(&w.lisi, &[deal.id], w.zhaoliu.user_id)
        .await
        .expect("assign");
    assert!(refusal(r)[0].contains("has an owner"));
    let r = w
        .crm
        .move_to_pool(&w.zhaoliu, &[public.id], pool.id, Place::Invalid, "无效")
        .await
        .expect("move");
    assert!(refusal(r)[0].contains("only its pool's administrators"));
    // Nor does a member release a customer nobody holds.
    let r = w
        .crm
        .release(&w.zhaoliu, &[public.id], "再退回", None)
        .await
        .expect("release");
    let why = &refusal(r)[0];
    assert!(
        why.contains("held by nobody") && why.contains("已在公海"),
        "{why}"
    );

    // The pool's own list: current customers only.
    for lifecycle in [Lifecycle::Deleted, Lifecycle::Archived, Lifecycle::Any] {
        for actor in [&w.zhaoliu, &w.lisi] {
            let listed = w
                .crm
                .pool_customers(
                    actor,
                    pool.id,
                    Place::Public,
                    &ListQuery::default().lifecycle(lifecycle),
                )
                .await;
            assert!(
                matches!(listed, Err(Error::Validation(_))),
                "{lifecycle:?}: {listed:?}"
            );
        }
    }
    let listed = w
        .crm
        .pool_customers(&w.zhaoliu, pool.id, Place::Public, &ListQuery::default())
        .await
        .expect("list");
    assert_eq!(
        listed.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![public.id]
    );
    // The invalid area is counted for those who may list it.
    let counts = w
        .crm
        .pool_counts(&w.zhaoliu, pool.id)
        .await
        .expect("counts");
    assert_eq!(counts, BTreeMap::from([(Place::Public, 1)]));
    let counts = w.crm.pool_counts(&w.lisi, pool.id).await.expect("counts");
    assert_eq!(
        counts,
        BTreeMap::from([(Place::Public, 1), (Place::Invalid, 1)])
    );
    assert!(matches!(
        w.crm
            .pool_customers(&w.zhaoliu, pool.id, Place::Invalid, &ListQuery::default())
            .await,
        Err(Error::Forbidden(_))
    ));
    // A member still claims.
    let r = w.crm.claim(&w.zhaoliu, &[public.id]).await.expect("claim");
    assert_eq!(r.done, vec![public.id], "{r:?}");
}

/// A merge fills the survivor's blanks (and unites tags) in every field,
/// also those read-only or hidden from the merging user: the merged
/// customer is not restored, so a value left behind would be lost.
pub async fn merge_fills_blanks_also_in_fields_the_merger_may_not_write(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.crm
        .define_custom_field(
            &w.admin,
            crate::custom::NewCustomField {
                entity: Entity::Customer,
                key: "erp_code".into(),
                label: "ERP编码".into(),
                label_en: None,
                field_type: crate::custom::CustomFieldType::Text,
                options: Vec::new(),
                required: false,
                unique: false,
            },
        )
        .await
        .expect("field");
    let a = w
        .customer(&w.zhangsan, "合并甲有限公司", json!({"tags": "重点"}))
        .await;
    let b = w
        .customer(
            &w.wangwu,
            "合并乙有限公司",
            json!({"city": "北京", "industry": "制造", "notes": "老客户",
                   "erp_code": "E-9", "tags": "渠道"}),
        )
        .await;
    let merger = user_with_rules(
        &w,
        "merger",
        &[Action::Read, Action::Update, Action::Delete],
        &[
            ("city", FieldAccess::ReadOnly),
            ("industry", FieldAccess::Hidden),
            ("tags", FieldAccess::ReadOnly),
            ("custom.erp_code", FieldAccess::ReadOnly),
        ],
    )
    .await;
    w.crm
        .merge_customers(
            &merger,
            &MergeSpec {
                survivor: a.id,
                others: vec![b.id],
                take: BTreeMap::new(),
            },
        )
        .await
        .expect("merge");
    let kept = row(&w, a.id).await;
    assert_eq!(kept.get("city").as_text(), Some("北京"), "{kept:?}");
    assert_eq!(kept.get("industry").as_text(), Some("制造"), "{kept:?}");
    assert_eq!(kept.get("notes").as_text(), Some("老客户"));
    assert_eq!(kept.get("tags").as_text(), Some(",渠道,重点,"));
    assert_eq!(
        kept.get("custom").as_json().and_then(|c| c.get("erp_code")),
        Some(&json!("E-9")),
        "{kept:?}"
    );
    // The merging user still sees no more than their rules show.
    let seen = w
        .crm
        .get_record(&merger, Entity::Customer, a.id)
        .await
        .expect("survivor");
    assert!(!seen.fields.contains_key("industry"), "{seen:?}");
    assert_eq!(row(&w, b.id).await.get("merged_into").as_id(), Some(a.id.0));
}

/// Deleting a pool leaves no customer outside every rule: it is refused
/// while customers are in the pool's public or invalid area, also when one
/// is released into it while the deletion is written (or the deletion
/// commits while a release into the pool is written: that release is
/// refused); customers claimed from the pool keep their owners and lose
/// the pool, so their owners' pool governs — and recycles — them.
pub async fn pool_delete_leaves_no_customer_ungoverned(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let pool = |name: &'static str, department| {
        let w = &w;
        async move {
            w.crm
                .create_pool(
                    &w.admin,
                    PoolSpec {
                        name: name.into(),
                        admins: vec![w.lisi.user_id],
                        member_departments: vec![department],
                        ..PoolSpec::default()
                    },
                )
                .await
                .expect("pool")
        }
    };
    let a = pool("华东公海", w.group1).await;
    let ids = w
        .crm
        .import_into_pool(
            &w.lisi,
            a.id,
            (0..2)
                .map(|i| fields(json!({"name": format!("华东公海客户{i}有限公司")})))
                .collect(),
        )
        .await
        .expect("import");
    let r = w.crm.claim(&w.zhangsan, &ids[..1]).await.expect("claim");
    assert_eq!(r.done, ids[..1].to_vec(), "{:?}", r.refused);
    match w.crm.delete_pool(&w.admin, a.id).await {
        Err(Error::InvalidState(m)) => assert!(m.contains("still holds 1"), "{m}"),
        other => panic!("deleting a pool with a public customer: {other:?}"),
    }
    let r = w.crm.claim(&w.zhaoliu, &ids[1..]).await.expect("claim");
    assert_eq!(r.done, ids[1..].to_vec(), "{:?}", r.refused);

    // A later pool of the same members, with a rule; the first one goes.
    let b = pool("销售一组公海", w.group1).await;
    w.crm
        .add_recycle_rule(&w.lisi, b.id, RuleSpec::new(RuleKind::NoFollowUp, 10))
        .await
        .expect("rule");
    w.crm.delete_pool(&w.admin, a.id).await.expect("delete");
    assert!(w.crm.pool(&w.admin, a.id).await.is_err());
    for (id, holder) in ids.iter().zip([w.zhangsan.user_id, w.zhaoliu.user_id]) {
        let r = row(&w, *id).await;
        assert!(r.get("pool_id").is_null(), "{id} still points at the pool");
        assert_eq!((place(&r), owner(&r)), (Place::Private, Some(holder)));
        let why = w
            .crm
            .explain_recycling(&w.admin, *id, None)
            .await
            .expect("explain");
        assert_eq!(why.pool.as_ref().map(|(p, _)| *p), Some(b.id), "{why:?}");
    }
    w.clock.advance(Duration::days(11));
    let swept = w
        .crm
        .sweep(&w.admin, &SweepOptions::default())
        .await
        .expect("sweep");
    let recycled: BTreeSet<RecordId> = swept.recycled.iter().map(|i| i.customer).collect();
    assert_eq!(recycled, ids.iter().copied().collect(), "{swept:?}");
    for id in &ids {
        let r = row(&w, *id).await;
        assert_eq!(place(&r), Place::Public);
        assert_eq!(r.get("pool_id").as_id(), Some(b.id.0));
    }

    // The deletion commits while a release into the pool is being written:
    // the release is refused and the customer stays with its owner.
    let c = pool("华南公海", w.group2).await;
    let mine = w
        .customer(&w.wangwu, "深圳甲科技有限公司", json!({}))
        .await
        .id;
    let delete_elsewhere = {
        let (other, admin, pool) = (other.clone(), w.admin.clone(), c.id);
        async move {
            other
                .delete_pool(&admin, pool)
                .await
                .expect("the other deletion");
        }
    };
    hooked.before_customer_write(delete_elsewhere);
    let r = w
        .crm
        .release(&w.wangwu, &[mine], "暂无需求", None)
        .await
        .expect("release");
    assert!(r.done.is_empty(), "released into a deleted pool");
    assert!(
        r.refused[0].1.contains("华南公海") && r.refused[0].1.contains("deleted"),
        "{:?}",
        r.refused
    );
    let m = row(&w, mine).await;
    assert_eq!(
        (place(&m), owner(&m)),
        (Place::Private, Some(w.wangwu.user_id))
    );

    // A release into the pool commits after the deletion counted its
    // customers: the deletion is refused when it is written.
    let d = pool("华南二部公海", w.group2).await;
    let release_elsewhere = {
        let (other, who) = (other.clone(), w.wangwu.clone());
        async move {
            let r = other
                .release(&who, &[mine], "暂无需求", None)
                .await
                .expect("the other release");
            assert_eq!(r.done, vec![mine], "{:?}", r.refused);
        }
    };
    hooked.after_count(release_elsewhere);
    match w.crm.delete_pool(&w.admin, d.id).await {
        Err(Error::InvalidState(m)) => {
            assert!(
                m.contains("华南二部公海") && m.contains("while it was being deleted"),
                "{m}"
            )
        }
        other => panic!("deleting a pool a customer was just released into: {other:?}"),
    }
    assert!(w.crm.pool(&w.admin, d.id).await.is_ok(), "the pool is gone");
    let m = row(&w, mine).await;
    assert_eq!(place(&m), Place::Public);
    assert_eq!(m.get("pool_id").as_id(), Some(d.id.0));
    // The deletion and a release into the pool guard a common key: on
    // PostgreSQL they wait for each other.
    let deletion = hooked.guard_keys().last().cloned().expect("keys");
    let next = w
        .customer(&w.wangwu, "深圳乙科技有限公司", json!({}))
        .await
        .id;
    let r = w
        .crm
        .release(&w.wangwu, &[next], "暂无需求", None)
        .await
        .expect("release");
    assert_eq!(r.done, vec![next], "{:?}", r.refused);
    let release = hooked.guard_keys().last().cloned().expect("keys");
    assert!(
        release.iter().any(|k| deletion.contains(k)),
        "{release:?} / {deletion:?}"
    );
    // Emptied, the pool goes.
    let r = w.crm.claim(&w.wangwu, &[mine, next]).await.expect("claim");
    assert_eq!(r.done.len(), 2, "{:?}", r.refused);
    w.crm.delete_pool(&w.admin, d.id).await.expect("delete");
    assert!(row(&w, mine).await.get("pool_id").is_null());

    // A customer still naming a deleted pool (a release and a claim slipped
    // in around the deletion, or an older build) is governed by
    // membership, and recycled by its rules.
    let r = w.crm.claim(&w.zhangsan, &ids[..1]).await.expect("claim");
    assert_eq!(r.done, ids[..1].to_vec(), "{:?}", r.refused);
    let stale = row(&w, ids[0]).await;
    w.crm
        .store()
        .apply(&crate::store::ChangeSet {
            ops: vec![crate::store::Op::Update {
                table: Table::Customers,
                id: ids[0].0,
                expected_version: stale.version(),
                values: vec![("pool_id", crate::value::Value::Id(d.id.0))],
            }],
            ..Default::default()
        })
        .await
        .expect("a stale pool");
    let why = w
        .crm
        .explain_recycling(&w.admin, ids[0], None)
        .await
        .expect("explain");
    assert_eq!(why.pool.as_ref().map(|(p, _)| *p), Some(b.id), "{why:?}");
    w.clock.advance(Duration::days(11));
    let swept = w
        .crm
        .sweep(&w.admin, &SweepOptions::default())
        .await
        .expect("sweep");
    assert!(
        swept.recycled.iter().any(|i| i.customer == ids[0]),
        "{swept:?}"
    );
}

/// A contact takes its customer's owner as read: when the customer is
/// transferred between that read and the contact's write (the transfer
/// moving the contacts it found), the contact is refused (or created with
/// the new owner), never left with the old one. The other way round, a
/// contact added between a release's read of the contacts and its write
/// makes the release fail rather than leave the contact with the old owner.
pub async fn contact_created_during_a_transfer_keeps_no_old_owner(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w
        .customer(&w.zhangsan, "转移联系人有限公司", json!({}))
        .await
        .id;
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.to_string(), "name": "早先"})),
        )
        .await
        .expect("contact before");
    let admin = w.admin.clone();
    let to = w.wangwu.user_id;
    hooked.before_write(Table::Contacts, async move {
        let r = other
            .transfer_records(&admin, Entity::Customer, &[c], to)
            .await
            .expect("transfer");
        assert_eq!(r.done, vec![c], "{:?}", r.refused);
    });
    let made = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.to_string(), "name": "转移中"})),
        )
        .await;
    match &made {
        Ok(_) | Err(Error::Conflict { .. }) => {}
        Err(Error::InvalidState(m)) => assert!(m.contains("changed hands meanwhile"), "{m}"),
        Err(e) => panic!("expected a refusal, got {e:?}"),
    }
    let contacts_of = |c: RecordId| {
        let w = &w;
        async move {
            let mut sel = Select::all(Table::Contacts, w.admin.company_id.0, w.crm.now());
            sel.filter = crate::store::Filter::Cmp(
                crate::store::Col::Column("customer_id"),
                crate::store::CmpOp::Eq,
                crate::value::Value::Id(c.0),
            );
            w.crm
                .store()
                .select(&sel)
                .await
                .expect("select")
                .rows
                .iter()
                .map(|r| r.get("owner_id").as_id())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(owner(&row(&w, c).await), Some(w.wangwu.user_id));
    let n = if made.is_ok() { 2 } else { 1 };
    assert_eq!(contacts_of(c).await, vec![Some(w.wangwu.user_id.0); n]);

    // A follow-up (or an edit) of the customer meanwhile changes its
    // version, not its owner: the contact is added.
    let f = w
        .customer(&w.zhangsan, "跟进同时加联系人有限公司", json!({}))
        .await
        .id;
    let me = w.zhangsan.clone();
    let other2 = Crm::new(hooked.inner.clone(), w.clock.clone());
    hooked.before_write(Table::Contacts, async move {
        other2
            .create_record(
                &me,
                Entity::FollowUp,
                fields(json!({"customer_id": f.to_string(), "channel": "call", "content": "同时"})),
            )
            .await
            .expect("follow-up meanwhile");
    });
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": f.to_string(), "name": "同时加的"})),
        )
        .await
        .expect("the contact is added");

    // A contact added just before a release writes.
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "联系人公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.sales],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let d = w
        .customer(&w.zhangsan, "释放联系人有限公司", json!({}))
        .await
        .id;
    let me = w.zhangsan.clone();
    let other = Crm::new(hooked.inner.clone(), w.clock.clone());
    hooked.before_customer_write(async move {
        other
            .create_record(
                &me,
                Entity::Contact,
                fields(json!({"customer_id": d.to_string(), "name": "释放中"})),
            )
            .await
            .expect("contact meanwhile");
    });
    let r = w
        .crm
        .release(&w.zhangsan, &[d], "不再跟进", Some(pool.id))
        .await
        .expect("release");
    let after = owner(&row(&w, d).await).map(|u| u.0);
    if r.done == vec![d] {
        assert_eq!(after, None);
    } else {
        assert_eq!(after, Some(w.zhangsan.user_id.0), "{:?}", r.refused);
        assert!(
            r.refused
                .iter()
                .any(|(_, why)| why.contains("contact was added")),
            "{:?}",
            r.refused
        );
    }
    assert_eq!(contacts_of(d).await, vec![after]);

    // A contact added just before a transfer writes: the transfer fails
    // rather than leave it with the old owner.
    let e = w
        .customer(&w.zhangsan, "转移中加联系人有限公司", json!({}))
        .await
        .id;
    let me = w.zhangsan.clone();
    let other = Crm::new(hooked.inner.clone(), w.clock.clone());
    hooked.before_customer_write(async move {
        other
            .create_record(
                &me,
                Entity::Contact,
                fields(json!({"customer_id": e.to_string(), "name": "转移前一刻"})),
            )
            .await
            .expect("contact meanwhile");
    });
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[e], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert!(r.done.is_empty(), "{r:?}");
    assert!(
        r.refused
            .iter()
            .any(|(_, why)| why.contains("contact was added")),
        "{:?}",
        r.refused
    );
    assert_eq!(owner(&row(&w, e).await), Some(w.zhangsan.user_id));
    assert_eq!(contacts_of(e).await, vec![Some(w.zhangsan.user_id.0)]);
}

/// A merge carries the merged-away customers' live shares over to the
/// survivor (shares point at a record by its id), with an audit entry each:
/// not for the survivor's owner, not for a user already holding a live
/// share of the survivor, and one share per user (the one giving most);
/// an ended share stays behind.
pub async fn merge_carries_shares_to_the_survivor(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = w
        .customer(&w.wangwu, "共享合并甲有限公司", json!({}))
        .await
        .id;
    let b = w
        .customer(&w.zhangsan, "共享合并乙有限公司", json!({}))
        .await
        .id;
    let c = w
        .customer(&w.zhangsan, "共享合并丙有限公司", json!({}))
        .await
        .id;
    let share = |id: RecordId, with: UserId, access: ShareAccess, ends: Option<DateTime<Utc>>| {
        let w = &w;
        async move {
            w.crm
                .share_record(&w.admin, Entity::Customer, id, with, access, ends)
                .await
                .expect("share");
        }
    };
    share(a, w.lisi.user_id, ShareAccess::Read, None).await;
    share(b, w.lisi.user_id, ShareAccess::Write, None).await;
    share(b, w.wangwu.user_id, ShareAccess::Write, None).await;
    share(b, w.zhaoliu.user_id, ShareAccess::Read, None).await;
    share(c, w.zhaoliu.user_id, ShareAccess::Write, Some(day(30))).await;
    // An ended share stays behind.
    w.crm
        .share_record(
            &w.lisi,
            Entity::Customer,
            c,
            w.admin.user_id,
            ShareAccess::Read,
            Some(day(1)),
        )
        .await
        .expect("share");
    w.clock.advance(Duration::days(2));
    // Before the merge, zhaoliu (group one) may not read wangwu's customer.
    assert!(
        w.crm
            .get_record(&w.zhaoliu, Entity::Customer, a)
            .await
            .is_err()
    );
    w.crm
        .merge_customers(
            &w.admin,
            &MergeSpec {
                survivor: a,
                others: vec![b, c],
                take: BTreeMap::new(),
            },
        )
        .await
        .expect("merge");
    let shares: BTreeMap<UserId, (ShareAccess, Option<DateTime<Utc>>)> = w
        .crm
        .list_shares(&w.admin, Entity::Customer, a)
        .await
        .expect("shares")
        .into_iter()
        .map(|s| (s.user_id, (s.access, s.expires_at)))
        .collect();
    assert_eq!(
        shares,
        BTreeMap::from([
            (w.lisi.user_id, (ShareAccess::Read, None)),
            (w.zhaoliu.user_id, (ShareAccess::Write, Some(day(30)))),
        ])
    );
    w.crm
        .get_record(&w.zhaoliu, Entity::Customer, a)
        .await
        .expect("zhaoliu reads the survivor through the carried share");
    let mut carried: Vec<String> = w
        .crm
        .history(&w.admin, Entity::Customer, a.0)
        .await
        .expect("history")
        .into_iter()
        .filter(|e| e.action == "share")
        .flat_map(|e| e.changes)
        .map(|c| c.field)
        .collect();
    carried.sort();
    // lisi's own share of the survivor, and zhaoliu's carried one.
    assert_eq!(carried, vec!["share:lisi", "share:zhaoliu"]);
}

/// A record keeps one share row per user, ended or not: a merge does not
/// carry a live share to a survivor on which that user has an ended one.
pub async fn merge_gives_no_user_a_second_share_row(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = w
        .customer(&w.wangwu, "一行共享甲有限公司", json!({}))
        .await
        .id;
    let b = w
        .customer(&w.zhangsan, "一行共享乙有限公司", json!({}))
        .await
        .id;
    w.crm
        .share_record(
            &w.admin,
            Entity::Customer,
            a,
            w.zhaoliu.user_id,
            ShareAccess::Read,
            Some(day(1)),
        )
        .await
        .expect("share a");
    w.crm
        .share_record(
            &w.admin,
            Entity::Customer,
            b,
            w.zhaoliu.user_id,
            ShareAccess::Write,
            None,
        )
        .await
        .expect("share b");
    w.clock.advance(Duration::days(2));
    w.crm
        .merge_customers(
            &w.admin,
            &MergeSpec {
                survivor: a,
                others: vec![b],
                take: BTreeMap::new(),
            },
        )
        .await
        .expect("merge");
    let mut sel = Select::all(Table::Shares, w.admin.company_id.0, w.crm.now());
    sel.filter = crate::store::Filter::And(vec![
        crate::store::Filter::Cmp(
            crate::store::Col::Column("record_id"),
            crate::store::CmpOp::Eq,
            crate::value::Value::Id(a.0),
        ),
        crate::store::Filter::Cmp(
            crate::store::Col::Column("user_id"),
            crate::store::CmpOp::Eq,
            crate::value::Value::Id(w.zhaoliu.user_id.0),
        ),
    ]);
    let rows = w.crm.store().select(&sel).await.expect("shares").rows;
    assert_eq!(rows.len(), 1, "{rows:?}");
}

/// A merge leaves each customer its own pool history: the survivor's
/// shows none of the moves of a customer merged into it, and those stay
/// with the customer merged away.
pub async fn merge_leaves_each_customer_its_pool_history(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "合并公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.sales],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let b = w
        .crm
        .import_into_pool(
            &w.lisi,
            pool.id,
            vec![fields(json!({"name": "公海合并乙有限公司"}))],
        )
        .await
        .expect("import")[0];
    let r = w.crm.claim(&w.zhangsan, &[b]).await.expect("claim");
    assert_eq!(r.done, vec![b], "{:?}", r.refused);
    let a = w
        .customer(&w.zhangsan, "公海合并甲有限公司", json!({}))
        .await
        .id;
    let moves_of = |id: RecordId| {
        let w = &w;
        async move {
            let mut sel = Select::all(Table::PoolMoves, w.admin.company_id.0, w.crm.now());
            sel.filter = crate::store::Filter::Cmp(
                crate::store::Col::Column("customer_id"),
                crate::store::CmpOp::Eq,
                crate::value::Value::Id(id.0),
            );
            let mut ids: Vec<Uuid> = w
                .crm
                .store()
                .select(&sel)
                .await
                .expect("moves")
                .rows
                .iter()
                .map(Row::id)
                .collect();
            ids.sort();
            ids
        }
    };
    let before_b = moves_of(b).await;
    assert!(!before_b.is_empty());
    let before_a = moves_of(a).await;
    let history_a = w.crm.pool_history(&w.admin, a).await.expect("history");
    w.crm
        .merge_customers(
            &w.admin,
            &MergeSpec {
                survivor: a,
                others: vec![b],
                take: BTreeMap::new(),
            },
        )
        .await
        .expect("merge");
    assert_eq!(moves_of(b).await, before_b);
    assert_eq!(moves_of(a).await, before_a);
    assert_eq!(
        w.crm.pool_history(&w.admin, a).await.expect("history"),
        history_a
    );
}

/// A pool's changes are announced (`pool.updated`) under its name with
/// what changed — its name, limits, members, and its recycling rules
/// added, changed and removed — and its deletion (`pool.deleted`) with
/// its name.
pub async fn pool_changes_and_deletions_are_announced(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let p = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "华南公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.group1],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let seen = w
        .crm
        .pending_events("pool-suite", 100_000)
        .await
        .expect("events")
        .last()
        .map_or(0, |e| e.seq);
    let p = w
        .crm
        .update_pool(
            &w.admin,
            p.id,
            p.version,
            PoolSpec {
                name: "华南二区公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1, w.group2],
                limits: PoolLimits {
                    max_per_claim: Some(5),
                    ..PoolLimits::default()
                },
            },
        )
        .await
        .expect("changed");
    let rule = w
        .crm
        .add_recycle_rule(&w.lisi, p.id, RuleSpec::new(RuleKind::NoFollowUp, 30))
        .await
        .expect("rule");
    let rule = w
        .crm
        .update_recycle_rule(
            &w.lisi,
            rule.id,
            rule.version,
            RuleSpec::new(RuleKind::NoFollowUp, 20),
        )
        .await
        .expect("rule changed");
    w.crm
        .delete_recycle_rule(&w.lisi, rule.id)
        .await
        .expect("rule removed");
    w.crm.delete_pool(&w.admin, p.id).await.expect("deleted");
    let got: Vec<(String, serde_json::Value)> = w
        .crm
        .pending_events("pool-suite", 100_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.seq > seen && e.event.record_id == p.id.0)
        .map(|e| (e.event.event_type.clone(), e.event.payload.to_value()))
        .collect();
    let kinds: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "pool.updated",
            "pool.updated",
            "pool.updated",
            "pool.updated",
            "pool.deleted"
        ],
        "{got:?}"
    );
    let changes = |i: usize| -> Vec<(String, serde_json::Value, serde_json::Value)> {
        got[i].1["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| {
                (
                    c["field"].as_str().unwrap_or_default().to_string(),
                    c["before"].clone(),
                    c["after"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(got[0].1["name"], "华南二区公海");
    let first: BTreeSet<String> = changes(0).into_iter().map(|(f, ..)| f).collect();
    assert_eq!(
        first,
        ["name", "member_departments", "limits.max_per_claim"]
            .into_iter()
            .map(String::from)
            .collect(),
        "{got:?}"
    );
    assert!(changes(0).contains(&("name".into(), json!("华南公海"), json!("华南二区公海"))));
    for (i, before, after) in [
        (1, None, Some(30)),
        (2, Some(30), Some(20)),
        (3, Some(20), None),
    ] {
        assert_eq!(got[i].1["name"], "华南二区公海");
        let c = changes(i);
        assert_eq!(c.len(), 1, "{got:?}");
        assert_eq!(c[0].0, "rules");
        assert_eq!(c[0].1["days"].as_u64(), before, "{got:?}");
        assert_eq!(c[0].2["days"].as_u64(), after, "{got:?}");
    }
    assert_eq!(got[4].1["name"], "华南二区公海");
}

/// A pool's caps on customers held bind every way a customer comes into a
/// user's hands, as a claim or an assignment is bound: a transfer (转移) to
/// the user — from a pool or from a colleague — and creating customers
/// (the creator, or the owner named, holds them, under the pool of their
/// department), counted once for a batch. The refusals read as a claim's,
/// nothing is written, and an allowed transfer or creation bumps the
/// holder rows as a claim does (so concurrent claims count again).
pub async fn pool_caps_bind_transfers_and_creation(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = pool_of(
        &w,
        "每人两个",
        PoolLimits {
            max_owned_per_user: Some(2),
            ..PoolLimits::default()
        },
        3,
    )
    .await;
    let r = w.crm.claim(&w.zhangsan, &a[..2]).await.expect("claim");
    assert_eq!(r.done.len(), 2, "{:?}", r.refused);
    let over = "张三 already holds 2 customers, the limit of pool 每人两个";
    // A public customer transferred to 张三 by an administrator.
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[a[2]], w.zhangsan.user_id)
        .await
        .expect("transfer");
    assert!(r.done.is_empty(), "a transfer passed the cap");
    assert!(r.refused[0].1.contains(over), "{:?}", r.refused);
    let a2 = row(&w, a[2]).await;
    assert_eq!((place(&a2), owner(&a2)), (Place::Public, None));
    // A colleague's customer (of no pool) transferred to 张三: his pool's
    // caps govern it once his.
    let theirs = w.customer(&w.wangwu, "二组客户有限公司", json!({})).await;
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[theirs.id], w.zhangsan.user_id)
        .await
        .expect("transfer");
    assert!(r.refused[0].1.contains(over), "{:?}", r.refused);
    assert_eq!(owner(&row(&w, theirs.id).await), Some(w.wangwu.user_id));
    // A customer 张三 creates.
    match w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "新建超限有限公司"})),
        )
        .await
    {
        Err(Error::Forbidden(m)) => assert!(m.contains(over), "{m}"),
        other => panic!("expected the cap, got {other:?}"),
    }
    // Or an administrator creates for him.
    match w
        .crm
        .create_record(
            &w.admin,
            Entity::Customer,
            fields(json!({"name": "代建超限有限公司", "owner_id": w.zhangsan.user_id.to_string()})),
        )
        .await
    {
        Err(Error::Forbidden(m)) => assert!(m.contains(over), "{m}"),
        other => panic!("expected the cap, got {other:?}"),
    }
    // Or an import of his, in one transaction or in batches.
    for commit in [
        crate::import::CommitMode::Atomic,
        crate::import::CommitMode::Batches,
    ] {
        let mut o = crate::import::ImportOptions::new(Entity::Customer);
        o.commit = commit;
        let mut s = w
            .crm
            .begin_import(&w.zhangsan, o, &["客户名称".to_string()])
            .await
            .expect("begin");
        let pushed = s
            .push(&[crate::import::SheetRow {
                number: 2,
                cells: vec![crate::import::Cell::Text("导入超限有限公司".into())],
            }])
            .await;
        let got = match pushed {
            Ok(_) => s.finish().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match got {
            Err(Error::Forbidden(m)) => assert!(m.contains(over), "{commit:?}: {m}"),
            other => panic!("{commit:?}: expected the cap, got {other:?}"),
        }
    }
    assert_eq!(owned_by(&w, w.zhangsan.user_id).await, 2);
    // 王五 belongs to no capped pool: he creates freely.
    w.customer(&w.wangwu, "二组又一客户有限公司", json!({}))
        .await;
    // A slot freed, 张三 creates one, which bumps his holder row as a
    // claim would.
    let r = w
        .crm
        .release(&w.zhangsan, &[a[1]], "不再跟进", None)
        .await
        .expect("release");
    assert_eq!(r.done, vec![a[1]]);
    let holder = |w: &World| {
        let id = w.zhangsan.user_id.0;
        let store = w.crm.store().clone();
        async move {
            store
                .get(Table::PoolHolders, id)
                .await
                .expect("holder")
                .map_or(0, |r| r.version())
        }
    };
    let before = holder(&w).await;
    w.customer(&w.zhangsan, "张三新客户有限公司", json!({}))
        .await;
    assert!(
        holder(&w).await > before,
        "the creation bumped the holder row"
    );
    assert_eq!(owned_by(&w, w.zhangsan.user_id).await, 2);
    // A batch is counted once, as a whole: 赵六 (of group one) holds none,
    // three at once would make three.
    let batch = |n: usize| {
        (0..n)
            .map(|i| fields(json!({"name": format!("赵六批量{n}客户{i}有限公司")})))
            .collect::<Vec<_>>()
    };
    match w
        .crm
        .create_records(&w.zhaoliu, Entity::Customer, batch(3), None)
        .await
    {
        Err(Error::Forbidden(m)) => assert!(
            m.contains("赵六 already holds 0 customers, the limit of pool 每人两个")
                && m.contains("3 more"),
            "{m}"
        ),
        other => panic!("expected the cap, got {other:?}"),
    }
    assert_eq!(owned_by(&w, w.zhaoliu.user_id).await, 0);
    let made = w
        .crm
        .create_records(&w.zhaoliu, Entity::Customer, batch(2), None)
        .await
        .expect("two fit");
    assert_eq!(made.len(), 2);
    // A transfer within the cap passes, and bumps the holder row too.
    let r = w
        .crm
        .release(&w.zhaoliu, &made[..1], "不再跟进", None)
        .await
        .expect("release");
    assert_eq!(r.done.len(), 1);
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[a[2]], w.zhaoliu.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![a[2]], "{:?}", r.refused);
    assert_eq!(owned_by(&w, w.zhaoliu.user_id).await, 2);
}

/// A record is not given (transferred, or assigned from a pool) to a user
/// whose roles do not let them edit it once theirs — a customer-service
/// user who may only read customers could neither work on it, nor release
/// it, and no pool would take it back: the refusal names the user and
/// what they lack, and nothing moves.
pub async fn records_go_only_to_who_may_edit_them(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let kefu = user_with_rules(&w, "kefu", &[Action::Read], &[]).await;
    let c = w
        .customer(&w.zhangsan, "客服不可编辑有限公司", json!({}))
        .await;
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], kefu.user_id)
        .await
        .expect("transfer");
    assert!(r.done.is_empty(), "transferred to one who may not edit it");
    let m = &r.refused[0].1;
    assert!(
        m.contains("kefu") && m.contains("do not let them edit customer"),
        "{m}"
    );
    assert_eq!(owner(&row(&w, c.id).await), Some(w.zhangsan.user_id));
    let a = pool_of(&w, "客服公海", PoolLimits::default(), 1).await;
    let r = w
        .crm
        .assign(&w.lisi, &a, kefu.user_id)
        .await
        .expect("assign");
    assert!(r.done.is_empty(), "assigned to one who may not edit it");
    assert!(r.refused[0].1.contains("kefu"), "{:?}", r.refused);
    assert_eq!(place(&row(&w, a[0]).await), Place::Public);
    // One whose role lets them edit their own customers takes both.
    let rep = user_with_rules(&w, "rep", &[Action::Read, Action::Update], &[]).await;
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], rep.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![c.id], "{:?}", r.refused);
    let r = w
        .crm
        .assign(&w.lisi, &a, rep.user_id)
        .await
        .expect("assign");
    assert_eq!(r.done, a, "{:?}", r.refused);
}

/// A deal (成交) is dated at the latest today, in the company's time zone,
/// and not before the customer was created; a date that would change
/// nothing (a later deal is recorded) is refused as changing nothing
/// rather than reported as marked.
pub async fn a_deal_date_is_neither_ahead_nor_before_the_customer(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "成交日期有限公司", json!({})).await;
    let now = crate::clock::Clock::now(&*w.clock);
    match w
        .crm
        .mark_deal(&w.zhangsan, c.id, Some(now + Duration::days(2)))
        .await
    {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("future"), "{v}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match w
        .crm
        .mark_deal(&w.zhangsan, c.id, Some(now - Duration::days(30)))
        .await
    {
        Err(Error::Validation(v)) => {
            assert!(v.to_string().contains("before customer"), "{v}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let stored = row(&w, c.id).await;
    assert!(stored.get("closed_at").is_null(), "nothing stored");
    assert_eq!(place(&stored), Place::Private);
    // Earlier the same day it was created: from its creation.
    w.crm
        .mark_deal(&w.zhangsan, c.id, Some(now - Duration::minutes(30)))
        .await
        .expect("the day it was created");
    let stored = row(&w, c.id).await;
    assert_eq!(stored.get("closed_at").as_timestamp(), Some(now));
    assert_eq!(place(&stored), Place::Deal);
    w.clock.advance(Duration::days(3));
    w.crm
        .mark_deal(&w.zhangsan, c.id, Some(now + Duration::days(2)))
        .await
        .expect("a later deal");
    // An earlier one changes nothing, and says so.
    match w
        .crm
        .mark_deal(&w.zhangsan, c.id, Some(now + Duration::days(1)))
        .await
    {
        Err(Error::InvalidState(m)) => assert!(m.contains("nothing changed"), "{m}"),
        other => panic!("expected nothing changed, got {other:?}"),
    }
    assert_eq!(
        row(&w, c.id).await.get("closed_at").as_timestamp(),
        Some(now + Duration::days(2))
    );
    // Now, again, is still a deal now.
    w.crm.mark_deal(&w.zhangsan, c.id, None).await.expect("now");
}

/// Colleagues logging follow-ups on one customer at once, or a follow-up
/// racing the owner's edit of the customer: a follow-up writes the
/// customer's follow-up dates, and the customer changed after it was read.
/// The author changed no customer field, so that is no conflict of theirs:
/// the customer is read again and the dates computed again, and both
/// writes stand. The same for deleting a follow-up while the owner edits
/// the customer.
pub async fn follow_ups_at_once_on_one_customer_are_all_saved(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w.customer(&w.zhangsan, "同时跟进有限公司", json!({})).await;
    let follow_up = |content: &str, next: Option<&str>| {
        let mut f = json!({"customer_id": c.id.to_string(), "channel": "call", "content": content});
        if let Some(n) = next {
            f["next_follow_up_at"] = json!(n);
        }
        fields(f)
    };
    // 赵六 (the group's lead) logs a call while 张三's is being written.
    let (o, lead, theirs) = (
        other.clone(),
        w.zhaoliu.clone(),
        follow_up("组长电话回访", Some("2026-12-01 09:00")),
    );
    w.clock.advance(Duration::hours(1));
    hooked.before_customer_write(async move {
        o.create_record(&lead, Entity::FollowUp, theirs)
            .await
            .expect("the lead's follow-up");
    });
    w.clock.advance(Duration::minutes(1));
    let mine = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            follow_up("张三上门拜访", Some("2026-12-03 10:00")),
        )
        .await
        .expect("a colleague's follow-up meanwhile is no conflict of the author's");
    let r = row(&w, c.id).await;
    assert_eq!(
        r.get("last_follow_up_at").as_timestamp(),
        Some(day(0) + Duration::minutes(61)),
        "the latest follow-up dates the customer"
    );
    assert_eq!(
        r.get("next_follow_up").to_json(),
        json!("2026-12-03"),
        "the latest follow-up plans the next one"
    );
    let listed = w
        .crm
        .list_records(
            &w.zhaoliu,
            Entity::FollowUp,
            &ListQuery::default().with_total(),
        )
        .await
        .expect("follow-ups");
    assert_eq!(listed.total, Some(2), "both follow-ups are saved");
    // The owner edits the customer while 张三's follow-up is being deleted:
    // the edit stands, and the dates fall back to the lead's follow-up.
    let (o, owner, version) = (other.clone(), w.zhangsan.clone(), r.version());
    hooked.before_customer_write(async move {
        o.update_record(
            &owner,
            Entity::Customer,
            c.id,
            version,
            fields(json!({"notes": "同时修改"})),
        )
        .await
        .expect("the owner's edit");
    });
    let report = w
        .crm
        .delete_records(&w.zhangsan, Entity::FollowUp, &[mine.id])
        .await;
    assert_eq!(report.done, vec![mine.id], "{:?}", report.refused);
    let r = row(&w, c.id).await;
    assert_eq!(r.get("notes").to_json(), json!("同时修改"));
    // (The lead's call was logged at the same minute.)
    assert_eq!(
        r.get("last_follow_up_at").as_timestamp(),
        Some(day(0) + Duration::minutes(61))
    );
    assert_eq!(r.get("next_follow_up").to_json(), json!("2026-12-01"));
}

/// One user creating customers at once under a pool's cap: each create
/// bumps (the first inserts) the user's holder row, so the later one fails
/// on it and counts again — it is saved while the cap allows, and refused
/// in the words of the cap when it does not, never with the store's words
/// (a table, a constraint, an id).
pub async fn customers_created_at_once_under_a_cap_count_again(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    pool_of(
        &w,
        "每人两个",
        PoolLimits {
            max_owned_per_user: Some(2),
            ..PoolLimits::default()
        },
        0,
    )
    .await;
    let (o, me) = (other.clone(), w.zhangsan.clone());
    hooked.before_write(Table::PoolHolders, async move {
        o.create_record(
            &me,
            Entity::Customer,
            fields(json!({"name": "同时新建一有限公司"})),
        )
        .await
        .expect("created meanwhile");
    });
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "同时新建二有限公司"})),
        )
        .await
        .expect("the holder row inserted meanwhile is counted again, not an error");
    assert!(hooked.holder_conflicts() >= 1, "the creates did meet");
    // At the cap now: a third one, raced by a fourth, is refused as over
    // the cap.
    let (o, me) = (other.clone(), w.zhangsan.clone());
    hooked.before_write(Table::PoolHolders, async move {
        let e = o
            .create_record(
                &me,
                Entity::Customer,
                fields(json!({"name": "同时新建三有限公司"})),
            )
            .await
            .expect_err("over the cap");
        assert!(e.to_string().contains("already holds 2"), "{e}");
    });
    let e = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "同时新建四有限公司"})),
        )
        .await
        .expect_err("over the cap");
    let m = e.to_string();
    assert!(m.contains("already holds 2"), "{m}");
    assert!(!m.contains("pool_holders"), "{m}");
}

/// Two sweeps at the same moment: each customer is recycled (or its owner
/// warned) once, and the sweep that comes second skips the customers the
/// first recycled or warned about instead of refusing them.
pub async fn sweeps_at_once_recycle_each_customer_once(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "销售部公海".into(),
                admins: vec![w.lisi.user_id],
                member_departments: vec![w.sales],
                limits: PoolLimits {
                    warn_days: 3,
                    ..PoolLimits::default()
                },
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    w.crm
        .add_recycle_rule(&w.lisi, pool.id, RuleSpec::new(RuleKind::NoFollowUp, 10))
        .await
        .expect("rule");
    let a = w
        .customer(&w.zhangsan, "同时回收一有限公司", json!({}))
        .await
        .id;
    let b = w
        .customer(&w.zhangsan, "同时回收二有限公司", json!({}))
        .await
        .id;
    w.clock.advance(Duration::days(3));
    // Due on day 13: its owner is warned on day 11.
    let d = w
        .customer(&w.zhangsan, "同时提醒有限公司", json!({}))
        .await
        .id;
    w.clock.advance(Duration::days(8));
    let sweep = SweepOptions {
        dry_run: false,
        at: None,
        pool: None,
    };
    let (o, admin, s) = (other.clone(), w.admin.clone(), sweep.clone());
    hooked.before_customer_write(async move {
        let r = o.sweep(&admin, &s).await.expect("the other sweep");
        assert_eq!(r.recycled.len(), 2, "{r:?}");
        assert_eq!(r.warned.len(), 1, "{r:?}");
    });
    let r = w.crm.sweep(&w.lisi, &sweep).await.expect("sweep");
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert!(r.recycled.is_empty(), "recycled twice: {:?}", r.recycled);
    assert!(r.warned.is_empty(), "warned twice: {:?}", r.warned);
    assert_eq!(place(&row(&w, d).await), Place::Private);
    assert_eq!(events_of(&w, "customer.recycle_warning").await.len(), 1);
    for c in [a, b] {
        assert_eq!(place(&row(&w, c).await), Place::Public);
        assert_eq!(
            w.crm
                .pool_history(&w.admin, c)
                .await
                .expect("history")
                .iter()
                .filter(|m| m.action == "recycle")
                .count(),
            1
        );
    }
}

/// A claim that loses the race for a customer says that someone else took
/// it (by name to who may read the customer now), not that the customer
/// is not found; and a former owner waiting out the cooldown is told who
/// moved the customer to the pool.
pub async fn a_lost_claim_and_the_cooldown_say_who(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let b = pool_of(
        &w,
        "一组公海",
        PoolLimits {
            reclaim_cooldown_days: 5,
            ..PoolLimits::default()
        },
        2,
    )
    .await;
    // 张三 claims b0 while 赵六 waits; 赵六 (the lead) may read it then.
    let (o, me, b0) = (other.clone(), w.zhangsan.clone(), b[0]);
    hooked.before_customer_write(async move {
        let r = o.claim(&me, &[b0]).await.expect("claim");
        assert_eq!(r.done.len(), 1, "{r:?}");
    });
    let r = w.crm.claim(&w.zhaoliu, &[b[0]]).await.expect("claim");
    assert!(r.done.is_empty());
    let m = &r.refused[0].1;
    assert!(m.contains("was just claimed by 张三"), "{m}");
    // The other way round: 张三 may not read 赵六's customers, so it was
    // "someone else"; the customer is out of his sight (not found) by the
    // time he tries.
    let r = other.claim(&w.zhaoliu, &[b[1]]).await.expect("claim");
    assert_eq!(r.done, vec![b[1]]);
    let r = w.crm.claim(&w.zhangsan, &[b[1]]).await.expect("claim");
    let m = &r.refused[0].1;
    assert!(m.contains("was just claimed by someone else"), "{m}");
    assert!(!m.contains("not found"), "{m}");
    // 李四 (a pool admin) moves 张三's customer to the pool: the cooldown
    // names him, not 张三, as who gave it up.
    let pool = w
        .crm
        .list_pools(&w.admin)
        .await
        .expect("pools")
        .into_iter()
        .find(|p| p.name == "一组公海")
        .expect("pool");
    let r = w
        .crm
        .move_to_pool(&w.lisi, &[b[0]], pool.id, Place::Public, "重新分配")
        .await
        .expect("move");
    assert_eq!(r.done, vec![b[0]], "{:?}", r.refused);
    let r = w.crm.claim(&w.zhangsan, &[b[0]]).await.expect("claim");
    let m = &r.refused[0].1;
    assert!(
        m.contains("李四 moved customer") && m.contains("from 张三 to the pool"),
        "{m}"
    );
    assert!(m.contains("claimed back from"), "{m}");
    // Given up by himself, it says so.
    let r = w.crm.claim(&w.zhangsan, &[b[1]]).await.expect("claim");
    assert!(!r.done.is_empty() || !r.refused.is_empty());
}

/// Where deals do not count toward the cap, a customer that made a deal is
/// claimed and assigned by a user holding as many as the cap allows (it is
/// held as a deal), as a transfer gives it.
pub async fn a_deal_customer_is_claimed_past_a_cap_that_leaves_deals_out(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "成交不计公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: PoolLimits {
                    max_owned_per_user: Some(1),
                    deals_count_toward_cap: false,
                    ..PoolLimits::default()
                },
            },
        )
        .await
        .expect("pool");
    let ids = w
        .crm
        .import_into_pool(
            &w.lisi,
            pool.id,
            (0..3)
                .map(|i| fields(json!({"name": format!("成交客户{i}有限公司")})))
                .collect(),
        )
        .await
        .expect("import");
    let (potential, deal, other) = (ids[0], ids[1], ids[2]);
    // 张三 wins a deal with one, then gives it up.
    let r = w.crm.claim(&w.zhangsan, &[deal]).await.expect("claim");
    assert_eq!(r.done, vec![deal], "{r:?}");
    w.crm
        .mark_deal(&w.zhangsan, deal, None)
        .await
        .expect("deal");
    let r = w
        .crm
        .release(&w.zhangsan, &[deal], "转交他人维护", None)
        .await
        .expect("release");
    assert_eq!(r.done, vec![deal], "{r:?}");
    // 赵六 holds as many potential customers as the cap allows.
    let r = w.crm.claim(&w.zhaoliu, &[potential]).await.expect("claim");
    assert_eq!(r.done, vec![potential], "{r:?}");
    let r = w.crm.claim(&w.zhaoliu, &[other]).await.expect("claim");
    assert!(r.refused[0].1.contains("already holds 1"), "{r:?}");
    // The deal customer is no potential one: it is claimed, as a deal.
    let r = w.crm.claim(&w.zhaoliu, &[deal]).await.expect("claim");
    assert_eq!(r.done, vec![deal], "{r:?}");
    assert_eq!(place(&row(&w, deal).await), Place::Deal);
    // And assigned, by the pool's administrator.
    let r = w
        .crm
        .release(&w.zhaoliu, &[deal], "再次转交", None)
        .await
        .expect("release");
    assert_eq!(r.done, vec![deal], "{r:?}");
    let r = w
        .crm
        .assign(&w.lisi, &[deal], w.zhaoliu.user_id)
        .await
        .expect("assign");
    assert_eq!(r.done, vec![deal], "{r:?}");
    let r = w
        .crm
        .assign(&w.lisi, &[other], w.zhaoliu.user_id)
        .await
        .expect("assign");
    assert!(r.refused[0].1.contains("already holds 1"), "{r:?}");
}

/// A lock (锁定) keeps a customer with the owner it was granted for, and
/// ends when the customer leaves that owner: released (the next claimant
/// holds an unlocked customer the rules recycle again), or transferred to
/// another owner — each time recorded in the customer's history. The
/// explanation of a locked customer lists no rule as firing.
pub async fn a_lock_ends_when_its_customer_leaves_the_owner(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "锁定公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.sales],
                limits: PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    w.crm
        .add_recycle_rule(&w.admin, pool.id, RuleSpec::new(RuleKind::NoFollowUp, 10))
        .await
        .expect("rule");
    let c = w.customer(&w.zhangsan, "锁定客户有限公司", json!({})).await;
    let locked = w.crm.set_locked(&w.lisi, &[c.id], true).await;
    assert_eq!(locked.done, vec![c.id], "{locked:?}");
    // Locked, no rule fires, however far ahead.
    let far = w.crm.now() + Duration::days(100);
    let e = w
        .crm
        .explain_recycling(&w.admin, c.id, Some(far))
        .await
        .expect("explain");
    assert_eq!(e.summary, "it is locked and is never recycled");
    assert!(!e.outcomes.is_empty());
    assert!(
        e.outcomes
            .iter()
            .all(|o| o.status == RuleStatus::Exempt && o.due_at.is_none()),
        "{:?}",
        e.outcomes
    );
    assert!(e.next.is_none(), "{:?}", e.next);
    // Released, the lock ends with the owner's hold, in the history.
    let r = w
        .crm
        .release(&w.zhangsan, &[c.id], "不再跟进", None)
        .await
        .expect("release");
    assert_eq!(r.done, vec![c.id], "{r:?}");
    assert_eq!(
        row(&w, c.id).await.get("locked"),
        &crate::value::Value::Bool(false)
    );
    let lock_ended = |h: &[AuditEntry], action: &str| {
        h.iter().any(|e| {
            e.action == action
                && e.changes.iter().any(|c| {
                    c.field == "locked" && c.before == json!(true) && c.after == json!(false)
                })
        })
    };
    let h = w
        .crm
        .history(&w.admin, Entity::Customer, c.id.0)
        .await
        .expect("history");
    assert!(lock_ended(&h, "release"), "{h:#?}");
    // The next claimant holds it unlocked: the rules recycle it again.
    let r = w.crm.claim(&w.wangwu, &[c.id]).await.expect("claim");
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let e = w
        .crm
        .explain_recycling(&w.admin, c.id, Some(far))
        .await
        .expect("explain");
    assert_eq!(e.locked, Some(false));
    assert!(
        e.outcomes.iter().any(|o| o.status == RuleStatus::Fires),
        "{e:?}"
    );
    let dry = w
        .crm
        .sweep(
            &w.admin,
            &SweepOptions {
                dry_run: true,
                at: Some(far),
                pool: None,
            },
        )
        .await
        .expect("dry run");
    assert!(dry.recycled.iter().any(|i| i.customer == c.id), "{dry:?}");
    // Transferred to another owner, a lock ends too.
    let d = w.customer(&w.zhangsan, "锁定转移有限公司", json!({})).await;
    let locked = w.crm.set_locked(&w.lisi, &[d.id], true).await;
    assert_eq!(locked.done, vec![d.id], "{locked:?}");
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[d.id], w.zhaoliu.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![d.id], "{r:?}");
    assert_eq!(
        row(&w, d.id).await.get("locked"),
        &crate::value::Value::Bool(false)
    );
    let h = w
        .crm
        .history(&w.admin, Entity::Customer, d.id.0)
        .await
        .expect("history");
    assert!(lock_ended(&h, "transfer"), "{h:#?}");
    // A customer that is not locked records no lock ending.
    assert!(!lock_ended(
        &w.crm
            .history(&w.admin, Entity::Customer, c.id.0)
            .await
            .expect("history"),
        "claim"
    ));
}

/// A member of a pool reads a customer in the pool's public area as its
/// 360° view shows it — the record by id and by code, and its history —
/// without its turning up in their list or their being able to change
/// it; a user outside the pool finds none of it.
pub async fn pool_members_read_public_customers_as_the_view_shows_them(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "读取公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    let ids = w
        .crm
        .import_into_pool(
            &w.lisi,
            pool.id,
            vec![fields(
                json!({"name": "公海读取有限公司", "phone": "010-61112222"}),
            )],
        )
        .await
        .expect("import");
    let c = ids[0];
    let view = w
        .crm
        .customer_view(&w.zhangsan, c)
        .await
        .expect("a member views it");
    let got = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c)
        .await
        .expect("a member reads it");
    assert_eq!(got, view.customer);
    let code = got.code.clone().expect("code");
    let by_code = w
        .crm
        .get_record_by_code(&w.zhangsan, Entity::Customer, &code)
        .await
        .expect("by code");
    assert_eq!(by_code, view.customer);
    // Its past (earlier owners' values) is not the pool's to show: the
    // member is told so; an administrator reads it.
    match w.crm.history(&w.zhangsan, Entity::Customer, c.0).await {
        Err(Error::Forbidden(m)) => assert!(m.contains(&code) && m.contains("pool history"), "{m}"),
        other => panic!("a member reading a public customer's history: {other:?}"),
    }
    let h = w
        .crm
        .history(&w.admin, Entity::Customer, c.0)
        .await
        .expect("its history");
    assert_eq!(h.first().map(|e| e.action.as_str()), Some("create"));
    // Read only: not listed, not changed.
    let (listed, _) = w.visible(&w.zhangsan, ListQuery::default()).await;
    assert!(!listed.contains(&c));
    assert!(
        w.crm
            .update_record(
                &w.zhangsan,
                Entity::Customer,
                c,
                got.version,
                fields(json!({"phone": "010-63334444"}))
            )
            .await
            .is_err()
    );
    let r = w
        .crm
        .transfer_records(&w.zhangsan, Entity::Customer, &[c], w.zhangsan.user_id)
        .await
        .expect("transfer");
    assert!(r.done.is_empty(), "{r:?}");
    // Outside the pool (销售二组): not found, as before.
    assert!(matches!(
        w.crm.get_record(&w.wangwu, Entity::Customer, c).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        w.crm
            .get_record_by_code(&w.wangwu, Entity::Customer, &code)
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        w.crm.history(&w.wangwu, Entity::Customer, c.0).await,
        Err(Error::NotFound { .. })
    ));
}

/// The re-claim cooldown is about the user and the customer: a customer
/// released into a pool with a cooldown and moved by an admin to a pool
/// without one is not claimed back by its former owner before the
/// cooldown of the pool it was released into ends.
pub async fn the_reclaim_cooldown_follows_the_customer_to_another_pool(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let spec = |name: &str, cooldown: u32| PoolSpec {
        name: name.into(),
        admins: vec![w.lisi.user_id],
        member_users: Vec::new(),
        member_departments: vec![w.group1],
        limits: PoolLimits {
            reclaim_cooldown_days: cooldown,
            ..PoolLimits::default()
        },
    };
    let strict = w
        .crm
        .create_pool(&w.admin, spec("冷却公海", 7))
        .await
        .expect("pool");
    let lax = w
        .crm
        .create_pool(&w.admin, spec("无冷却公海", 0))
        .await
        .expect("pool");
    let c = w.customer(&w.zhangsan, "冷却客户有限公司", json!({})).await;
    let r = w
        .crm
        .release(&w.zhangsan, &[c.id], "暂不跟进", Some(strict.id))
        .await
        .expect("release");
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let r = w
        .crm
        .move_to_pool(&w.lisi, &[c.id], lax.id, Place::Public, "调整公海")
        .await
        .expect("move");
    assert_eq!(r.done, vec![c.id], "{r:?}");
    assert_eq!(row(&w, c.id).await.get("pool_id").as_id(), Some(lax.id.0));
    let r = w.crm.claim(&w.zhangsan, &[c.id]).await.expect("claim");
    assert!(r.done.is_empty(), "{r:?}");
    assert!(r.refused[0].1.contains("may be claimed back from"), "{r:?}");
    // Anyone else claims it at once; the former owner after 7 days.
    w.clock.advance(Duration::days(7) + Duration::minutes(1));
    let r = w.crm.claim(&w.zhangsan, &[c.id]).await.expect("claim");
    assert_eq!(r.done, vec![c.id], "{r:?}");
}

/// Pool names differ by more than letter case, width or spacing:
/// `hb公海`, `HB公海` and `ＨＢ公海` name one pool, on creating and on
/// renaming. A change that meets another one names the pool by its name.
pub async fn pool_names_are_unique_spelling_aside(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let spec = |name: &str| PoolSpec {
        name: name.into(),
        admins: Vec::new(),
        member_users: Vec::new(),
        member_departments: vec![w.sales],
        limits: PoolLimits::default(),
    };
    let hb = w
        .crm
        .create_pool(&w.admin, spec("hb公海"))
        .await
        .expect("pool");
    for other in ["HB公海", "ＨＢ公海", " Hb公海 "] {
        match w.crm.create_pool(&w.admin, spec(other)).await {
            Err(Error::Duplicate { message, .. }) => {
                assert!(message.contains("hb公海"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    let east = w
        .crm
        .create_pool(&w.admin, spec("华东公海"))
        .await
        .expect("pool");
    assert!(matches!(
        w.crm
            .update_pool(&w.admin, east.id, east.version, spec("ｈｂ公海"))
            .await,
        Err(Error::Duplicate { .. })
    ));
    // Its own name in another spelling is no duplicate.
    let hb2 = w
        .crm
        .update_pool(&w.admin, hb.id, hb.version, spec("HB公海"))
        .await
        .expect("respelled");
    assert_eq!(hb2.name, "HB公海");
    // A change from a stale read names the pool.
    match w
        .crm
        .update_pool(&w.admin, hb.id, hb.version, spec("HB公海"))
        .await
    {
        Err(Error::Conflict { id, .. }) => assert_eq!(id, "HB公海"),
        other => panic!("{other:?}"),
    }
    let names: Vec<String> = w
        .crm
        .list_pools(&w.admin)
        .await
        .expect("pools")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, vec!["HB公海".to_string(), "华东公海".to_string()]);
}

/// A transfer or a share is given no version: a colleague's edit of the
/// customer between its read and its write does not make it fail. It reads
/// the customer again and goes through, and the edit stays.
pub async fn a_transfer_or_share_given_no_version_takes_a_meanwhile_edit(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w
        .customer(&w.zhangsan, "并发编辑有限公司", json!({}))
        .await
        .id;
    let edit = |notes: &'static str| {
        let other = other.clone();
        let zhangsan = w.zhangsan.clone();
        async move {
            let row = other
                .get_record(&zhangsan, Entity::Customer, c)
                .await
                .expect("read");
            other
                .update_record(
                    &zhangsan,
                    Entity::Customer,
                    c,
                    row.version,
                    fields(json!({"notes": notes})),
                )
                .await
                .expect("the colleague's edit");
        }
    };
    hooked.before_customer_write(edit("共享前的备注"));
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c,
            w.wangwu.user_id,
            crate::records::ShareAccess::Read,
            None,
        )
        .await
        .expect("shared though edited meanwhile");
    hooked.before_customer_write(edit("转移前的备注"));
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![c], "{:?}", r.refused);
    let now = w
        .crm
        .get_record(&w.admin, Entity::Customer, c)
        .await
        .expect("customer");
    assert_eq!(now.owner_id, Some(w.wangwu.user_id));
    assert_eq!(now.text("notes"), Some("转移前的备注"));
}

/// A customer in a public pool, held by nobody, is worked on only once
/// claimed or assigned: a member whose roles do not let them edit their
/// own customers may not claim it (they could neither work on it nor give
/// it back); it takes no deal mark, lock or share; no held customer is
/// merged into it; and no sales document of it is submitted, nor a payment
/// on one voided.
pub async fn a_public_customer_is_worked_on_only_once_held(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{NewContract, PaymentInput};
    let w = crate::testing::sales_suite::with_sales_rights(World::new(store).await).await;
    let reader = user_with_rules(&w, "只读成员", &[Action::Read], &[]).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "公海甲".into(),
                admins: vec![w.lisi.user_id],
                member_users: vec![reader.user_id],
                member_departments: vec![w.group1],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    let ids = w
        .crm
        .import_into_pool(
            &w.lisi,
            pool.id,
            vec![fields(json!({"name": "公海乙有限公司"}))],
        )
        .await
        .expect("import");
    let public = ids[0];
    let r = w.crm.claim(&reader, &[public]).await.expect("claim");
    assert!(r.done.is_empty(), "{r:?}");
    assert!(
        r.refused[0].1.contains("may not claim") && r.refused[0].1.contains("edit"),
        "{r:?}"
    );
    let still = row(&w, public).await;
    assert!(still.get("owner_id").is_null(), "{still:?}");
    let m = w
        .crm
        .mark_deal(&w.admin, public, None)
        .await
        .expect_err("no deal on a public customer")
        .to_string();
    assert!(m.contains("public pool"), "{m}");
    let r = w.crm.set_locked(&w.admin, &[public], true).await;
    assert!(
        r.done.is_empty() && r.refused[0].1.contains("public pool"),
        "{r:?}"
    );
    let m = w
        .crm
        .share_record(
            &w.admin,
            Entity::Customer,
            public,
            w.wangwu.user_id,
            ShareAccess::Write,
            None,
        )
        .await
        .expect_err("no share of a public customer")
        .to_string();
    assert!(m.contains("public pool"), "{m}");
    let held = w.customer(&w.zhangsan, "私有丙有限公司", json!({})).await;
    let m = w
        .crm
        .merge_customers(
            &w.admin,
            &MergeSpec {
                survivor: public,
                others: vec![held.id],
                take: BTreeMap::new(),
            },
        )
        .await
        .expect_err("a held customer is not merged into a public one")
        .to_string();
    assert!(m.contains("public pool"), "{m}");
    // A draft contract, and one paid in full, of a customer then released.
    let contract = |title: &str| {
        let (w, title, c) = (&w, title.to_string(), held.id.0);
        async move {
            w.crm
                .create_contract(
                    &w.zhangsan,
                    NewContract {
                        title,
                        customer_id: c,
                        amount: Some(Money::cny(10_000)),
                        ..NewContract::default()
                    },
                )
                .await
                .expect("contract")
        }
    };
    let draft = contract("草稿").await;
    let paid = contract("已付").await;
    w.crm
        .submit_contract(&w.zhangsan, paid.id, Vec::new(), None)
        .await
        .expect("executing");
    let (payment, _) = w
        .crm
        .record_payment(
            &w.zhangsan,
            paid.id,
            PaymentInput {
                amount: Money::cny(10_000),
                received_on: w.crm.today(),
                method: None,
                receipt_no: Some("GH-1".into()),
                notes: None,
            },
        )
        .await
        .expect("paid");
    let r = w
        .crm
        .release(&w.zhangsan, &[held.id], "放弃", Some(pool.id))
        .await
        .expect("release");
    assert_eq!(r.done, vec![held.id], "{r:?}");
    let m = w
        .crm
        .submit_contract(&w.zhangsan, draft.id, Vec::new(), None)
        .await
        .expect_err("no submission for a public customer")
        .to_string();
    assert!(m.contains("public pool"), "{m}");
    let m = w
        .crm
        .void_payment(&w.zhangsan, payment.id, "录错")
        .await
        .expect_err("no money owed by a public customer")
        .to_string();
    assert!(m.contains("public pool"), "{m}");
    // Named twice, a customer is claimed once, and nothing reads refused.
    let r = w
        .crm
        .claim(&w.zhangsan, &[public, public])
        .await
        .expect("claim");
    assert_eq!((r.done, r.refused.len()), (vec![public], 0));
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[public, public])
        .await;
    assert_eq!((r.done, r.refused.len()), (vec![public], 0));
}

/// A company's name key folds Latin letters as search does and traditional
/// Chinese characters to simplified ones: the name, refusing duplicates by
/// default, refuses `Muller GmbH` after `Müller GmbH`, `Societe Generale`
/// after `Société Générale` and `華為技術有限公司` after `华为技术有限公司`
/// (and the other way round), on create and on an edit to the name.
pub async fn duplicate_names_fold_accents_and_traditional_chinese(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let pairs = [
        ("Müller GmbH", "Muller GmbH"),
        ("Société Générale", "SOCIETE GENERALE"),
        ("华为技术有限公司", "華為技術有限公司"),
        ("臺灣積體電路製造股份有限公司", "台湾积体电路制造有限公司"),
    ];
    for (first, second) in pairs {
        let held = w.customer(&w.admin, first, json!({})).await;
        let err = w
            .crm
            .create_record(&w.admin, Entity::Customer, fields(json!({"name": second})))
            .await
            .expect_err(second);
        match &err {
            Error::Duplicate { message, .. } => {
                assert!(message.contains(first), "{second}: {message}");
            }
            other => panic!("{second}: expected a duplicate of {first}, got {other:?}"),
        }
        let dupes = w
            .crm
            .find_duplicates(&w.admin, &fields(json!({"name": second})))
            .await
            .expect("find");
        assert_eq!(
            dupes.iter().map(|d| d.customer).collect::<Vec<_>>(),
            vec![Some(held.id)],
            "{second}: {dupes:?}"
        );
    }
    // An edit to a spelling of a name taken is refused alike.
    let other = w.customer(&w.admin, "甲乙丙有限公司", json!({})).await;
    let err = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            other.id,
            other.version,
            fields(json!({"name": "MULLER gmbh"})),
        )
        .await
        .expect_err("a spelling of Müller GmbH");
    assert!(matches!(err, Error::Duplicate { .. }), "{err:?}");
    // Different names stay apart.
    w.customer(&w.admin, "Miller GmbH", json!({})).await;
    w.customer(&w.admin, "华为技术有限公司北京分公司", json!({}))
        .await;
    // A company name the check cannot compare names no company: refused,
    // naming it (it would be saved again and again past the name rule).
    for name in ["---", "（）", "😀", "·-·"] {
        match w
            .crm
            .create_record(&w.admin, Entity::Customer, fields(json!({"name": name})))
            .await
        {
            Err(Error::Validation(v)) => {
                let m = v.to_string();
                assert!(m.contains("names no company") && m.contains(name), "{m}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // An individual is no company: any name is theirs.
    w.customer(&w.admin, "😀", json!({"kind": "individual"}))
        .await;
}

/// A database made before name keys folded accents and traditional Chinese
/// holds customers that are duplicates under the new key but not under the
/// stored one: `rebuild_search_keys` recomputes their name keys and the
/// duplicate key rows, after which the report shows each pair — nothing
/// merged, nothing refused — and a second run changes nothing.
pub async fn rebuilt_name_keys_show_new_duplicates_in_the_report(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // Each first customer as an older build saved it: its name key as the
    // old rule made it (accents and traditional characters kept).
    let mut pairs = Vec::new();
    for (first, old_key, second) in [
        ("Müller GmbH", "müller", "Muller GmbH"),
        ("華為技術有限公司", "華為技術", "华为技术有限公司"),
    ] {
        let a = w.customer(&w.admin, first, json!({})).await;
        let stored = row(&w, a.id).await;
        w.crm
            .store()
            .apply(&ChangeSet {
                ops: vec![Op::Update {
                    table: Table::Customers,
                    id: a.id.0,
                    expected_version: stored.version(),
                    values: vec![("name_key", old_key.into())],
                }],
                ..ChangeSet::default()
            })
            .await
            .expect("old key");
        // The other spelling was taken then: the old key did not meet it.
        let b = w.customer(&w.admin, second, json!({})).await;
        pairs.push((a.id, b.id));
    }
    let name_groups = |report: &crate::dedupe::DuplicateReport| {
        report
            .groups
            .iter()
            .filter(|g| g.field == "name")
            .map(|g| g.members.iter().map(|m| m.id).collect::<BTreeSet<_>>())
            .collect::<BTreeSet<_>>()
    };
    let report = company_report(&w).await;
    assert!(name_groups(&report).is_empty(), "{report:#?}");
    assert!(key_rows(&w, "name").await.is_empty());

    let stats = w
        .crm
        .rebuild_search_keys(&w.admin)
        .await
        .expect("rebuild search keys");
    assert!(stats.updated >= 2, "{stats:?}");
    let want: BTreeSet<BTreeSet<RecordId>> =
        pairs.iter().map(|&(a, b)| BTreeSet::from([a, b])).collect();
    let report = company_report(&w).await;
    assert_eq!(name_groups(&report), want, "{report:#?}");
    let flagged: BTreeSet<(RecordId, bool)> = pairs
        .iter()
        .flat_map(|&(a, b)| [(a, true), (b, true)])
        .collect();
    assert_eq!(key_rows(&w, "name").await, flagged);
    for &(a, b) in &pairs {
        // Nothing merged: both are still there, each a duplicate of the other.
        assert!(row(&w, a).await.get("deleted_at").is_null());
        assert!(row(&w, b).await.get("deleted_at").is_null());
        let of_a = w.crm.duplicates_of(&w.admin, a).await.expect("duplicates");
        assert_eq!(
            of_a.iter().map(|d| d.customer).collect::<Vec<_>>(),
            vec![Some(b)],
            "{of_a:?}"
        );
    }
    // Up to date: a second run rewrites nothing, and the full rebuild of
    // the duplicate keys finds nothing to repair.
    let again = w
        .crm
        .rebuild_search_keys(&w.admin)
        .await
        .expect("rebuild search keys");
    assert_eq!(again.updated, 0, "{again:?}");
    let repaired = w
        .crm
        .rebuild_duplicate_keys(&w.admin)
        .await
        .expect("rebuild duplicate keys");
    assert_eq!(
        (repaired.added, repaired.removed, repaired.flagged),
        (0, 0, 0),
        "{repaired:?}"
    );
    assert_eq!(name_groups(&company_report(&w).await), want);
}

/// A customer released, claimed, assigned or moved within a pool takes its
/// contacts with it: each contact's move is announced
/// (`contact.released`, `contact.claimed` …, naming the customer) with its
/// new version, and the customer's event carries its new version too.
pub async fn pool_moves_announce_the_contacts_and_versions(store: Arc<dyn Store>) {
    use crate::testing::service_suite::announced_at_version;
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "华东公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
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
    let code = row(&w, c.id).await.get("code").to_json();
    let (customer, contact) = (c.id.0, contact.id.0);
    let check = async |kind: &str, from: Option<UserId>, to: Option<UserId>| {
        let (got, _) = announced_at_version(&w, Table::Customers, customer).await;
        assert_eq!(got, format!("customer.{kind}"));
        let (got, payload) = announced_at_version(&w, Table::Contacts, contact).await;
        assert_eq!(got, format!("contact.{kind}"), "{payload}");
        let id = |u: Option<UserId>| u.map_or(json!(null), |u| json!(u.to_string()));
        assert_eq!((&payload["from"], &payload["to"]), (&id(from), &id(to)));
        assert_eq!(payload["with_customer"], code);
    };
    let done = |r: Result<crate::records::BatchReport, Error>| {
        let r = r.expect("batch");
        assert!(r.refused.is_empty() && r.done.len() == 1, "{r:?}");
    };
    done(
        w.crm
            .release(&w.zhangsan, &[c.id], "暂无需求", Some(pool.id))
            .await,
    );
    check("released", Some(w.zhangsan.user_id), None).await;
    done(w.crm.claim(&w.zhaoliu, &[c.id]).await);
    check("claimed", None, Some(w.zhaoliu.user_id)).await;
    done(
        w.crm
            .move_to_pool(&w.lisi, &[c.id], pool.id, Place::Invalid, "空号")
            .await,
    );
    check("invalidated", Some(w.zhaoliu.user_id), None).await;
    done(w.crm.assign(&w.lisi, &[c.id], w.zhangsan.user_id).await);
    check("assigned", None, Some(w.zhangsan.user_id)).await;
}

/// Pool operations that would change nothing write nothing and say so: a
/// deal marked now again at the very time of the one recorded, a second
/// lock, a transfer to the customer's owner.
pub async fn pool_operations_that_change_nothing_say_so(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "北京华信智联科技有限公司", json!({}))
        .await;
    w.crm
        .mark_deal(&w.zhangsan, c.id, None)
        .await
        .expect("deal");
    let before = row(&w, c.id).await;
    assert_eq!(place(&before), Place::Deal);
    let events = event_count(&w).await;
    match w.crm.mark_deal(&w.zhangsan, c.id, None).await {
        Err(Error::InvalidState(m)) => {
            assert!(
                m.contains("already") && m.contains("nothing changed"),
                "{m}"
            )
        }
        other => panic!("a deal marked again: {other:?}"),
    }
    let after = row(&w, c.id).await;
    assert_eq!(after.version(), before.version());
    assert_eq!(after.get("closed_at"), before.get("closed_at"));
    assert_eq!(event_count(&w).await, events);
    // Locked twice: the second says so and writes nothing.
    let r = w.crm.set_locked(&w.lisi, &[c.id], true).await;
    assert_eq!(r.done, vec![c.id], "{r:?}");
    let locked = row(&w, c.id).await;
    let events = event_count(&w).await;
    let r = w.crm.set_locked(&w.lisi, &[c.id], true).await;
    assert!(r.done.is_empty(), "{r:?}");
    assert!(
        r.refused.len() == 1 && r.refused[0].1.contains("locked already"),
        "{r:?}"
    );
    assert_eq!(row(&w, c.id).await.version(), locked.version());
    assert_eq!(event_count(&w).await, events);
    // Transferred to its owner: refused, naming the owner.
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], w.zhangsan.user_id)
        .await
        .expect("transfer");
    assert!(r.done.is_empty(), "{r:?}");
    assert!(
        r.refused.len() == 1 && r.refused[0].1.contains("already owned by"),
        "{r:?}"
    );
    assert_eq!(row(&w, c.id).await.version(), locked.version());
    assert_eq!(event_count(&w).await, events);
}
