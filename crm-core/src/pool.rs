//! Customer pools (客户池 / 公海): where a customer is, how it moves, and the
//! rules that send neglected customers back.
//!
//! Every customer has exactly one [`Place`]: with an owner, as a potential
//! customer (`private`, 潜在客户库) or a closed-deal one (`deal`, 成交客户库),
//! or without an owner in a pool's public area (`public`, 公海) or its
//! invalid/recycle area (`invalid`, 无效客户库). A company has several pools,
//! each with admins, member users and member departments (sub-departments
//! included) and [`PoolLimits`]. Members claim (领取) from the public area
//! within the limits, owners release (退回) with a reason, pool admins assign
//! (分配) and move, and [`RecycleRule`]s — data, several per pool — send
//! customers back when nobody follows them up, no opportunity or no deal
//! comes of them. Every move is a [`PoolMove`] row: who, when, why, which
//! rule.
//!
//! A customer is governed by the pool it came from (`pool_id`), else by the
//! first pool (in position order) whose members include its owner. Deleting
//! a pool (only an empty one) clears `pool_id` of the customers claimed
//! from it, so the second rule governs them from then on; one still naming
//! a deleted pool (a move that slipped past the deletion, an older build)
//! is governed by the second rule too.
//!
//! The sweep ([`Crm::sweep`]) reads the time from the injected clock, never
//! touches locked customers, warns owners `warn_days` before a customer would
//! go (once per due date) and is idempotent. A dry run may look at any date
//! and says per customer which rule fires and when.

use crate::auth::{Action, Actor};
use crate::crm::{Crm, json_ids, subtree};
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::ids::{DepartmentId, RecordId, UserId};
use crate::records::{BatchReport, Fields, Record};
use crate::schema::Table;
use crate::store::{
    AuditEntry, ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, Lifecycle, Op, Paging, Row,
    Scope, Select, Sort,
};
use crate::value::Value;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Where a customer is. Exactly one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// Owned, no deal yet (潜在客户库).
    Private,
    /// Owned, with a closed deal (成交客户库).
    Deal,
    /// In a pool's public area, without an owner (公海).
    Public,
    /// In a pool's invalid/recycle area, without an owner (无效客户库).
    Invalid,
}

impl Place {
    /// Every place.
    pub const ALL: [Place; 4] = [Place::Private, Place::Deal, Place::Public, Place::Invalid];

    /// The API name (stored in `customers.place`).
    pub fn name(self) -> &'static str {
        match self {
            Place::Private => "private",
            Place::Deal => "deal",
            Place::Public => "public",
            Place::Invalid => "invalid",
        }
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Place::Private => "潜在客户库",
            Place::Deal => "成交客户库",
            Place::Public => "公海",
            Place::Invalid => "无效客户库",
        }
    }

    /// Whether a customer here has an owner.
    pub fn is_owned(self) -> bool {
        matches!(self, Place::Private | Place::Deal)
    }

    /// The place of a customer row (`private` when unreadable).
    pub fn of_row(row: &Row) -> Place {
        row.get("place")
            .as_text()
            .and_then(|p| p.parse().ok())
            .unwrap_or(Place::Private)
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Place {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let t = s.trim();
        Place::ALL
            .into_iter()
            .find(|p| p.name() == t || p.name_zh() == t)
            .or(match t {
                "pool" | "公共资源库" => Some(Place::Public),
                "潜在客户" | "owned" => Some(Place::Private),
                "成交客户" | "closed" => Some(Place::Deal),
                "无效" | "无效客户" | "recycle" => Some(Place::Invalid),
                _ => None,
            })
            .ok_or_else(|| {
                format!("unknown place '{t}'; expected private, deal, public or invalid")
            })
    }
}

macro_rules! pool_id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map($name)
            }
        }
    )*};
}

pool_id_type!(
    /// A customer pool.
    PoolId,
    /// A recycling rule of a pool.
    RuleId,
);

/// Tries of one claim or assignment whose holder rows another one changed
/// meanwhile (each failed try means another one committed), before it is
/// refused with [`holders_busy`].
pub(crate) const HOLDER_TRIES: usize = crate::crm::WRITE_TRIES as usize;

/// What a user and the user's department hold when a claim or assignment
/// checks the pools' caps, with the versions of their `pool_holders` rows
/// read before counting (0: no row yet). A claim or assignment bumps the
/// versions some cap of the company depends on, whichever pool it moves
/// from ([`Guarded::by`]), in the transaction that moves the customer
/// ([`Holding::guard`]; the first one inserts the row), so one that counted
/// before another committed fails with a version conflict (or a duplicate
/// row) on `pool_holders` instead of passing a cap with a slot that is
/// gone; it then counts again ([`is_holder_conflict`]). In a company with
/// no caps (and claims from pools without a daily limit) moves bump
/// nothing, so they never wait on one another.
#[derive(Clone, Debug)]
struct Holding {
    /// The user and the version of the user's row.
    user: (Uuid, i64),
    /// The department and the version of its row.
    department: Option<(Uuid, i64)>,
    /// The user's potential customers.
    private: u64,
    /// The user's closed-deal customers.
    deal: u64,
    /// The department's potential customers.
    dept_private: u64,
    /// The department's closed-deal customers.
    dept_deal: u64,
}

/// Which holder rows a move bumps: the user's (a per-user cap, or the daily
/// limit of a claim) and the department's (a per-department cap).
#[derive(Clone, Copy, Debug, Default)]
struct Guarded {
    user: bool,
    department: bool,
}

impl Guarded {
    /// The rows a move into a user's hands from a pool with `limits`, in a
    /// company whose pools are `set`, bumps; `claim` for a claim (the daily
    /// limit counts claims). A cap counts every customer the user or the
    /// department holds, whichever pool it came from, so a move from a pool
    /// without that cap adds to what a capped pool's claim counted: the
    /// row is bumped when any pool of the company has the cap, not only
    /// when the pool moved from has it (else a claim under the cap and one
    /// from an uncapped pool at the same moment would pass it together).
    /// The daily limit counts a pool's own claims only, so only a claim
    /// from a pool with that limit bumps the user's row for it.
    fn by(set: &PoolSet, limits: &PoolLimits, claim: bool) -> Guarded {
        Guarded {
            user: set.caps(|l| l.max_owned_per_user)
                || (claim && limits.max_claims_per_day.is_some()),
            department: set.caps(|l| l.max_owned_per_department),
        }
    }
}

impl Holding {
    /// What the user holds toward a cap.
    fn held(&self, deals_count: bool) -> u64 {
        self.private + if deals_count { self.deal } else { 0 }
    }

    /// What the department holds toward a cap.
    fn department_held(&self, deals_count: bool) -> u64 {
        self.dept_private + if deals_count { self.dept_deal } else { 0 }
    }

    /// The guarded rows: the user's, and the department's if there is one.
    fn rows(&self, guarded: Guarded) -> impl Iterator<Item = (Uuid, i64, &'static str)> + use<> {
        let user = guarded.user.then_some((self.user.0, self.user.1, "user"));
        let department = self
            .department
            .filter(|_| guarded.department)
            .map(|(d, v)| (d, v, "department"));
        user.into_iter().chain(department)
    }

    /// The writes that bump the guarded rows with a move of one customer to
    /// the holder: an update expecting the version read, or the row's
    /// insert when there was none.
    fn guard(&self, crm: &Crm, company: Uuid, guarded: Guarded) -> Vec<Op> {
        let now = crm.now();
        self.rows(guarded)
            .map(|(id, version, kind)| {
                if version == 0 {
                    let mut values = crm.new_row(company, id);
                    values.push(("kind", Value::from(kind)));
                    Op::Insert {
                        table: Table::PoolHolders,
                        values,
                    }
                } else {
                    Op::Update {
                        table: Table::PoolHolders,
                        id,
                        expected_version: version,
                        values: vec![("updated_at", Value::Timestamp(now))],
                    }
                }
            })
            .collect()
    }

    /// Counts a customer moved to the holder, whose guarded rows the move
    /// bumped (an inserted row has version 1).
    fn took(&mut self, place: Place, guarded: Guarded) {
        if place == Place::Deal {
            self.deal += 1;
            self.dept_deal += 1;
        } else {
            self.private += 1;
            self.dept_private += 1;
        }
        if guarded.user {
            self.user.1 += 1;
        }
        if guarded.department
            && let Some((_, v)) = &mut self.department
        {
            *v += 1;
        }
    }
}

/// Whether an error is another claim or assignment having changed (or
/// created) a holder row since it was read.
pub(crate) fn is_holder_conflict(e: &Error) -> bool {
    let holders = Table::PoolHolders.name();
    matches!(e, Error::Conflict { entity, .. } | Error::Duplicate { entity, .. } if entity == holders)
}

/// The refusal of a move whose holder rows kept changing under it.
pub(crate) fn holders_busy(who: &str) -> Error {
    Error::InvalidState(format!(
        "others were claiming for {who} or {who}'s department at the same moment \
         {HOLDER_TRIES} times in a row; nothing was changed, try again"
    ))
}

/// The limits of a pool. `None` means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolLimits {
    /// Customers one claim may take at most (每次领取上限).
    pub max_per_claim: Option<u32>,
    /// Claims from this pool per user per local day at most (每日领取上限).
    pub max_claims_per_day: Option<u32>,
    /// Customers a user may own at most when claiming or being assigned
    /// from this pool (保有量上限).
    pub max_owned_per_user: Option<u32>,
    /// Customers the users of one department may own together at most.
    pub max_owned_per_department: Option<u32>,
    /// Whether closed-deal customers count toward those caps.
    pub deals_count_toward_cap: bool,
    /// Days after giving a customer up (release or recycling) before the
    /// former owner may claim it again (0: at once). The cooldown follows
    /// the customer: moved since to another pool, the stricter of this
    /// pool's cooldown and that of the pool it is claimed from holds.
    pub reclaim_cooldown_days: u32,
    /// Days before recycling that the owner is warned (0: no warning).
    pub warn_days: u32,
}

/// What creating or changing a pool takes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// The name, unique in the company (e.g. 华北公海).
    pub name: String,
    /// Users who manage the pool: assign, move, rules, sweep (公海管理员).
    pub admins: Vec<UserId>,
    /// Users who may claim from it.
    pub member_users: Vec<UserId>,
    /// Departments whose users (sub-departments included) may claim from it.
    pub member_departments: Vec<DepartmentId>,
    /// The limits.
    pub limits: PoolLimits,
}

/// The changes from `before` to `after`, one per key that differs, an
/// object's keys within it named `key.inner` (`limits.max_per_claim`).
pub(crate) fn json_changes(prefix: &str, before: &Json, after: &Json) -> Vec<FieldChange> {
    let mut out = Vec::new();
    match (before, after) {
        (Json::Object(b), Json::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (x, y) = (
                    b.get(k).unwrap_or(&Json::Null),
                    a.get(k).unwrap_or(&Json::Null),
                );
                if x != y {
                    let field = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    if x.is_object() && y.is_object() {
                        out.extend(json_changes(&field, x, y));
                    } else {
                        out.push(FieldChange {
                            field,
                            before: x.clone(),
                            after: y.clone(),
                        });
                    }
                }
            }
        }
        (b, a) if b != a => out.push(FieldChange {
            field: prefix.to_string(),
            before: b.clone(),
            after: a.clone(),
        }),
        _ => {}
    }
    out
}

/// A pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// The id.
    pub id: PoolId,
    /// The name.
    pub name: String,
    /// Its admins.
    pub admins: Vec<UserId>,
    /// Member users.
    pub member_users: Vec<UserId>,
    /// Member departments (with their sub-departments).
    pub member_departments: Vec<DepartmentId>,
    /// The limits.
    pub limits: PoolLimits,
    /// Order among the company's pools (governance: first match wins).
    pub position: i64,
    /// The record version.
    pub version: i64,
}

/// What a recycling rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// No follow-up for N days, counted from the later of the last
    /// follow-up and the claim (N天未跟进).
    NoFollowUp,
    /// No opportunity within N days of the claim (N天未新建商机).
    NoOpportunity,
    /// No deal within N days of the claim (N天未成交).
    NoDeal,
}

impl RuleKind {
    /// Every kind.
    pub const ALL: [RuleKind; 3] = [
        RuleKind::NoFollowUp,
        RuleKind::NoOpportunity,
        RuleKind::NoDeal,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::NoFollowUp => "no_follow_up",
            RuleKind::NoOpportunity => "no_opportunity",
            RuleKind::NoDeal => "no_deal",
        }
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            RuleKind::NoFollowUp => "未跟进",
            RuleKind::NoOpportunity => "未新建商机",
            RuleKind::NoDeal => "未成交",
        }
    }
}

impl FromStr for RuleKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let t = s.trim().replace('-', "_");
        RuleKind::ALL
            .into_iter()
            .find(|k| k.name() == t || k.name_zh() == t)
            .ok_or_else(|| {
                format!("unknown rule kind '{s}'; expected no_follow_up, no_opportunity or no_deal")
            })
    }
}

/// What defining a recycling rule takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// What the rule looks at.
    pub kind: RuleKind,
    /// N, in days, for customers whose level has no entry in `level_days`
    /// (0: the rule applies only to the levels listed).
    pub days: u32,
    /// N per customer level (客户级别), e.g. A → 60, C → 15.
    pub level_days: BTreeMap<String, u32>,
    /// Closed-deal customers are never recycled by this rule.
    pub exempt_deals: bool,
    /// Customers with an open opportunity are never recycled by this rule.
    pub exempt_open_opportunities: bool,
    /// Whether the rule is in force.
    pub enabled: bool,
}

impl RuleSpec {
    /// An enabled rule of `kind` with `days` for every level and no exemption.
    pub fn new(kind: RuleKind, days: u32) -> RuleSpec {
        RuleSpec {
            kind,
            days,
            level_days: BTreeMap::new(),
            exempt_deals: false,
            exempt_open_opportunities: false,
            enabled: true,
        }
    }
}

/// A recycling rule of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecycleRule {
    /// The id.
    pub id: RuleId,
    /// The pool.
    pub pool_id: PoolId,
    /// The rule.
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Order within the pool (ties of the due time go to the earlier rule).
    pub position: i64,
    /// The record version.
    pub version: i64,
}

impl RecycleRule {
    /// N for a customer level (0: the rule does not apply).
    pub fn days_for(&self, level: Option<&str>) -> u32 {
        level
            .and_then(|l| self.spec.level_days.get(l))
            .copied()
            .unwrap_or(self.spec.days)
    }

    /// The rule in words, e.g. `no follow-up for 30 days (A: 60)`.
    pub fn describe(&self) -> String {
        let what = match self.spec.kind {
            RuleKind::NoFollowUp => "no follow-up for",
            RuleKind::NoOpportunity => "no opportunity within",
            RuleKind::NoDeal => "no deal within",
        };
        let mut s = format!("{what} {} days", self.spec.days);
        if !self.spec.level_days.is_empty() {
            let levels: Vec<String> = self
                .spec
                .level_days
                .iter()
                .map(|(l, d)| format!("{l}: {d}"))
                .collect();
            s.push_str(&format!(" ({})", levels.join(", ")));
        }
        if self.spec.exempt_deals {
            s.push_str(", closed deals exempt");
        }
        if self.spec.exempt_open_opportunities {
            s.push_str(", open opportunities exempt");
        }
        s
    }

    /// The smallest N the rule uses for any level (0 when none).
    fn min_days(&self) -> u32 {
        self.spec
            .level_days
            .values()
            .copied()
            .chain(std::iter::once(self.spec.days))
            .filter(|d| *d > 0)
            .min()
            .unwrap_or(0)
    }
}

/// One move of a customer between places (pool history, 流转记录).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolMove {
    /// The move's id.
    pub id: Uuid,
    /// The customer.
    pub customer_id: RecordId,
    /// What happened: `create`, `import`, `claim`, `release`, `assign`,
    /// `recycle`, `invalidate`, `move`, `transfer`, `deal`.
    pub action: String,
    /// Where it was (`None` when it was just created).
    pub from: Option<Place>,
    /// Where it went.
    pub to: Place,
    /// The pool concerned.
    pub pool_id: Option<PoolId>,
    /// The owner before.
    pub from_owner: Option<UserId>,
    /// The owner after.
    pub to_owner: Option<UserId>,
    /// Who did it (`None`: the recycling sweep).
    pub actor_id: Option<UserId>,
    /// The rule that fired, for recycling.
    pub rule_id: Option<RuleId>,
    /// Why (the reason given, or the rule's explanation; see
    /// [`Crm::pool_history`] for when the latter is left out).
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// How to run a sweep.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepOptions {
    /// Only report what would happen; change nothing.
    pub dry_run: bool,
    /// For a dry run: the moment to evaluate (default: the clock's now). A
    /// real sweep always runs at the clock's time.
    pub at: Option<DateTime<Utc>>,
    /// Only this pool (default: every pool the actor administers).
    pub pool: Option<PoolId>,
}

/// One customer a sweep recycled, warned about or would recycle.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepItem {
    /// The customer.
    pub customer: RecordId,
    /// Its code.
    pub code: Option<String>,
    /// Its name, masked when the actor's field rule for the name masks it,
    /// empty when the rule hides it.
    pub name: String,
    /// Its owner.
    pub owner_id: Option<UserId>,
    /// The governing pool.
    pub pool_id: PoolId,
    /// The pool's name.
    pub pool: String,
    /// The rule that fires.
    pub rule_id: RuleId,
    /// The rule in words.
    pub rule: String,
    /// When the rule fires; `None` when that date would reveal a date or
    /// the level a field rule hides or masks from the actor.
    pub due_at: Option<DateTime<Utc>>,
    /// Why, e.g. `last follow-up 2026-11-01, 30 days for level B`; a value
    /// a field rule hides or masks from the actor is not named.
    pub why: String,
}

/// What a sweep did (or, dry, would do).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepReport {
    /// The moment evaluated.
    pub at: DateTime<Utc>,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Customers recycled (dry run: due at `at`).
    pub recycled: Vec<SweepItem>,
    /// Owners warned now (a real sweep; each due date is warned once).
    pub warned: Vec<SweepItem>,
    /// Dry run: customers due within the pools' warning periods after `at`.
    pub upcoming: Vec<SweepItem>,
    /// Customers that could not be moved (e.g. changed meanwhile), with why.
    pub refused: Vec<(RecordId, String)>,
    /// How many customers of each list the report leaves out because the
    /// actor may not read them (neither their data scope nor a share covers
    /// them): the sweep recycles and warns those as any other, and tells
    /// the actor nothing of them but these counts.
    pub hidden: SweepHidden,
}

/// The customers a [`SweepReport`] counts without listing them: those the
/// actor may not read, per list of the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepHidden {
    /// Recycled (dry run: due at the moment evaluated).
    pub recycled: u64,
    /// Whose owners were warned now (a real sweep).
    pub warned: u64,
    /// Due within the warning period (a dry run).
    pub upcoming: u64,
    /// That could not be moved.
    pub refused: u64,
}

impl SweepHidden {
    /// How many customers are left out in all.
    pub fn total(&self) -> u64 {
        self.recycled + self.warned + self.upcoming + self.refused
    }
}

/// Which list of a [`SweepReport`] a customer goes to.
enum Listed {
    Recycled,
    Warned,
    Upcoming,
    /// Could not be moved, with why.
    Refused(String),
}

impl SweepReport {
    /// Lists `item` in `list` when `shown` (the actor may read the
    /// customer), else only counts it.
    fn list(&mut self, shown: bool, list: Listed, item: SweepItem) {
        let h = &mut self.hidden;
        match (list, shown) {
            (Listed::Recycled, true) => self.recycled.push(item),
            (Listed::Warned, true) => self.warned.push(item),
            (Listed::Upcoming, true) => self.upcoming.push(item),
            (Listed::Refused(why), true) => self.refused.push((item.customer, why)),
            (Listed::Recycled, false) => h.recycled += 1,
            (Listed::Warned, false) => h.warned += 1,
            (Listed::Upcoming, false) => h.upcoming += 1,
            (Listed::Refused(_), false) => h.refused += 1,
        }
    }
}

/// How one rule stands for one customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// Due at or before the moment evaluated: the customer goes.
    Fires,
    /// Due later.
    Later,
    /// The customer is exempt (closed deal, open opportunity, level).
    Exempt,
    /// The rule's condition is met for good (a deal or opportunity since the claim).
    Satisfied,
}

/// One rule's verdict for one customer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleOutcome {
    /// The rule.
    pub rule_id: RuleId,
    /// The rule in words.
    pub rule: String,
    /// The verdict.
    pub status: RuleStatus,
    /// When it fires, if ever.
    pub due_at: Option<DateTime<Utc>>,
    /// Why.
    pub why: String,
}

/// Why a customer would (not) be recycled at a moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecycleExplanation {
    /// The customer.
    pub customer: RecordId,
    /// The moment evaluated.
    pub at: DateTime<Utc>,
    /// Where it is (`None` when a field rule hides or masks the place from
    /// the actor).
    pub place: Option<Place>,
    /// Whether it is locked (never recycled); `None` when a field rule
    /// hides or masks the lock from the actor.
    pub locked: Option<bool>,
    /// The governing pool, if any (`None` as well when a field rule hides
    /// or masks the customer's pool from the actor).
    pub pool: Option<(PoolId, String)>,
    /// Every rule of that pool.
    pub outcomes: Vec<RuleOutcome>,
    /// The rule that fires first (at or after `at`), if any.
    pub next: Option<RuleOutcome>,
    /// The answer in one sentence.
    pub summary: String,
}

/// What the sales module reports about a customer (商机/成交). Fields left
/// `None` are not changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesActivity {
    /// An opportunity was created at this time.
    pub opportunity_at: Option<DateTime<Utc>>,
    /// The customer now has this many open opportunities.
    pub open_opportunities: Option<i64>,
    /// A deal was closed at this time (成交): an owned customer moves to the
    /// closed-deal customers.
    pub deal_closed_at: Option<DateTime<Utc>>,
    /// The customer's last opportunity, worked out again (an opportunity
    /// deleted or restored): its `last_opportunity_at` is set to exactly
    /// this, `Some(None)` when no opportunity is left, earlier or not.
    #[serde(default)]
    pub last_opportunity_is: Option<Option<DateTime<Utc>>>,
}

/// A pool with its rules and resolved membership, for governance.
struct Governed {
    pool: Pool,
    rules: Vec<RecycleRule>,
    users: HashSet<Uuid>,
    departments: HashSet<Uuid>,
}

/// The pools of a company in order.
struct PoolSet {
    pools: Vec<Governed>,
}

impl PoolSet {
    /// Whether some pool of the company has the cap `cap` reads.
    fn caps(&self, cap: fn(&PoolLimits) -> Option<u32>) -> bool {
        self.pools.iter().any(|g| cap(&g.pool.limits).is_some())
    }

    fn index(&self, id: Uuid) -> Option<usize> {
        self.pools.iter().position(|g| g.pool.id.0 == id)
    }

    /// The pool governing a customer: its pool, else the first whose
    /// members include its owner or the owner's department.
    fn governing(&self, row: &Row) -> Option<usize> {
        // A pool since deleted governs nothing: membership decides then.
        if let Some(i) = row.get("pool_id").as_id().and_then(|p| self.index(p)) {
            return Some(i);
        }
        let owner = row.get("owner_id").as_id();
        let dept = row.get("department_id").as_id();
        self.pools.iter().position(|g| {
            owner.is_some_and(|o| g.users.contains(&o))
                || dept.is_some_and(|d| g.departments.contains(&d))
        })
    }

    fn is_member(&self, i: usize, actor: &Actor) -> bool {
        let g = &self.pools[i];
        actor.is_admin()
            || g.pool.admins.contains(&actor.user_id)
            || g.users.contains(&actor.user_id.0)
            || actor
                .department_id
                .is_some_and(|d| g.departments.contains(&d.0))
    }

    fn is_admin(&self, i: usize, actor: &Actor) -> bool {
        actor.is_admin() || self.pools[i].pool.admins.contains(&actor.user_id)
    }

    /// Whether a customer shows to the actor through its pool: in the
    /// public area of a pool the actor belongs to, or in either area of a
    /// pool the actor administers.
    fn shows(&self, row: &Row, actor: &Actor) -> bool {
        let place = Place::of_row(row);
        !place.is_owned()
            && row
                .get("pool_id")
                .as_id()
                .and_then(|p| self.index(p))
                .is_some_and(|i| {
                    (place == Place::Public && self.is_member(i, actor)) || self.is_admin(i, actor)
                })
    }
}

/// How a customer moves: the parts of a move that differ per operation.
struct Move<'a> {
    action: &'static str,
    to: Place,
    /// The new owner and department; `None` for a pool.
    owner: Option<(Uuid, Option<Uuid>)>,
    /// The pool the customer goes into (its public or invalid area).
    pool: Option<&'a Pool>,
    reason: Option<String>,
    rule: Option<&'a RecycleRule>,
    actor: Option<&'a Actor>,
}

/// The pool columns of a new customer: held by its owner from now on.
pub(crate) fn new_customer_values(now: DateTime<Utc>) -> [(&'static str, Value); 4] {
    [
        ("place", Place::Private.name().into()),
        ("owned_since", Value::Timestamp(now)),
        ("locked", false.into()),
        ("open_opportunities", Value::Int(0)),
    ]
}

fn ids_json<T: fmt::Display>(ids: &[T]) -> Value {
    Value::Json(Json::Array(
        ids.iter().map(|i| Json::String(i.to_string())).collect(),
    ))
}

fn pool_from_row(r: &Row) -> Pool {
    Pool {
        id: PoolId(r.id()),
        name: r.get("name").as_text().unwrap_or_default().to_string(),
        admins: json_ids(r.get("admin_ids"))
            .into_iter()
            .map(UserId)
            .collect(),
        member_users: json_ids(r.get("member_user_ids"))
            .into_iter()
            .map(UserId)
            .collect(),
        member_departments: json_ids(r.get("member_department_ids"))
            .into_iter()
            .map(DepartmentId)
            .collect(),
        limits: r
            .get("limits")
            .as_json()
            .and_then(|j| serde_json::from_value(j.clone()).ok())
            .unwrap_or_default(),
        position: r.get("position").as_int().unwrap_or(0),
        version: r.version(),
    }
}

fn rule_from_row(r: &Row) -> Result<RecycleRule> {
    let kind: RuleKind = r
        .get("kind")
        .as_text()
        .unwrap_or_default()
        .parse()
        .map_err(Error::InvalidState)?;
    Ok(RecycleRule {
        id: RuleId(r.id()),
        pool_id: PoolId(r.get("pool_id").as_id().unwrap_or_default()),
        spec: RuleSpec {
            kind,
            days: u32::try_from(r.get("days").as_int().unwrap_or(0)).unwrap_or(0),
            level_days: r
                .get("level_days")
                .as_json()
                .and_then(|j| serde_json::from_value(j.clone()).ok())
                .unwrap_or_default(),
            exempt_deals: r.get("exempt_deals").as_bool().unwrap_or(false),
            exempt_open_opportunities: r
                .get("exempt_open_opportunities")
                .as_bool()
                .unwrap_or(false),
            enabled: r.get("enabled").as_bool().unwrap_or(true),
        },
        position: r.get("position").as_int().unwrap_or(0),
        version: r.version(),
    })
}

pub(crate) fn move_from_row(r: &Row) -> PoolMove {
    PoolMove {
        id: r.id(),
        customer_id: RecordId(r.get("customer_id").as_id().unwrap_or_default()),
        action: r.get("action").as_text().unwrap_or_default().to_string(),
        from: r.get("from_place").as_text().and_then(|p| p.parse().ok()),
        to: r
            .get("to_place")
            .as_text()
            .and_then(|p| p.parse().ok())
            .unwrap_or(Place::Private),
        pool_id: r.get("pool_id").as_id().map(PoolId),
        from_owner: r.get("from_owner").as_id().map(UserId),
        to_owner: r.get("to_owner").as_id().map(UserId),
        actor_id: r.get("actor_id").as_id().map(UserId),
        rule_id: r.get("rule_id").as_id().map(RuleId),
        reason: r.get("reason").as_text().map(str::to_string),
        at: r.get("created_at").as_timestamp().unwrap_or_default(),
    }
}

/// Whether the reason of a recycling by `rule` may be shown to who sees
/// `sight`: when it names nothing they may not read (the level, if the rule
/// counts days by level, and the dates the rule counts from). A rule
/// deleted since is not shown: what it counted from is unknown.
fn reason_shown(set: &PoolSet, sight: Sight, rule: RuleId) -> bool {
    let Some(r) = set
        .pools
        .iter()
        .flat_map(|g| g.rules.iter())
        .find(|r| r.id == rule)
    else {
        return false;
    };
    let level = sight.level || r.spec.level_days.is_empty();
    let dates = match r.spec.kind {
        RuleKind::NoFollowUp => sight.follow_up && sight.since,
        RuleKind::NoOpportunity | RuleKind::NoDeal => sight.since,
    };
    level && dates
}

fn col(c: &'static str) -> Col {
    Col::Column(c)
}

fn eq(c: &'static str, v: impl Into<Value>) -> Filter {
    Filter::Cmp(col(c), CmpOp::Eq, v.into())
}

/// `n` days, at most a hundred years: a larger count (a limit or a
/// horizon typed as 4 000 000 000 days) would take a date past the
/// calendar's end and panic.
fn days(n: u32) -> Duration {
    Duration::days(i64::from(n.min(MAX_DAYS)))
}

/// The most days a pool limit or a view's horizon spans: a hundred years.
pub(crate) const MAX_DAYS: u32 = 36_500;

/// The guard key of a pool: taken by its deletion and by every move or
/// import into it.
fn pool_guard_key(company: Uuid, pool: Uuid) -> String {
    format!("{company}:{POOL_GUARD}:{pool}")
}

/// The key under which claims and assignments, which count against the
/// limits of the company's pools, and changes to those pools take turns.
fn pool_limits_key(company: Uuid) -> String {
    format!("{company}:{POOL_GUARD}:limits")
}

/// The middle part of a pool's guard key.
const POOL_GUARD: &str = "pools";

fn text(row: &Row, c: &str) -> String {
    row.get(c).as_text().unwrap_or_default().to_string()
}

/// A rule's verdict for a customer row, independent of the moment.
enum Verdict {
    Exempt(String),
    Satisfied(String),
    /// Due at this time; whether the actor may see the date (it reveals the
    /// dates and the level it is computed from); why.
    Due(DateTime<Utc>, bool, String),
}

/// What an exemption is called when the actor may not read the field that
/// grants it.
const EXEMPT_UNSEEN: &str = "an exemption of the rule applies";

/// Which of a customer's fields that recycling reads an actor may read
/// (neither hidden nor masked by a field rule): explanations name the
/// others' values nowhere, nor the due dates computed from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sight {
    level: bool,
    place: bool,
    pool: bool,
    locked: bool,
    open: bool,
    follow_up: bool,
    since: bool,
    opportunity: bool,
    deal: bool,
}

impl Sight {
    /// Everything: the engine's own record (the history's reasons, events).
    const ALL: Sight = Sight {
        level: true,
        place: true,
        pool: true,
        locked: true,
        open: true,
        follow_up: true,
        since: true,
        opportunity: true,
        deal: true,
    };

    /// What `actor` may read.
    fn of(actor: &Actor) -> Sight {
        let reads = |f: &str| crate::records::filterable(actor, Entity::Customer, f);
        Sight {
            level: reads("level"),
            place: reads("place"),
            pool: reads("pool_id"),
            locked: reads("locked"),
            open: reads("open_opportunities"),
            follow_up: reads("last_follow_up_at"),
            since: reads("owned_since"),
            opportunity: reads("last_opportunity_at"),
            deal: reads("closed_at"),
        }
    }
}

impl Crm {
    fn local_date(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.config.utc_offset)
            .format("%Y-%m-%d")
            .to_string()
    }

    /// A moment in the company's time zone, to the minute (rounded up, so
    /// that it is never before the moment).
    fn local_minute(&self, t: DateTime<Utc>) -> String {
        let up = t
            .duration_round_up(chrono::TimeDelta::minutes(1))
            .unwrap_or(t);
        up.with_timezone(&self.config.utc_offset)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// Evaluates one rule for one owned customer, in words that name only
    /// what `sight` may read: a hidden level, count or date is described
    /// without its value, and a due date computed from one is not shown.
    fn verdict(&self, rule: &RecycleRule, row: &Row, sight: Sight) -> Verdict {
        let level = row.get("level").as_text();
        if rule.spec.exempt_deals && Place::of_row(row) == Place::Deal {
            return Verdict::Exempt(if sight.place {
                "closed-deal customers are exempt".into()
            } else {
                EXEMPT_UNSEEN.into()
            });
        }
        let open = row.get("open_opportunities").as_int().unwrap_or(0);
        if rule.spec.exempt_open_opportunities && open > 0 {
            return Verdict::Exempt(if sight.open {
                format!("it has {open} open opportunities")
            } else {
                EXEMPT_UNSEEN.into()
            });
        }
        let n = rule.days_for(level);
        if n == 0 {
            return Verdict::Exempt(if sight.level {
                format!(
                    "the rule does not apply to level {}",
                    level.unwrap_or("(none)")
                )
            } else {
                "the rule does not apply to its level".into()
            });
        }
        // The days tell the level when the rule sets days per level.
        let level_shown = sight.level || rule.spec.level_days.is_empty();
        let level_note = match level.filter(|l| rule.spec.level_days.contains_key(*l)) {
            _ if !level_shown => "the days the rule sets for its level".to_string(),
            Some(l) => format!("{n} days for level {l}"),
            None => format!("{n} days"),
        };
        let on = |shown: bool, t: DateTime<Utc>| {
            if shown {
                format!(" on {}", self.local_date(t))
            } else {
                String::new()
            }
        };
        let since = row
            .get("owned_since")
            .as_timestamp()
            .or_else(|| row.get("created_at").as_timestamp())
            .unwrap_or_default();
        match rule.spec.kind {
            RuleKind::NoFollowUp => {
                let last = row.get("last_follow_up_at").as_timestamp();
                let (base, what) = match last {
                    Some(l) if l > since => (l, "last follow-up"),
                    _ => (since, "held since"),
                };
                // Which of the two dates counts tells about the other.
                let dates_shown = sight.follow_up && sight.since;
                let why = if dates_shown {
                    format!("{what} {}, {level_note}", self.local_date(base))
                } else {
                    format!(
                        "counted from its last follow-up or from when it was taken, {level_note}"
                    )
                };
                Verdict::Due(base + days(n), dates_shown && level_shown, why)
            }
            RuleKind::NoOpportunity => match row.get("last_opportunity_at").as_timestamp() {
                Some(o) if o >= since => Verdict::Satisfied(format!(
                    "opportunity{} since it was taken{}",
                    on(sight.opportunity, o),
                    on(sight.since, since)
                )),
                _ => Verdict::Due(
                    since + days(n),
                    sight.since && level_shown,
                    format!(
                        "no opportunity since it was taken{}, {level_note}",
                        on(sight.since, since)
                    ),
                ),
            },
            RuleKind::NoDeal => match row.get("closed_at").as_timestamp() {
                Some(c) if c >= since => Verdict::Satisfied(format!(
                    "deal closed{} since it was taken{}",
                    on(sight.deal, c),
                    on(sight.since, since)
                )),
                _ => Verdict::Due(
                    since + days(n),
                    sight.since && level_shown,
                    format!(
                        "no deal since it was taken{}, {level_note}",
                        on(sight.since, since)
                    ),
                ),
            },
        }
    }

    /// The rule that fires first for a customer, with its due time and the
    /// reason in the engine's own words (every value named).
    fn first_due<'a>(
        &self,
        rules: &'a [RecycleRule],
        row: &Row,
    ) -> Option<(&'a RecycleRule, DateTime<Utc>, String)> {
        let mut best: Option<(&RecycleRule, DateTime<Utc>, String)> = None;
        for r in rules.iter().filter(|r| r.spec.enabled) {
            if let Verdict::Due(at, _, why) = self.verdict(r, row, Sight::ALL)
                && best.as_ref().is_none_or(|(_, b, _)| at < *b)
            {
                best = Some((r, at, why));
            }
        }
        best
    }

    async fn pool_set(&self, company: Uuid) -> Result<PoolSet> {
        let now = self.now();
        let mut sel = Select::all(Table::Pools, company, now);
        sel.sort = vec![
            Sort {
                col: col("position"),
                desc: false,
            },
            Sort {
                col: col("created_at"),
                desc: false,
            },
        ];
        let pools: Vec<Pool> = self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(pool_from_row)
            .collect();
        let mut rsel = Select::all(Table::PoolRules, company, now);
        rsel.sort = vec![
            Sort {
                col: col("position"),
                desc: false,
            },
            Sort {
                col: col("created_at"),
                desc: false,
            },
        ];
        let rules = self
            .store
            .select(&rsel)
            .await?
            .rows
            .iter()
            .map(rule_from_row)
            .collect::<Result<Vec<_>>>()?;
        let departments = self
            .store
            .select(&Select::all(Table::Departments, company, now))
            .await?
            .rows;
        let edges: Vec<(Uuid, Option<Uuid>)> = departments
            .iter()
            .map(|r| (r.id(), r.get("parent_id").as_id()))
            .collect();
        Ok(PoolSet {
            pools: pools
                .into_iter()
                .map(|pool| {
                    let mut depts = HashSet::new();
                    for d in &pool.member_departments {
                        depts.extend(subtree(d.0, edges.iter().copied()));
                    }
                    Governed {
                        rules: rules
                            .iter()
                            .filter(|r| r.pool_id == pool.id)
                            .cloned()
                            .collect(),
                        users: pool.member_users.iter().map(|u| u.0).collect(),
                        departments: depts,
                        pool,
                    }
                })
                .collect(),
        })
    }

    /// How many rows a select finds (reading none of them).
    pub(crate) async fn count(&self, mut sel: Select) -> Result<u64> {
        sel.with_total = true;
        sel.paging = Paging::Offset {
            offset: 0,
            limit: 0,
        };
        Ok(self.store.select(&sel).await?.total.unwrap_or(0))
    }

    /// Customers a user (or, with `department`, a department) holds:
    /// (potential, closed-deal).
    async fn holdings(&self, company: Uuid, column: &'static str, id: Uuid) -> Result<(u64, u64)> {
        let mut out = [0u64; 2];
        for (i, place) in [Place::Private, Place::Deal].into_iter().enumerate() {
            let mut sel = Select::all(Table::Customers, company, self.now());
            sel.filter = Filter::And(vec![eq(column, Value::Id(id)), eq("place", place.name())]);
            out[i] = self.count(sel).await?;
        }
        Ok((out[0], out[1]))
    }

    /// The version of a holder's row (`pool_holders`); 0 when it has none
    /// yet (the first guarded move inserts it).
    async fn holder_version(&self, id: Uuid) -> Result<i64> {
        Ok(self
            .store
            .get(Table::PoolHolders, id)
            .await?
            .map_or(0, |r| r.version()))
    }

    /// What a user and the user's department hold, read after their holder
    /// rows' versions (see [`Holding`]).
    /// Only what some pool of `set` caps is counted (a company without
    /// department caps never counts a department's customers).
    async fn holding(
        &self,
        set: &PoolSet,
        company: Uuid,
        user: Uuid,
        department: Option<Uuid>,
    ) -> Result<Holding> {
        let user_version = self.holder_version(user).await?;
        let department = match department {
            Some(d) => Some((d, self.holder_version(d).await?)),
            None => None,
        };
        let (private, deal) = if set.caps(|l| l.max_owned_per_user) {
            self.holdings(company, "owner_id", user).await?
        } else {
            (0, 0)
        };
        let (dept_private, dept_deal) = match department {
            Some((d, _)) if set.caps(|l| l.max_owned_per_department) => {
                self.holdings(company, "department_id", d).await?
            }
            _ => (0, 0),
        };
        Ok(Holding {
            user: (user, user_version),
            department,
            private,
            deal,
            dept_private,
            dept_deal,
        })
    }

    /// Claims of a user from a pool since the start of the local day.
    async fn claims_today(&self, company: Uuid, pool: Uuid, user: Uuid) -> Result<u64> {
        let now = self.now();
        let local = now.with_timezone(&self.config.utc_offset);
        let midnight = local
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .and_then(|d| d.and_local_timezone(self.config.utc_offset).single())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(now);
        let mut sel = Select::all(Table::PoolMoves, company, now);
        sel.filter = Filter::And(vec![
            eq("to_owner", Value::Id(user)),
            Filter::Cmp(col("created_at"), CmpOp::Ge, Value::Timestamp(midnight)),
            eq("action", "claim"),
            eq("pool_id", Value::Id(pool)),
        ]);
        self.count(sel).await
    }

    /// Reads a customer of the actor's company that is neither deleted nor
    /// archived (not checking permissions).
    async fn customer_row(&self, actor: &Actor, id: RecordId) -> Result<Row> {
        let row = self
            .store
            .get(Table::Customers, id.0)
            .await?
            .filter(|r| {
                r.get("company_id").as_id() == Some(actor.company_id.0)
                    && r.get("deleted_at").is_null()
            })
            .ok_or_else(|| Error::not_found(Entity::Customer, id))?;
        // Archived: named as such to who may read it, not found to others.
        if !row.get("archived_at").is_null() {
            if self
                .can_on_row(actor, Entity::Customer, Action::Read, &row)
                .await?
            {
                return Err(Self::archived_refusal(Entity::Customer, &row));
            }
            return Err(Error::not_found(Entity::Customer, id));
        }
        Ok(row)
    }

    fn label(row: &Row) -> String {
        row.get("code")
            .as_text()
            .map(str::to_string)
            .unwrap_or_else(|| row.id().to_string())
    }

    /// The change set of one move: the customer, its contacts, the history
    /// row, the audit entry and the event.
    async fn move_changes(&self, company: Uuid, row: &Row, mv: &Move<'_>) -> Result<ChangeSet> {
        let now = self.now();
        let from = Place::of_row(row);
        let before_owner = row.get("owner_id").as_id();
        let (owner, dept) = match mv.owner {
            Some((o, d)) => (Value::Id(o), Value::from(d)),
            None => (Value::Null, Value::Null),
        };
        let mut values = vec![
            ("place", Value::from(mv.to.name())),
            ("owner_id", owner.clone()),
            ("department_id", dept.clone()),
            ("recycle_warned_due", Value::Null),
            ("updated_at", Value::Timestamp(now)),
        ];
        if let Some(p) = mv.pool {
            values.push(("pool_id", Value::Id(p.id.0)));
        }
        // A lock keeps a customer with the owner it was granted for: it
        // ends when the customer leaves that owner (released, recycled,
        // moved into a pool, assigned or claimed by another).
        let lock_ends =
            row.get("locked").as_bool() == Some(true) && before_owner != mv.owner.map(|(o, _)| o);
        if lock_ends {
            values.push(("locked", Value::Bool(false)));
        }
        if mv.to.is_owned() {
            if before_owner != mv.owner.map(|(o, _)| o) || !from.is_owned() {
                values.push(("owned_since", Value::Timestamp(now)));
            }
        } else {
            values.push(("owned_since", Value::Null));
            if let Some(prev) = before_owner {
                values.push(("previous_owner_id", Value::Id(prev)));
                values.push(("released_at", Value::Timestamp(now)));
            }
        }
        let mut cs = ChangeSet::default();
        if let Some(p) = mv.pool {
            cs.guards.push(self.pool_alive_guard(company, p));
        }
        cs.ops.push(Op::Update {
            table: Table::Customers,
            id: row.id(),
            expected_version: row.version(),
            values,
        });
        let mut shared: Vec<Value> = vec![Value::Id(row.id())];
        if before_owner != mv.owner.map(|(o, _)| o) {
            // Contacts follow their customer, into a pool too, those in the
            // recycle bin or archived as well (they come back with it).
            let mut sel = Select::all(Table::Contacts, company, now);
            sel.lifecycle = Lifecycle::Any;
            sel.filter = eq("customer_id", Value::Id(row.id()));
            let contacts = self.store.select(&sel).await?.rows;
            // A contact added meanwhile would keep the old owner.
            let handled: Vec<Uuid> = contacts.iter().map(Row::id).collect();
            shared.extend(handled.iter().map(|c| Value::Id(*c)));
            cs.guards
                .push(self.no_other_contacts_guard(company, &[row], &handled));
            let to_owner = mv.owner.map(|(o, _)| o);
            let to_username = self.username_of(to_owner).await;
            let before_username = self.username_of(before_owner).await;
            for c in contacts {
                cs.ops.push(Op::Update {
                    table: Table::Contacts,
                    id: c.id(),
                    expected_version: c.version(),
                    values: vec![
                        ("owner_id", owner.clone()),
                        ("department_id", dept.clone()),
                        ("updated_at", Value::Timestamp(now)),
                    ],
                });
                // Each contact's move in its own history, and announced
                // (as a transfer announces `contact.transferred`).
                let mut changes = Vec::new();
                if c.get("owner_id").as_id() != to_owner {
                    changes.push(FieldChange {
                        field: "owner_id".into(),
                        before: c.get("owner_id").to_json(),
                        after: owner.to_json(),
                    });
                }
                if *c.get("department_id") != dept {
                    changes.push(FieldChange {
                        field: "department_id".into(),
                        before: c.get("department_id").to_json(),
                        after: dept.to_json(),
                    });
                }
                cs.events.push(self.event(
                    company,
                    Table::Contacts,
                    c.id(),
                    format!("contact.{}", Self::move_event_name(mv.action)),
                    json!({
                        "code": c.get("code").to_json(),
                        "name": c.get("name").to_json(),
                        "from": c.get("owner_id").to_json(),
                        "to": owner.to_json(),
                        "from_username": if c.get("owner_id").as_id() == before_owner {
                            before_username.clone()
                        } else {
                            self.username_of(c.get("owner_id").as_id()).await
                        },
                        "to_username": to_username,
                        "with_customer": row.get("code").to_json(),
                        "version": c.version() + 1,
                        "changes": &changes,
                    }),
                ));
                cs.audit.push(self.audit(
                    mv.actor,
                    company,
                    Table::Contacts,
                    c.id(),
                    mv.action,
                    changes,
                ));
            }
        }
        // A customer going into a pool leaves its owner's hands, and so do
        // the shares granted on it and its contacts: the colleague it was
        // shared with reads or edits it no more (a pool's members see it
        // as the pool allows; whoever claims it shares it anew).
        let mut shares_ended = Vec::new();
        if from.is_owned() && !mv.to.is_owned() {
            shares_ended = self.end_shares(company, shared, row.id(), &mut cs).await?;
        }
        let pool = mv
            .pool
            .map(|p| p.id.0)
            .or_else(|| row.get("pool_id").as_id());
        let reason = match (mv.rule, &mv.reason) {
            (Some(r), Some(why)) => Some(format!("{}: {why}", r.describe())),
            (Some(r), None) => Some(r.describe()),
            (None, reason) => reason.clone(),
        };
        cs.ops.push(self.move_insert(
            company,
            (row.id(), row.version() + 1),
            mv.action,
            Some(from),
            mv.to,
            pool,
            before_owner,
            mv.owner.map(|(o, _)| o),
            mv.actor.map(|a| a.user_id.0),
            mv.rule.map(|r| r.id.0),
            reason.clone(),
        ));
        let idj = |u: Option<Uuid>| u.map(|u| Json::String(u.to_string())).unwrap_or(Json::Null);
        let mut changes = vec![FieldChange {
            field: "place".into(),
            before: Json::String(from.name().into()),
            after: Json::String(mv.to.name().into()),
        }];
        if before_owner != mv.owner.map(|(o, _)| o) {
            changes.push(FieldChange {
                field: "owner_id".into(),
                before: idj(before_owner),
                after: idj(mv.owner.map(|(o, _)| o)),
            });
        }
        if !shares_ended.is_empty() {
            changes.push(FieldChange {
                field: "shares".into(),
                before: Json::Array(shares_ended.iter().map(|u| idj(Some(*u))).collect()),
                after: Json::Array(Vec::new()),
            });
        }
        if lock_ends {
            changes.push(lock_ended_change());
        }
        if let Some(r) = &reason {
            changes.push(FieldChange {
                field: "reason".into(),
                before: Json::Null,
                after: Json::String(r.clone()),
            });
        }
        cs.audit.push(self.audit(
            mv.actor,
            company,
            Table::Customers,
            row.id(),
            mv.action,
            changes,
        ));
        let event = Self::move_event_name(mv.action);
        cs.events.push(self.event(
            company,
            Table::Customers,
            row.id(),
            format!("customer.{event}"),
            json!({
                "code": row.get("code").to_json(),
                "from": from.name(),
                "to": mv.to.name(),
                "pool_id": idj(pool),
                "from_owner": idj(before_owner),
                "to_owner": idj(mv.owner.map(|(o, _)| o)),
                "rule_id": idj(mv.rule.map(|r| r.id.0)),
                "reason": reason,
                "shares_ended": shares_ended.iter().map(|u| idj(Some(*u))).collect::<Vec<_>>(),
                "shares_ended_usernames": self.usernames_of(&shares_ended).await,
                "lock_ended": lock_ends,
                "version": row.version() + 1,
            }),
        ));
        Ok(cs)
    }

    /// The event name (after `customer.` or `contact.`) of a pool move's
    /// action: `claimed`, `released`, `assigned`, `recycled`,
    /// `invalidated`, else `moved`.
    fn move_event_name(action: &str) -> &'static str {
        match action {
            "claim" => "claimed",
            "release" => "released",
            "assign" => "assigned",
            "recycle" => "recycled",
            "invalidate" => "invalidated",
            _ => "moved",
        }
    }

    /// What a transfer (转移) adds for a customer: a new holding period, an
    /// owned place for a customer taken out of a pool, the end of a lock
    /// granted for its former owner, and the history row. Whether a lock
    /// ended (for the caller's audit entry, see [`lock_ended_change`]).
    pub(crate) fn transfer_pool_ops(
        &self,
        actor: &Actor,
        row: &Row,
        to: Uuid,
        cs: &mut ChangeSet,
    ) -> bool {
        let lock_ends =
            row.get("locked").as_bool() == Some(true) && row.get("owner_id").as_id() != Some(to);
        let now = self.now();
        let from = Place::of_row(row);
        let place = match from {
            Place::Public | Place::Invalid if row.get("closed_at").is_null() => Place::Private,
            Place::Public | Place::Invalid => Place::Deal,
            owned => owned,
        };
        for op in &mut cs.ops {
            if let Op::Update {
                table: Table::Customers,
                id,
                values,
                ..
            } = op
                && *id == row.id()
            {
                values.extend([
                    ("owned_since", Value::Timestamp(now)),
                    ("place", place.name().into()),
                    ("recycle_warned_due", Value::Null),
                ]);
                if lock_ends {
                    values.push(("locked", Value::Bool(false)));
                }
            }
        }
        cs.ops.push(self.move_insert(
            actor.company_id.0,
            (row.id(), row.version() + 1),
            "transfer",
            Some(from),
            place,
            row.get("pool_id").as_id(),
            row.get("owner_id").as_id(),
            Some(to),
            Some(actor.user_id.0),
            None,
            None,
        ));
        lock_ends
    }

    /// A pool history row; `customer` is the customer and its version after
    /// the move (which orders moves of one instant).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn move_insert(
        &self,
        company: Uuid,
        customer: (Uuid, i64),
        action: &str,
        from: Option<Place>,
        to: Place,
        pool: Option<Uuid>,
        from_owner: Option<Uuid>,
        to_owner: Option<Uuid>,
        actor: Option<Uuid>,
        rule: Option<Uuid>,
        reason: Option<String>,
    ) -> Op {
        let mut values = self.new_row(company, self.new_id());
        values.extend([
            ("customer_id", Value::Id(customer.0)),
            ("customer_version", Value::Int(customer.1)),
            ("action", Value::from(action)),
            (
                "from_place",
                Value::from(from.map(Place::name).unwrap_or("none")),
            ),
            ("to_place", Value::from(to.name())),
            ("pool_id", Value::from(pool)),
            ("from_owner", Value::from(from_owner)),
            ("to_owner", Value::from(to_owner)),
            ("actor_id", Value::from(actor)),
            ("rule_id", Value::from(rule)),
            ("reason", Value::from(reason)),
        ]);
        Op::Insert {
            table: Table::PoolMoves,
            values,
        }
    }

    fn require_admin(actor: &Actor, what: &str) -> Result<()> {
        if actor.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{} may not {what}: administrators only",
                actor.display_name
            )))
        }
    }

    /// Checks a pool's name (free among the company's pools, spelling
    /// aside), its users and departments (live ones of the company), and
    /// returns the name as stored. A deactivated user is refused as a new
    /// administrator or member, as groups refuse one; one already holding
    /// that place in `current` (the pool as read, on an edit) is kept.
    async fn check_pool_spec(
        &self,
        actor: &Actor,
        spec: &PoolSpec,
        current: Option<&Pool>,
    ) -> Result<String> {
        let except = current.map(|p| p.id.0);
        let name = spec.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::invalid(
                "name",
                "a pool needs a name of 1 to 64 characters",
            ));
        }
        // Day counts as long as a recycling rule's at most (ten years).
        for (field, n) in [
            (
                "limits.reclaim_cooldown_days",
                spec.limits.reclaim_cooldown_days,
            ),
            ("limits.warn_days", spec.limits.warn_days),
        ] {
            if n > 3650 {
                return Err(Error::invalid(
                    field,
                    format!("{n} days: at most 3650 days (最多 3650 天)"),
                ));
            }
        }
        // Names that differ only in letter case, width or spacing
        // (`hb公海`, `HB公海`, `ＨＢ公海`) name one pool, as the duplicate
        // keys compare text.
        // (A company has a few pools: read them all, compared here.)
        let key = crate::validate::text_key(&name);
        let pools = self
            .store
            .select(&Select::all(Table::Pools, actor.company_id.0, self.now()))
            .await?
            .rows;
        if let Some(other) = pools
            .iter()
            .find(|p| Some(p.id()) != except && crate::validate::text_key(&text(p, "name")) == key)
        {
            return Err(Self::pool_name_taken(&name, &text(other, "name")));
        }
        for (field, users, held, what) in [
            (
                "admins",
                &spec.admins,
                current.map(|p| p.admins.as_slice()),
                "administer a pool",
            ),
            (
                "member_users",
                &spec.member_users,
                current.map(|p| p.member_users.as_slice()),
                "join a pool",
            ),
        ] {
            let mut inactive = Vec::new();
            for u in users {
                let user =
                    crate::org::user_from_row(&self.live_row(actor, Table::Users, u.0).await?);
                if !user.active && !held.unwrap_or_default().contains(u) {
                    inactive.push(crate::org::user_label(&user.display_name, &user.username));
                }
            }
            if !inactive.is_empty() {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{} {} deactivated (已停用); a deactivated user cannot {what}",
                        inactive.join(", "),
                        if inactive.len() == 1 { "is" } else { "are" }
                    ),
                ));
            }
        }
        for d in &spec.member_departments {
            self.live_row(actor, Table::Departments, d.0).await?;
        }
        Ok(name)
    }

    /// The live pools of a company whose name has the text key `key`
    /// ([`text_key`](crate::validate::text_key)), but `except`.
    fn pools_named(company: Uuid, key: &str, except: Option<Uuid>, now: DateTime<Utc>) -> Select {
        let mut sel = Select::all(Table::Pools, company, now);
        sel.filter = Filter::And(vec![
            Filter::TextKeyIn(col("name"), vec![key.to_string()]),
            Filter::not_among(col("id"), except),
        ]);
        sel
    }

    /// The refusal of a pool name `name` that pool `other` holds (spelling
    /// aside).
    fn pool_name_taken(name: &str, other: &str) -> Error {
        Error::Duplicate {
            entity: "pool".into(),
            message: if name == other {
                format!("a pool called {name} exists already")
            } else {
                format!(
                    "a pool called {other} exists already ({name} differs from it only in \
                     letter case, width or spacing)"
                )
            },
        }
    }

    /// A guard that no other pool took the name `name` meanwhile (spelling
    /// aside), under the key every change to pools takes.
    fn pool_name_guard(&self, company: Uuid, name: &str, except: Option<Uuid>) -> Guard {
        let key = crate::validate::text_key(name);
        Guard {
            kind: crate::store::GuardKind::Duplicate,
            keys: vec![pool_limits_key(company)],
            select: Self::pools_named(company, &key, except, self.now()),
            message: format!("a pool called {name} was just created by someone else"),
        }
    }

    fn pool_values(name: String, spec: &PoolSpec) -> Vec<(&'static str, Value)> {
        vec![
            ("name", Value::Text(name)),
            ("admin_ids", ids_json(&spec.admins)),
            ("member_user_ids", ids_json(&spec.member_users)),
            ("member_department_ids", ids_json(&spec.member_departments)),
            (
                "limits",
                Value::Json(serde_json::to_value(&spec.limits).unwrap_or_default()),
            ),
        ]
    }

    /// Creates a pool (administrators).
    pub async fn create_pool(&self, actor: &Actor, spec: PoolSpec) -> Result<Pool> {
        let mut spec = spec;
        spec.name = crate::validate::single_line(&spec.name);
        Self::require_admin(actor, "create pools")?;
        let name = self.check_pool_spec(actor, &spec, None).await?;
        let company = actor.company_id.0;
        let position = self
            .count(Select::all(Table::Pools, company, self.now()))
            .await?;
        let id = self.new_id();
        let mut values = self.new_row(company, id);
        values.extend(Self::pool_values(name.clone(), &spec));
        values.push(("position", Value::Int(i64::try_from(position).unwrap_or(0))));
        let mut cs = ChangeSet::default();
        cs.guards.push(self.pool_change_turn(company));
        cs.guards.push(self.pool_name_guard(company, &name, None));
        // A member department deleted meanwhile (its delete checks the
        // pools listing it under the same key) fails the write.
        cs.guards.extend(
            spec.member_departments
                .iter()
                .map(|d| self.department_live_guard(actor, *d)),
        );
        cs.ops.push(Op::Insert {
            table: Table::Pools,
            values,
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Pools,
            id,
            "create",
            vec![FieldChange {
                field: "pool".into(),
                before: Json::Null,
                after: serde_json::to_value(&spec).unwrap_or_default(),
            }],
        ));
        cs.events.push(self.event(
            company,
            Table::Pools,
            id,
            "pool.created".into(),
            json!({
                "name": name,
                "version": 1,
                "admins": ids_json(&spec.admins).to_json(),
                "member_users": ids_json(&spec.member_users).to_json(),
                "member_departments": ids_json(&spec.member_departments).to_json(),
                "limits": &spec.limits,
            }),
        ));
        self.apply(cs).await?;
        self.pool(actor, PoolId(id)).await
    }

    /// Changes a pool (administrators); `expected_version` as read.
    pub async fn update_pool(
        &self,
        actor: &Actor,
        id: PoolId,
        expected_version: i64,
        spec: PoolSpec,
    ) -> Result<Pool> {
        let mut spec = spec;
        spec.name = crate::validate::single_line(&spec.name);
        Self::require_admin(actor, "change pools")?;
        let row = self.live_row(actor, Table::Pools, id.0).await?;
        let before = pool_from_row(&row);
        let name = self.check_pool_spec(actor, &spec, Some(&before)).await?;
        let name_guard = self.pool_name_guard(actor.company_id.0, &name, Some(id.0));
        let mut values = Self::pool_values(name, &spec);
        values.push(("updated_at", Value::Timestamp(self.now())));
        let mut cs = ChangeSet::default();
        cs.guards.push(self.pool_change_turn(actor.company_id.0));
        cs.guards.push(name_guard);
        cs.guards.extend(
            spec.member_departments
                .iter()
                .map(|d| self.department_live_guard(actor, *d)),
        );
        cs.ops.push(Op::Update {
            table: Table::Pools,
            id: id.0,
            expected_version,
            values,
        });
        let read_name = before.name.clone();
        let before = serde_json::to_value(PoolSpec {
            name: before.name,
            admins: before.admins,
            member_users: before.member_users,
            member_departments: before.member_departments,
            limits: before.limits,
        })
        .unwrap_or_default();
        let after = serde_json::to_value(&spec).unwrap_or_default();
        // Announced with what changed (`limits.max_per_claim` …), under the
        // name the pool has after the change.
        let changes = json_changes("", &before, &after);
        if !changes.is_empty() {
            cs.events.push(self.event(
                actor.company_id.0,
                Table::Pools,
                id.0,
                "pool.updated".into(),
                json!({"name": after["name"], "changes": changes}),
            ));
        }
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Pools,
            id.0,
            "update",
            vec![FieldChange {
                field: "pool".into(),
                before,
                after,
            }],
        ));
        // A pool is known by its name, not its id: a concurrent change
        // is told naming it (as read).
        self.apply(cs).await.map_err(|e| match e {
            Error::Conflict {
                entity,
                id: conflicted,
                expected,
                actual,
            } if conflicted == id.to_string() => Error::Conflict {
                entity,
                id: read_name.clone(),
                expected,
                actual,
            },
            e => e,
        })?;
        self.pool(actor, id).await
    }

    /// Announces a change of a pool's recycling rules as a change of the
    /// pool (`pool.updated`, a `rules` change naming the rule's kind), so
    /// that a host mirroring pools sees its rules change.
    fn announce_rule_change(
        &self,
        cs: &mut ChangeSet,
        company: Uuid,
        pool: &Pool,
        rule: Uuid,
        before: Option<&RuleSpec>,
        after: Option<&RuleSpec>,
    ) {
        let shown = |s: Option<&RuleSpec>| {
            s.map_or(Json::Null, |s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["id"] = json!(rule);
                v
            })
        };
        cs.events.push(self.event(
            company,
            Table::Pools,
            pool.id.0,
            "pool.updated".into(),
            json!({
                "name": pool.name,
                "changes": [FieldChange {
                    field: "rules".into(),
                    before: shown(before),
                    after: shown(after),
                }],
            }),
        ));
    }

    /// A pool the actor belongs to or administers (any pool for administrators).
    pub async fn pool(&self, actor: &Actor, id: PoolId) -> Result<Pool> {
        let row = self.live_row(actor, Table::Pools, id.0).await?;
        let set = self.pool_set(actor.company_id.0).await?;
        match set.index(row.id()) {
            Some(i) if set.is_member(i, actor) => Ok(pool_from_row(&row)),
            _ => Err(Error::not_found("pool", id)),
        }
    }

    /// Finds a pool by id or name.
    pub async fn resolve_pool(&self, actor: &Actor, key: &str) -> Result<Pool> {
        if let Ok(id) = key.parse::<PoolId>() {
            return self.pool(actor, id).await;
        }
        self.list_pools(actor)
            .await?
            .into_iter()
            // Names are unique letter case, width and spacing aside, and
            // found so.
            .find(|p| crate::validate::text_key(&p.name) == crate::validate::text_key(key))
            .ok_or_else(|| Error::not_found("pool", key))
    }

    /// The pools the actor belongs to or administers, in order (every pool
    /// for administrators).
    pub async fn list_pools(&self, actor: &Actor) -> Result<Vec<Pool>> {
        let set = self.pool_set(actor.company_id.0).await?;
        Ok((0..set.pools.len())
            .filter(|i| set.is_member(*i, actor))
            .map(|i| set.pools[i].pool.clone())
            .collect())
    }

    /// Removes an empty pool (administrators): one with no customer in its
    /// public or invalid area, counting those in the recycle bin and the
    /// archive. Customers claimed or assigned from it keep their owners and
    /// lose the pool: from then on the first pool whose members include
    /// their owner governs them, as for any customer that never was in a
    /// pool. The emptiness is checked again inside the write, and every
    /// move into the pool guards that it still exists, so a release into
    /// the pool at the same moment and the deletion do not both pass.
    pub async fn delete_pool(&self, actor: &Actor, id: PoolId) -> Result<()> {
        Self::require_admin(actor, "delete pools")?;
        let row = self.live_row(actor, Table::Pools, id.0).await?;
        let company = actor.company_id.0;
        let name = text(&row, "name");
        let now = self.now();
        let in_pool = |places: [Place; 2]| {
            let mut sel = Select::all(Table::Customers, company, now);
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                eq("pool_id", Value::Id(id.0)),
                Filter::In(
                    col("place"),
                    places.iter().map(|p| p.name().into()).collect(),
                ),
            ]);
            sel
        };
        let held = in_pool([Place::Public, Place::Invalid]);
        let n = self.count(held.clone()).await?;
        if n > 0 {
            return Err(Error::InvalidState(format!(
                "pool {name} still holds {n} customers in its public and invalid areas \
                 (the recycle bin and the archive included); move them to another pool first"
            )));
        }
        let mut cs = ChangeSet::default();
        cs.guards.push(Guard {
            kind: crate::store::GuardKind::State,
            keys: vec![pool_guard_key(company, id.0)],
            select: held,
            message: format!(
                "customers were put into pool {name} while it was being deleted; \
                 move them to another pool first"
            ),
        });
        cs.ops.push(Op::Update {
            table: Table::Pools,
            id: id.0,
            expected_version: row.version(),
            values: vec![("deleted_at", Value::Timestamp(now))],
        });
        let claimed = self
            .store
            .select(&in_pool([Place::Private, Place::Deal]))
            .await?
            .rows;
        for c in &claimed {
            cs.ops.push(Op::Update {
                table: Table::Customers,
                id: c.id(),
                expected_version: c.version(),
                values: vec![("pool_id", Value::Null)],
            });
            let changes = vec![FieldChange {
                field: "pool_id".into(),
                before: Json::String(id.0.to_string()),
                after: Json::Null,
            }];
            // Announced as any update of the customer is.
            cs.events.push(self.event(
                company,
                Table::Customers,
                c.id(),
                "customer.updated".to_string(),
                serde_json::json!({ "version": c.version() + 1, "changes": &changes }),
            ));
            cs.audit.push(self.audit(
                Some(actor),
                company,
                Table::Customers,
                c.id(),
                "update",
                changes,
            ));
        }
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Pools,
            id.0,
            "delete",
            Vec::new(),
        ));
        cs.events.push(self.event(
            company,
            Table::Pools,
            id.0,
            "pool.deleted".into(),
            json!({"name": name}),
        ));
        self.apply(cs).await
    }

    /// A guard refusing a change set once `pool` is deleted: a move or an
    /// import into the pool carries it, and it shares its key with the
    /// deletion's own guard, so the two are serialised and the later one is
    /// refused (see [`delete_pool`](Crm::delete_pool)).
    pub(crate) fn pool_alive_guard(&self, company: Uuid, pool: &Pool) -> Guard {
        self.pool_alive_guard_of(company, pool.id.0, &pool.name)
    }

    /// [`Crm::pool_alive_guard`] of the pool with this id and name.
    pub(crate) fn pool_alive_guard_of(&self, company: Uuid, pool: Uuid, name: &str) -> Guard {
        let mut select = Select::all(Table::Pools, company, self.now());
        select.lifecycle = Lifecycle::Deleted;
        select.filter = eq("id", Value::Id(pool));
        Guard {
            kind: crate::store::GuardKind::State,
            keys: vec![pool_guard_key(company, pool)],
            select,
            message: format!("pool {name} was deleted meanwhile; choose another pool"),
        }
    }

    fn check_rule(spec: &RuleSpec) -> Result<()> {
        if spec.days == 0 && spec.level_days.values().all(|d| *d == 0) {
            return Err(Error::invalid(
                "days",
                "a rule needs a number of days (for every level or per level)",
            ));
        }
        if spec.days > 3650 || spec.level_days.values().any(|d| *d > 3650) {
            return Err(Error::invalid("days", "at most 3650 days"));
        }
        Ok(())
    }

    /// The levels of a rule's `level_days` as the customers' level (客户级别)
    /// spells them — `a` is `A` — refusing a level that is none of the
    /// options (it would never match, and its customers would be recycled
    /// on the rule's other days) and one given twice.
    async fn canonical_levels(&self, actor: &Actor, spec: &mut RuleSpec) -> Result<()> {
        if spec.level_days.is_empty() {
            return Ok(());
        }
        let options = self.picklist(actor, Entity::Customer, "level").await?;
        let mut out = BTreeMap::new();
        for (given, days) in &spec.level_days {
            let folded = crate::org::fold_name(given);
            let Some(level) = options
                .iter()
                .find(|o| o.as_str() == given.trim())
                .or_else(|| options.iter().find(|o| crate::org::fold_name(o) == folded))
            else {
                return Err(Error::invalid(
                    "level_days",
                    format!(
                        "'{}' is no customer level (客户级别不存在); the levels are {}",
                        given.trim(),
                        options.join(", ")
                    ),
                ));
            };
            if out.insert(level.clone(), *days).is_some() {
                return Err(Error::invalid(
                    "level_days",
                    format!("level {level} is given twice (客户级别重复)"),
                ));
            }
        }
        spec.level_days = out;
        Ok(())
    }

    fn rule_values(spec: &RuleSpec) -> Vec<(&'static str, Value)> {
        vec![
            ("kind", spec.kind.name().into()),
            ("days", Value::Int(i64::from(spec.days))),
            (
                "level_days",
                Value::Json(serde_json::to_value(&spec.level_days).unwrap_or_default()),
            ),
            ("exempt_deals", spec.exempt_deals.into()),
            (
                "exempt_open_opportunities",
                spec.exempt_open_opportunities.into(),
            ),
            ("enabled", spec.enabled.into()),
        ]
    }

    async fn admin_pool(&self, actor: &Actor, pool: PoolId) -> Result<(PoolSet, usize)> {
        let set = self.pool_set(actor.company_id.0).await?;
        let i = set
            .index(pool.0)
            .filter(|i| set.is_member(*i, actor))
            .ok_or_else(|| Error::not_found("pool", pool))?;
        if !set.is_admin(i, actor) {
            return Err(Error::Forbidden(format!(
                "{} does not administer pool {}",
                actor.display_name, set.pools[i].pool.name
            )));
        }
        Ok((set, i))
    }

    /// Adds a recycling rule to a pool (pool admins).
    pub async fn add_recycle_rule(
        &self,
        actor: &Actor,
        pool: PoolId,
        spec: RuleSpec,
    ) -> Result<RecycleRule> {
        Self::check_rule(&spec)?;
        let (set, i) = self.admin_pool(actor, pool).await?;
        let mut spec = spec;
        self.canonical_levels(actor, &mut spec).await?;
        let company = actor.company_id.0;
        let id = self.new_id();
        let mut values = self.new_row(company, id);
        values.push(("pool_id", Value::Id(pool.0)));
        values.extend(Self::rule_values(&spec));
        values.push((
            "position",
            Value::Int(i64::try_from(set.pools[i].rules.len()).unwrap_or(0)),
        ));
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Insert {
            table: Table::PoolRules,
            values,
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::PoolRules,
            id,
            "create",
            vec![FieldChange {
                field: "rule".into(),
                before: Json::Null,
                after: serde_json::to_value(&spec).unwrap_or_default(),
            }],
        ));
        self.announce_rule_change(&mut cs, company, &set.pools[i].pool, id, None, Some(&spec));
        self.apply(cs).await?;
        let row = self.live_row(actor, Table::PoolRules, id).await?;
        rule_from_row(&row)
    }

    /// Changes a recycling rule (pool admins).
    pub async fn update_recycle_rule(
        &self,
        actor: &Actor,
        id: RuleId,
        expected_version: i64,
        spec: RuleSpec,
    ) -> Result<RecycleRule> {
        Self::check_rule(&spec)?;
        let row = self.live_row(actor, Table::PoolRules, id.0).await?;
        let before = rule_from_row(&row)?;
        let (set, i) = self.admin_pool(actor, before.pool_id).await?;
        let mut spec = spec;
        self.canonical_levels(actor, &mut spec).await?;
        let mut values = Self::rule_values(&spec);
        values.push(("updated_at", Value::Timestamp(self.now())));
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::PoolRules,
            id: id.0,
            expected_version,
            values,
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::PoolRules,
            id.0,
            "update",
            vec![FieldChange {
                field: "rule".into(),
                before: serde_json::to_value(&before.spec).unwrap_or_default(),
                after: serde_json::to_value(&spec).unwrap_or_default(),
            }],
        ));
        self.announce_rule_change(
            &mut cs,
            actor.company_id.0,
            &set.pools[i].pool,
            id.0,
            Some(&before.spec),
            Some(&spec),
        );
        self.apply(cs).await?;
        rule_from_row(&self.live_row(actor, Table::PoolRules, id.0).await?)
    }

    /// Removes a recycling rule (pool admins).
    pub async fn delete_recycle_rule(&self, actor: &Actor, id: RuleId) -> Result<()> {
        let row = self.live_row(actor, Table::PoolRules, id.0).await?;
        let rule = rule_from_row(&row)?;
        let (set, i) = self.admin_pool(actor, rule.pool_id).await?;
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::PoolRules,
            id: id.0,
            expected_version: row.version(),
            values: vec![("deleted_at", Value::Timestamp(self.now()))],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::PoolRules,
            id.0,
            "delete",
            Vec::new(),
        ));
        self.announce_rule_change(
            &mut cs,
            actor.company_id.0,
            &set.pools[i].pool,
            id.0,
            Some(&rule.spec),
            None,
        );
        self.apply(cs).await
    }

    /// The recycling rules of a pool the actor belongs to.
    pub async fn recycle_rules(&self, actor: &Actor, pool: PoolId) -> Result<Vec<RecycleRule>> {
        let set = self.pool_set(actor.company_id.0).await?;
        match set.index(pool.0) {
            Some(i) if set.is_member(i, actor) => Ok(set.pools[i].rules.clone()),
            _ => Err(Error::not_found("pool", pool)),
        }
    }

    /// Customers in a pool's public area (members) or invalid area (pool
    /// admins), with the query's conditions, search, sort and paging. Only
    /// the working set: deleted and archived customers are looked for in
    /// the recycle bin and the archive, with the right to read them.
    pub async fn pool_customers(
        &self,
        actor: &Actor,
        pool: PoolId,
        place: Place,
        query: &crate::query::ListQuery,
    ) -> Result<crate::query::Page<Record>> {
        let set = self.pool_set(actor.company_id.0).await?;
        let i = set
            .index(pool.0)
            .filter(|i| set.is_member(*i, actor))
            .ok_or_else(|| Error::not_found("pool", pool))?;
        if query.lifecycle != Lifecycle::Active {
            return Err(Error::invalid(
                "lifecycle",
                "a pool lists its current customers only; deleted and archived customers are in the recycle bin and the archive",
            ));
        }
        match place {
            Place::Public => {}
            Place::Invalid if set.is_admin(i, actor) => {}
            Place::Invalid => {
                return Err(Error::Forbidden(format!(
                    "{} may not see the invalid customers of pool {}",
                    actor.display_name, set.pools[i].pool.name
                )));
            }
            _ => {
                return Err(Error::invalid(
                    "place",
                    "a pool holds public and invalid customers only",
                ));
            }
        }
        let filter = Filter::And(vec![
            eq("pool_id", Value::Id(pool.0)),
            eq("place", place.name()),
        ]);
        self.list_records_with(actor, Entity::Customer, query, Some(Scope::All), filter)
            .await
    }

    /// Claims customers from the public pool (领取) for the actor, within
    /// the pool's limits: per claim (the whole claim is refused), per day,
    /// the caps on customers held, and the former owner's cooldown (the
    /// stricter of the pool the customer went into when it left them and
    /// the pool it is in now, should an admin have moved it since). The
    /// caps and the daily limit hold against concurrent claims and
    /// assignments: one that commits between this claim's counting and its
    /// write makes it count again (see `Holding`). A customer the actor may
    /// not look at (neither readable nor in the public area of a pool they
    /// belong to) is refused as not found and not counted.
    pub async fn claim(&self, actor: &Actor, ids: &[RecordId]) -> Result<BatchReport> {
        let ids = &crate::lifecycle::distinct_ids(ids);
        let company = actor.company_id.0;
        let set = self.pool_set(company).await?;
        let mut per_pool: HashMap<Uuid, u32> = HashMap::new();
        let mut rows = Vec::new();
        for id in ids {
            let row = self.pool_customer_row(actor, &set, *id).await;
            if let Ok(r) = &row
                && let Some(p) = r.get("pool_id").as_id()
            {
                *per_pool.entry(p).or_default() += 1;
            }
            rows.push((*id, row));
        }
        for (p, n) in &per_pool {
            if let Some(i) = set.index(*p)
                && let Some(max) = set.pools[i].pool.limits.max_per_claim
                && *n > max
            {
                return Err(Error::Forbidden(format!(
                    "{} may claim at most {max} customers at a time from pool {} ({n} asked)",
                    actor.display_name, set.pools[i].pool.name
                )));
            }
        }
        let mut holding = self
            .holding(
                &set,
                company,
                actor.user_id.0,
                actor.department_id.map(|d| d.0),
            )
            .await?;
        let mut today: HashMap<Uuid, u64> = HashMap::new();
        let mut report = BatchReport::default();
        for (id, row) in rows {
            let mut row = match row {
                Ok(r) => r,
                Err(e) => {
                    let e = self.taken_meanwhile(actor, &set, id, e).await;
                    report.refused.push((id, e.to_string()));
                    continue;
                }
            };
            // Claimed, the customer is theirs: one whose roles do not let
            // them edit their own customers would hold it without being
            // able to work on it or give it back (as an assignment or a
            // transfer to them is refused).
            let mut theirs = row.clone();
            theirs.set("owner_id", Value::Id(actor.user_id.0));
            theirs.set("department_id", actor.department_id.map(|d| d.0).into());
            if !actor.covers(Entity::Customer, Action::Update, &theirs) {
                report.refused.push((
                    id,
                    format!(
                        "{} may not claim customer {}: their roles do not let them edit \
                         customers they own (角色没有客户编辑权限，不能领取)",
                        actor.display_name,
                        Self::label(&row)
                    ),
                ));
                continue;
            }
            let mut tries = 1;
            let outcome = loop {
                let outcome = self
                    .claim_one(actor, &set, &row, &holding, &mut today)
                    .await;
                match outcome {
                    Err(e) if is_holder_conflict(&e) && tries < HOLDER_TRIES => {
                        // Another claim or assignment to this user or
                        // department committed after the counts were read:
                        // count again, and read the customer again.
                        tries += 1;
                        today.clear();
                        match self
                            .holding(
                                &set,
                                company,
                                actor.user_id.0,
                                actor.department_id.map(|d| d.0),
                            )
                            .await
                        {
                            Ok(h) => holding = h,
                            Err(e) => break Err(e),
                        }
                        match self.pool_customer_row(actor, &set, id).await {
                            Ok(r) => row = r,
                            Err(e) => break Err(e),
                        }
                    }
                    Err(e) if is_holder_conflict(&e) => {
                        break Err(holders_busy(&actor.display_name));
                    }
                    other => break other,
                }
            };
            match outcome {
                Ok((to, guarded)) => {
                    holding.took(to, guarded);
                    report.done.push(id);
                }
                Err(e) => {
                    let e = self.taken_meanwhile(actor, &set, id, e).await;
                    report.refused.push((id, e.to_string()));
                }
            }
        }
        Ok(report)
    }

    /// The refusal of a claim of `id` that failed with `e`: when `e` is
    /// "not found" or a conflict on the customer, and the customer has been
    /// taken from a pool the actor is a member of (claimed or assigned) by
    /// then — another claim won the race — says so, naming the new owner
    /// when the actor may read the customer now; otherwise `e`.
    async fn taken_meanwhile(&self, actor: &Actor, set: &PoolSet, id: RecordId, e: Error) -> Error {
        let lost = match &e {
            Error::NotFound { .. } => true,
            Error::Conflict { entity, .. } => entity == Entity::Customer.name(),
            _ => false,
        };
        if !lost {
            return e;
        }
        let Ok(row) = self.customer_row(actor, id).await else {
            return e;
        };
        let Some(owner) = row.get("owner_id").as_id() else {
            return e;
        };
        let Ok(Some(mv)) = self.last_move(actor.company_id.0, id.0, None).await else {
            return e;
        };
        let from_members_pool = mv.get("from_place").as_text() == Some(Place::Public.name())
            && mv
                .get("pool_id")
                .as_id()
                .and_then(|p| set.index(p))
                .is_some_and(|i| set.is_member(i, actor));
        if !from_members_pool || mv.get("to_owner").as_id() != Some(owner) {
            return e;
        }
        let who = match self
            .can_on_row(actor, Entity::Customer, Action::Read, &row)
            .await
        {
            Ok(true) => match self.user(actor, UserId(owner)).await {
                Ok(u) => u.display_name,
                Err(_) => "someone else".to_string(),
            },
            _ => "someone else".to_string(),
        };
        let how = if mv.get("action").as_text() == Some("assign") {
            format!("assigned to {who}")
        } else {
            format!("claimed by {who}")
        };
        Error::InvalidState(format!(
            "customer {} was just {how}; it is no longer in the pool",
            Self::label(&row)
        ))
    }

    /// The latest pool move of a customer (optionally only those taking it
    /// from `from_owner`).
    async fn last_move(
        &self,
        company: Uuid,
        customer: Uuid,
        from_owner: Option<Uuid>,
    ) -> Result<Option<Row>> {
        let mut sel = Select::all(Table::PoolMoves, company, self.now());
        let mut filter = vec![eq("customer_id", Value::Id(customer))];
        if let Some(o) = from_owner {
            filter.push(eq("from_owner", Value::Id(o)));
        }
        sel.filter = Filter::And(filter);
        sel.sort = vec![
            Sort {
                col: col("created_at"),
                desc: true,
            },
            Sort {
                col: col("customer_version"),
                desc: true,
            },
        ];
        sel.paging = Paging::Offset {
            offset: 0,
            limit: 1,
        };
        Ok(self.store.select(&sel).await?.rows.into_iter().next())
    }

    /// Claims one public customer for the actor within the limits of its
    /// pool, given what the actor holds and has claimed today per pool;
    /// returns where it went and which holder rows the move bumped.
    async fn claim_one(
        &self,
        actor: &Actor,
        set: &PoolSet,
        row: &Row,
        holding: &Holding,
        today: &mut HashMap<Uuid, u64>,
    ) -> Result<(Place, Guarded)> {
        let company = actor.company_id.0;
        let now = self.now();
        let place = Place::of_row(row);
        if place != Place::Public {
            return Err(Error::InvalidState(format!(
                "customer {} is not in a public pool (it is in {})",
                Self::label(row),
                place.name_zh()
            )));
        }
        let i = row
            .get("pool_id")
            .as_id()
            .and_then(|p| set.index(p))
            .ok_or_else(|| {
                Error::InvalidState(format!("customer {} is in no live pool", Self::label(row)))
            })?;
        let g = &set.pools[i];
        if !set.is_member(i, actor) {
            return Err(Error::Forbidden(format!(
                "{} is not a member of pool {}",
                actor.display_name, g.pool.name
            )));
        }
        let limits = &g.pool.limits;
        // The cooldown is about the user and the customer, not the pool it
        // is in now: moved since to another pool (by an admin), the
        // stricter of the two pools' cooldowns holds — the one of the pool
        // it went into when it left the actor, and the one of its pool now.
        let left = match (
            row.get("previous_owner_id").as_id() == Some(actor.user_id.0),
            row.get("released_at").as_timestamp(),
        ) {
            (true, Some(released)) => Some((
                released,
                self.last_move(company, row.id(), Some(actor.user_id.0))
                    .await?,
            )),
            _ => None,
        };
        let cooldown = |mv: &Option<Row>| {
            let then = mv
                .as_ref()
                .and_then(|m| m.get("pool_id").as_id())
                .and_then(|p| set.index(p))
                .map_or(0, |j| set.pools[j].pool.limits.reclaim_cooldown_days);
            then.max(limits.reclaim_cooldown_days)
        };
        if let Some((released, mv)) = left
            && released + days(cooldown(&mv)) > now
        {
            let until = released + days(cooldown(&mv));
            // Named by who took it from the actor: they released it, a
            // rule recycled it, or someone else (an administrator, whoever
            // may transfer it) moved it to the pool.
            let how = match mv {
                Some(mv) if mv.get("rule_id").as_id().is_some() => {
                    format!(
                        "customer {} was recycled from {}",
                        Self::label(row),
                        actor.display_name
                    )
                }
                Some(mv)
                    if mv
                        .get("actor_id")
                        .as_id()
                        .is_some_and(|a| a != actor.user_id.0) =>
                {
                    let mover = match mv.get("actor_id").as_id() {
                        Some(a) => self
                            .user(actor, UserId(a))
                            .await
                            .map_or_else(|_| "someone else".to_string(), |u| u.display_name),
                        None => "someone else".to_string(),
                    };
                    format!(
                        "{mover} moved customer {} from {} to the pool",
                        Self::label(row),
                        actor.display_name
                    )
                }
                _ => format!(
                    "{} gave customer {} up",
                    actor.display_name,
                    Self::label(row)
                ),
            };
            return Err(Error::Forbidden(format!(
                "{how} on {}; it may be claimed back from {}",
                self.local_date(released),
                // To the minute: the cooldown counts from the moment of
                // the release, so the day alone would name one on which
                // the claim is still refused until that hour.
                self.local_minute(until)
            )));
        }
        if let Some(max) = limits.max_claims_per_day {
            let n = match today.get(&g.pool.id.0) {
                Some(n) => *n,
                None => {
                    self.claims_today(company, g.pool.id.0, actor.user_id.0)
                        .await?
                }
            };
            today.insert(g.pool.id.0, n);
            if n >= u64::from(max) {
                return Err(Error::Forbidden(format!(
                    "{} has reached the daily limit of {max} claims from pool {}",
                    actor.display_name, g.pool.name
                )));
            }
        }
        self.check_caps(
            &actor.display_name,
            &g.pool,
            holding,
            actor.department_id.is_some(),
            row,
        )?;
        let guarded = Guarded::by(set, limits, true);
        let to = self
            .give_to_holder(
                actor,
                set,
                row,
                "claim",
                holding,
                actor.department_id.map(|d| d.0),
                guarded,
            )
            .await?;
        if let Some(n) = today.get_mut(&g.pool.id.0) {
            *n += 1;
        }
        Ok((to, guarded))
    }

    /// Moves a pool customer to the holder's private or closed-deal
    /// customers (by whether it has a closed deal), bumping the holder's
    /// rows with it, on behalf of `actor` (the holder, or a pool admin).
    #[allow(clippy::too_many_arguments)]
    async fn give_to_holder(
        &self,
        actor: &Actor,
        set: &PoolSet,
        row: &Row,
        action: &'static str,
        holding: &Holding,
        department: Option<Uuid>,
        guarded: Guarded,
    ) -> Result<Place> {
        let to = if row.get("closed_at").is_null() {
            Place::Private
        } else {
            Place::Deal
        };
        let mut cs = self
            .move_changes(
                actor.company_id.0,
                row,
                &Move {
                    action,
                    to,
                    owner: Some((holding.user.0, department)),
                    pool: None,
                    reason: None,
                    rule: None,
                    actor: Some(actor),
                },
            )
            .await?;
        cs.ops
            .extend(holding.guard(self, actor.company_id.0, guarded));
        // The limits checked are the ones in force: a pool changed (a cap
        // added) since they were read fails the move, to be tried again.
        cs.guards
            .push(self.pool_limits_guard(actor.company_id.0, set));
        self.apply(cs).await?;
        Ok(to)
    }

    /// A guard that the company's pools are still those of `set`, at the
    /// versions read (none changed, none added), under the key changes to
    /// pools take too.
    fn pool_limits_guard(&self, company: Uuid, set: &PoolSet) -> Guard {
        let mut alternatives: Vec<Filter> = set
            .pools
            .iter()
            .map(|g| {
                Filter::And(vec![
                    eq("id", Value::Id(g.pool.id.0)),
                    Filter::Cmp(col("version"), CmpOp::Ne, Value::Int(g.pool.version)),
                ])
            })
            .collect();
        alternatives.push(Filter::not_among(
            col("id"),
            set.pools.iter().map(|g| g.pool.id.0),
        ));
        let mut select = Select::all(Table::Pools, company, self.now());
        select.filter = Filter::Or(alternatives);
        Guard {
            kind: crate::store::GuardKind::State,
            keys: vec![pool_limits_key(company)],
            select,
            message: "the pools' settings changed meanwhile (e.g. a limit was added); \
                      try again"
                .to_string(),
        }
    }

    /// A guard for a change to the company's pools that takes the key of
    /// [`Crm::pool_limits_guard`] (its select finds nothing): a claim or
    /// assignment and the change take turns, so the claim sees the change.
    fn pool_change_turn(&self, company: Uuid) -> Guard {
        let mut select = Select::all(Table::Pools, company, self.now());
        select.filter = Filter::Or(Vec::new());
        Guard {
            kind: crate::store::GuardKind::State,
            keys: vec![pool_limits_key(company)],
            select,
            message: String::new(),
        }
    }

    /// Refuses a claim or assignment of customer `row` to `who` over the
    /// caps of `pool` on customers held by a user and by a department; a
    /// customer that made a deal (held as one) counts only where deals
    /// count toward the caps, as in a transfer.
    fn check_caps(
        &self,
        who: &str,
        pool: &Pool,
        holding: &Holding,
        has_department: bool,
        row: &Row,
    ) -> Result<()> {
        let deal = !row.get("closed_at").is_null();
        let counts = u64::from(!deal || pool.limits.deals_count_toward_cap);
        self.check_caps_adding(who, pool, holding, has_department, (counts, counts))
    }

    /// Refuses a move of `adding` customers (to the user, to the user's
    /// department) into `who`'s hands over the caps of `pool`, in the words
    /// of a claim's refusal.
    fn check_caps_adding(
        &self,
        who: &str,
        pool: &Pool,
        holding: &Holding,
        has_department: bool,
        adding: (u64, u64),
    ) -> Result<()> {
        let limits = &pool.limits;
        let more = |n: u64| {
            if n == 1 {
                String::new()
            } else {
                format!(" ({n} more would pass it)")
            }
        };
        let held = holding.held(limits.deals_count_toward_cap);
        if let Some(cap) = limits.max_owned_per_user
            && adding.0 > 0
            && held + adding.0 > u64::from(cap)
        {
            return Err(Error::Forbidden(format!(
                "{who} already holds {held} customers, the limit of pool {} is {cap}{}",
                pool.name,
                more(adding.0)
            )));
        }
        let held = holding.department_held(limits.deals_count_toward_cap);
        if let Some(cap) = limits.max_owned_per_department
            && has_department
            && adding.1 > 0
            && held + adding.1 > u64::from(cap)
        {
            return Err(Error::Forbidden(format!(
                "the department of {who} already holds {held} customers, the limit of pool {} \
                 is {cap}{}",
                pool.name,
                more(adding.1)
            )));
        }
        Ok(())
    }

    /// Holds a transfer (转移) of a customer to `to` to the caps of the pool
    /// that governs it once theirs (its pool, else the pool of the new
    /// owner or their department), as a claim or assignment is: refused
    /// over a cap, and guarded the same way against moves counted at the
    /// same moment (the holder rows are bumped in `cs`, and the pools'
    /// settings must be those read).
    pub(crate) async fn transfer_caps(
        &self,
        actor: &Actor,
        row: &Row,
        to: &crate::org::User,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let company = actor.company_id.0;
        let set = self.pool_set(company).await?;
        if !set.caps(|l| l.max_owned_per_user) && !set.caps(|l| l.max_owned_per_department) {
            return Ok(());
        }
        let department = to.department_id.map(|d| d.0);
        let mut theirs = row.clone();
        theirs.set("owner_id", Value::Id(to.id.0));
        theirs.set("department_id", Value::from(department));
        let Some(i) = set.governing(&theirs) else {
            return Ok(());
        };
        let pool = &set.pools[i].pool;
        let deal = !row.get("closed_at").is_null();
        let counts = u64::from(!deal || pool.limits.deals_count_toward_cap);
        // A customer already in the department (owned by a colleague)
        // counts toward the department's cap already.
        let same_department = Place::of_row(row).is_owned()
            && department.is_some()
            && row.get("department_id").as_id() == department;
        let holding = self.holding(&set, company, to.id.0, department).await?;
        self.check_caps_adding(
            &to.display_name,
            pool,
            &holding,
            department.is_some(),
            (counts, if same_department { 0 } else { counts }),
        )?;
        cs.ops
            .extend(holding.guard(self, company, Guarded::by(&set, &pool.limits, false)));
        cs.guards.push(self.pool_limits_guard(company, &set));
        Ok(())
    }

    /// Holds a customer coming back into the working set (restored from the
    /// recycle bin, unarchived) to the caps of the pool that governs it, as
    /// a claim is: out of the working set it counted toward no cap, so its
    /// owner and their department take it on again — refused over a cap,
    /// and guarded against moves counted at the same moment (the holder
    /// rows are bumped in `cs`, and the pools' settings must be those
    /// read). A public customer (no owner) counts toward none.
    pub(crate) async fn comeback_caps(
        &self,
        actor: &Actor,
        row: &Row,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let Some(owner) = row
            .get("owner_id")
            .as_id()
            .filter(|_| Place::of_row(row).is_owned())
        else {
            return Ok(());
        };
        let company = actor.company_id.0;
        let set = self.pool_set(company).await?;
        if !set.caps(|l| l.max_owned_per_user) && !set.caps(|l| l.max_owned_per_department) {
            return Ok(());
        }
        let Some(i) = set.governing(row) else {
            return Ok(());
        };
        let pool = &set.pools[i].pool;
        let department = row.get("department_id").as_id();
        let deal = !row.get("closed_at").is_null();
        let counts = u64::from(!deal || pool.limits.deals_count_toward_cap);
        let holding = self.holding(&set, company, owner, department).await?;
        let who = if owner == actor.user_id.0 {
            actor.display_name.clone()
        } else {
            // A user gone from the directory is named by id.
            match self.store.get(Table::Users, owner).await? {
                Some(u) => crate::org::user_label(
                    u.get("display_name").as_text().unwrap_or_default(),
                    u.get("username").as_text().unwrap_or_default(),
                ),
                None => owner.to_string(),
            }
        };
        self.check_caps_adding(&who, pool, &holding, department.is_some(), (counts, counts))?;
        cs.ops
            .extend(holding.guard(self, company, Guarded::by(&set, &pool.limits, false)));
        cs.guards.push(self.pool_limits_guard(company, &set));
        Ok(())
    }

    /// Holds the customers a change set creates for owners (their creators,
    /// or the owners named) to the caps of the pools that govern them (the
    /// pool of the owner or the owner's department): one count per owner
    /// and department for the whole batch, refused over a cap in the words
    /// of a claim, and guarded as a claim is against moves counted at the
    /// same moment (the holder rows are bumped in `cs`, once each, and the
    /// pools' settings must be those read). Customers created into a
    /// pool's public area hold no owner and are not counted.
    pub(crate) async fn creation_caps(&self, actor: &Actor, cs: &mut ChangeSet) -> Result<()> {
        let mut per_owner = CreatedPerOwner::new();
        count_created_customers(&cs.ops, &mut per_owner);
        self.creation_caps_of(actor, &per_owner, cs).await
    }

    /// [`Crm::creation_caps`] of customers counted beforehand (what a dry
    /// run of an import would have created so far): the bumps and guards
    /// go into `cs`.
    pub(crate) async fn creation_caps_of(
        &self,
        actor: &Actor,
        per_owner: &CreatedPerOwner,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let company = actor.company_id.0;
        if per_owner.is_empty() {
            return Ok(());
        }
        let set = self.pool_set(company).await?;
        if !set.caps(|l| l.max_owned_per_user) && !set.caps(|l| l.max_owned_per_department) {
            return Ok(());
        }
        let mut per_department: HashMap<Uuid, (u64, u64)> = HashMap::new();
        for ((_, d), n) in per_owner {
            if let Some(d) = d {
                let e = per_department.entry(*d).or_default();
                e.0 += n.0;
                e.1 += n.1;
            }
        }
        let mut bumps: BTreeMap<Uuid, Op> = BTreeMap::new();
        for ((owner, department), (n, deals)) in per_owner {
            let mut probe = Row {
                table: Table::Customers,
                values: vec![Value::Null; Table::Customers.columns().len()],
            };
            probe.set("owner_id", Value::Id(*owner));
            probe.set("department_id", Value::from(*department));
            let Some(i) = set.governing(&probe) else {
                continue;
            };
            let pool = &set.pools[i].pool;
            let counted = |(n, deals): (u64, u64)| {
                if pool.limits.deals_count_toward_cap {
                    n
                } else {
                    n - deals
                }
            };
            let dept_n = department
                .and_then(|d| per_department.get(&d).copied())
                .unwrap_or_default();
            let holding = self.holding(&set, company, *owner, *department).await?;
            let who = if *owner == actor.user_id.0 {
                actor.display_name.clone()
            } else {
                self.user(actor, UserId(*owner)).await?.display_name
            };
            self.check_caps_adding(
                &who,
                pool,
                &holding,
                department.is_some(),
                (counted((*n, *deals)), counted(dept_n)),
            )?;
            let guarded = Guarded::by(&set, &pool.limits, false);
            let ids: Vec<Uuid> = holding.rows(guarded).map(|(id, _, _)| id).collect();
            for (id, op) in ids.into_iter().zip(holding.guard(self, company, guarded)) {
                bumps.entry(id).or_insert(op);
            }
        }
        cs.ops.extend(bumps.into_values());
        cs.guards.push(self.pool_limits_guard(company, &set));
        Ok(())
    }

    /// Releases customers to a pool (退回公海) with a reason: the owner, or
    /// someone who may transfer them. The pool is `to`, else the one the
    /// customer came from, else the first pool the owner belongs to.
    pub async fn release(
        &self,
        actor: &Actor,
        ids: &[RecordId],
        reason: &str,
        to: Option<PoolId>,
    ) -> Result<BatchReport> {
        self.to_pool(actor, ids, reason, to, Place::Public).await
    }

    /// Moves customers into a pool's public or invalid area (pool admins for
    /// customers already in a pool; owners and those who may transfer them
    /// for owned customers), with a reason.
    pub async fn move_to_pool(
        &self,
        actor: &Actor,
        ids: &[RecordId],
        pool: PoolId,
        place: Place,
        reason: &str,
    ) -> Result<BatchReport> {
        if place.is_owned() {
            return Err(Error::invalid(
                "place",
                "customers move to a pool's public or invalid area; use claim or assign to give them an owner",
            ));
        }
        self.to_pool(actor, ids, reason, Some(pool), place).await
    }

    /// Puts customers into a pool (release and move): a customer the actor
    /// may not look at is refused as not found.
    async fn to_pool(
        &self,
        actor: &Actor,
        ids: &[RecordId],
        reason: &str,
        to: Option<PoolId>,
        place: Place,
    ) -> Result<BatchReport> {
        let ids = &crate::lifecycle::distinct_ids(ids);
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid(
                "reason",
                "a reason is required to put a customer into a pool",
            ));
        }
        let company = actor.company_id.0;
        let set = self.pool_set(company).await?;
        let target = match to {
            Some(p) => Some(
                set.index(p.0)
                    .filter(|i| set.is_member(*i, actor))
                    .ok_or_else(|| Error::not_found("pool", p))?,
            ),
            None => None,
        };
        let mut report = BatchReport::default();
        for id in ids {
            let outcome: Result<()> = async {
                let row = self.pool_customer_row(actor, &set, *id).await?;
                let from = Place::of_row(&row);
                if from.is_owned() {
                    let mine = row.get("owner_id").as_id() == Some(actor.user_id.0);
                    // Readable to the actor (an owned customer shows
                    // through no pool), so the refusal may name it.
                    if !mine && !actor.covers(Entity::Customer, Action::Transfer, &row) {
                        return Err(Error::Forbidden(format!(
                            "{} may not give customer {} up",
                            actor.display_name,
                            Self::label(&row)
                        )));
                    }
                } else {
                    let src = row.get("pool_id").as_id().and_then(|p| set.index(p));
                    if !src.is_some_and(|i| set.is_admin(i, actor)) {
                        // Nobody holds it to release; moving it within the
                        // pools is its administrators'.
                        return Err(Error::InvalidState(format!(
                            "customer {} is in a pool already, held by nobody (已在公海): \
                             nobody holds it to release, and only its pool's administrators \
                             move it within the pools",
                            Self::label(&row)
                        )));
                    }
                }
                let i = target.or_else(|| set.governing(&row)).ok_or_else(|| {
                    Error::InvalidState(format!(
                        "customer {} belongs to no pool; name the pool to put it in",
                        Self::label(&row)
                    ))
                })?;
                if !from.is_owned() && !set.is_admin(i, actor) {
                    return Err(Error::Forbidden(format!(
                        "{} does not administer pool {}",
                        actor.display_name, set.pools[i].pool.name
                    )));
                }
                if from == place && row.get("pool_id").as_id() == Some(set.pools[i].pool.id.0) {
                    return Ok(());
                }
                // A customer still owed money stays with its owner, as it
                // stays out of the recycle bin: in a pool, whoever claims it
                // would not see the contracts, and the receivable would be a
                // colleague's for a customer they no longer hold.
                if from.is_owned()
                    && let Some(open) = self.contracts_with_money_open(actor, &row).await?
                {
                    return Err(Error::InvalidState(format!(
                        "customer {} cannot go into a pool: {open}; collect what is owed, or \
                         terminate the contracts with a reason first",
                        Self::label(&row)
                    )));
                }
                // Nor while its quotes or contracts wait for approval: an
                // approved contract would be owed money by a pool customer
                // (checked again as the move commits: a submission takes the
                // customer's key too).
                let mut pending_guards = Vec::new();
                if from.is_owned() {
                    let (pending, guards) = self.documents_pending_approval(actor, &row).await?;
                    if let Some(what) = pending {
                        return Err(Error::InvalidState(format!(
                            "customer {} cannot go into a pool: {what} pending approval; \
                             withdraw the approvals (撤回) or have them decided first",
                            Self::label(&row)
                        )));
                    }
                    pending_guards = guards;
                    pending_guards.push(self.contracts_open_guard(company, &row, false));
                }
                let action = match (from.is_owned(), place) {
                    (_, Place::Invalid) => "invalidate",
                    (true, _) => "release",
                    (false, _) => "move",
                };
                let cs = self
                    .move_changes(
                        company,
                        &row,
                        &Move {
                            action,
                            to: place,
                            owner: None,
                            pool: Some(&set.pools[i].pool),
                            reason: Some(reason.to_string()),
                            rule: None,
                            actor: Some(actor),
                        },
                    )
                    .await?;
                let mut cs = cs;
                cs.guards.extend(pending_guards);
                self.apply(cs).await
            }
            .await;
            match outcome {
                Ok(()) => report.done.push(*id),
                Err(e) => report.refused.push((*id, e.to_string())),
            }
        }
        Ok(report)
    }

    /// Assigns customers from a pool to a user (分配), by an admin of the
    /// pool. The user's caps of that pool apply; the cooldown does not. A
    /// customer the actor may not look at is refused as not found.
    pub async fn assign(&self, actor: &Actor, ids: &[RecordId], to: UserId) -> Result<BatchReport> {
        let ids = &crate::lifecycle::distinct_ids(ids);
        let target = self.user(actor, to).await?;
        if !target.active {
            return Err(Error::invalid(
                "to",
                format!("user {} is deactivated", target.username),
            ));
        }
        let company = actor.company_id.0;
        let set = self.pool_set(company).await?;
        let department = target.department_id.map(|d| d.0);
        let mut holding = self.holding(&set, company, to.0, department).await?;
        let mut report = BatchReport::default();
        for id in ids {
            let mut tries = 1;
            let outcome = loop {
                let outcome: Result<(Place, Guarded)> = async {
                    let row = self.pool_customer_row(actor, &set, *id).await?;
                    let from = Place::of_row(&row);
                    if from.is_owned() {
                        return Err(Error::InvalidState(format!(
                            "customer {} has an owner; use transfer to give it to someone else",
                            Self::label(&row)
                        )));
                    }
                    let i = row
                        .get("pool_id")
                        .as_id()
                        .and_then(|p| set.index(p))
                        .filter(|i| set.is_admin(*i, actor))
                        .ok_or_else(|| {
                            Error::Forbidden(format!(
                                "{} does not administer the pool of customer {}",
                                actor.display_name,
                                Self::label(&row)
                            ))
                        })?;
                    let pool = &set.pools[i].pool;
                    self.able_to_work_on(Entity::Customer, &row, &target, "assigned")
                        .await?;
                    self.check_caps(
                        &target.display_name,
                        pool,
                        &holding,
                        department.is_some(),
                        &row,
                    )?;
                    let guarded = Guarded::by(&set, &pool.limits, false);
                    let place = self
                        .give_to_holder(actor, &set, &row, "assign", &holding, department, guarded)
                        .await?;
                    Ok((place, guarded))
                }
                .await;
                match outcome {
                    Err(e) if is_holder_conflict(&e) && tries < HOLDER_TRIES => {
                        // Another claim or assignment to this user or
                        // department committed after the counts were read.
                        tries += 1;
                        match self.holding(&set, company, to.0, department).await {
                            Ok(h) => holding = h,
                            Err(e) => break Err(e),
                        }
                    }
                    Err(e) if is_holder_conflict(&e) => {
                        break Err(holders_busy(&target.display_name));
                    }
                    other => break other,
                }
            };
            match outcome {
                Ok((p, guarded)) => {
                    holding.took(p, guarded);
                    report.done.push(*id);
                }
                Err(e) => report.refused.push((*id, e.to_string())),
            }
        }
        Ok(report)
    }

    /// Creates customers straight into a pool's public area (pool admins
    /// who may create customers), all or none, with duplicate checks.
    pub async fn import_into_pool(
        &self,
        actor: &Actor,
        pool: PoolId,
        inputs: Vec<Fields>,
    ) -> Result<Vec<RecordId>> {
        let (set, i) = self.admin_pool(actor, pool).await?;
        if !actor.can(Entity::Customer, Action::Create) && !actor.is_admin() {
            return Err(Error::Forbidden(format!(
                "{} may not create customers",
                actor.display_name
            )));
        }
        let company = actor.company_id.0;
        let customs = self.custom_fields(actor, Entity::Customer).await?;
        let mut cs = ChangeSet::default();
        let mut ids = Vec::new();
        for fields in inputs {
            let (ops, id, payload, guards, _) = self
                .build_insert(
                    actor,
                    Entity::Customer,
                    &fields,
                    &customs,
                    None,
                    Some(pool.0),
                )
                .await?;
            cs.guards.extend(guards);
            cs.ops.extend(ops);
            cs.ops.push(self.move_insert(
                company,
                (id, 1),
                "import",
                None,
                Place::Public,
                Some(pool.0),
                None,
                None,
                Some(actor.user_id.0),
                None,
                Some(format!("imported into pool {}", set.pools[i].pool.name)),
            ));
            cs.audit.push(self.audit(
                Some(actor),
                company,
                Table::Customers,
                id,
                "create",
                crate::records::created_changes(&payload),
            ));
            cs.events.push(self.event(
                company,
                Table::Customers,
                id,
                "customer.created".into(),
                payload,
            ));
            ids.push(RecordId(id));
        }
        cs.guards
            .push(self.pool_alive_guard(company, &set.pools[i].pool));
        self.index_customer_keys(&mut cs).await?;
        self.apply(cs).await?;
        Ok(ids)
    }

    /// Locks or unlocks customers (锁定): locked customers are never
    /// recycled. Managers only: the actor must be allowed to transfer the
    /// customer and, unless an administrator, must not be its owner. A
    /// customer already locked (or unlocked) is refused as nothing to
    /// change, saying so, and nothing is written.
    pub async fn set_locked(&self, actor: &Actor, ids: &[RecordId], locked: bool) -> BatchReport {
        let ids = &crate::lifecycle::distinct_ids(ids);
        let mut report = BatchReport::default();
        for id in ids {
            let outcome: Result<()> = async {
                let row = self.customer_row(actor, *id).await?;
                if !may_lock(actor, &row) {
                    if self
                        .can_on_row(actor, Entity::Customer, Action::Read, &row)
                        .await?
                    {
                        return Err(Error::Forbidden(format!(
                            "{} may not {} customer {}: a manager of its owner does that",
                            actor.display_name,
                            if locked { "lock" } else { "unlock" },
                            Self::label(&row)
                        )));
                    }
                    return Err(Error::not_found(Entity::Customer, id));
                }
                if row.get("locked").as_bool() == Some(locked) {
                    return Err(Error::InvalidState(format!(
                        "customer {} {}; nothing changed ({}，未作更改)",
                        Self::label(&row),
                        if locked {
                            "is locked already"
                        } else {
                            "is not locked"
                        },
                        if locked { "已锁定" } else { "未锁定" }
                    )));
                }
                // A lock keeps a customer with its holder: a public one has
                // none (a claim would end the lock at once).
                if locked && row.get("owner_id").is_null() {
                    return Err(Error::InvalidState(format!(
                        "customer {} is in a public pool (公海), held by nobody: a lock keeps a \
                         customer with its holder; assign it first (公海客户不能锁定)",
                        Self::label(&row)
                    )));
                }
                let mut cs = ChangeSet::default();
                cs.ops.push(Op::Update {
                    table: Table::Customers,
                    id: id.0,
                    expected_version: row.version(),
                    values: vec![
                        ("locked", locked.into()),
                        ("updated_at", Value::Timestamp(self.now())),
                    ],
                });
                let action = if locked { "lock" } else { "unlock" };
                cs.audit.push(self.audit(
                    Some(actor),
                    actor.company_id.0,
                    Table::Customers,
                    id.0,
                    action,
                    vec![FieldChange {
                        field: "locked".into(),
                        before: Json::Bool(!locked),
                        after: Json::Bool(locked),
                    }],
                ));
                cs.events.push(self.event(
                    actor.company_id.0,
                    Table::Customers,
                    id.0,
                    format!("customer.{action}ed"),
                    json!({"code": row.get("code").to_json(), "version": row.version() + 1}),
                ));
                self.apply(cs).await
            }
            .await;
            match outcome {
                Ok(()) => report.done.push(*id),
                Err(e) => report.refused.push((*id, e.to_string())),
            }
        }
        report
    }

    /// The operations recording sales activity on a customer row: the
    /// customer update and, when a deal moves an owned customer to the
    /// closed-deal customers, the pool history row. For the sales module to
    /// add to its own change sets (opportunity created, won, closed …),
    /// with the customer's event and audit entry from
    /// [`announce_sales_activity`](Crm::announce_sales_activity) when
    /// there are any operations.
    pub(crate) fn sales_activity_ops(
        &self,
        actor: Option<&Actor>,
        row: &Row,
        activity: &SalesActivity,
    ) -> Result<(Vec<Op>, Vec<FieldChange>)> {
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        let mut changes = Vec::new();
        let mut later = |name: &'static str,
                         t: Option<DateTime<Utc>>,
                         values: &mut Vec<(&'static str, Value)>| {
            if let Some(t) = t
                && row.get(name).as_timestamp().is_none_or(|b| t > b)
            {
                changes.push(FieldChange {
                    field: name.into(),
                    before: row.get(name).to_json(),
                    after: Value::Timestamp(t).to_json(),
                });
                values.push((name, Value::Timestamp(t)));
            }
        };
        later("last_opportunity_at", activity.opportunity_at, &mut values);
        later("closed_at", activity.deal_closed_at, &mut values);
        if let Some(last) = activity.last_opportunity_is
            && row.get("last_opportunity_at").as_timestamp() != last
        {
            let after = last.map_or(Value::Null, Value::Timestamp);
            changes.push(FieldChange {
                field: "last_opportunity_at".into(),
                before: row.get("last_opportunity_at").to_json(),
                after: after.to_json(),
            });
            values.push(("last_opportunity_at", after));
        }
        if let Some(n) = activity.open_opportunities {
            if n < 0 {
                return Err(Error::invalid("open_opportunities", "cannot be negative"));
            }
            if row.get("open_opportunities").as_int() != Some(n) {
                changes.push(FieldChange {
                    field: "open_opportunities".into(),
                    before: row.get("open_opportunities").to_json(),
                    after: json!(n),
                });
                values.push(("open_opportunities", Value::Int(n)));
            }
        }
        let mut ops = Vec::new();
        let place = Place::of_row(row);
        if activity.deal_closed_at.is_some() && place == Place::Private {
            values.push(("place", Place::Deal.name().into()));
            changes.push(FieldChange {
                field: "place".into(),
                before: json!(place.name()),
                after: json!(Place::Deal.name()),
            });
            let owner = row.get("owner_id").as_id();
            ops.push(self.move_insert(
                row.get("company_id").as_id().unwrap_or_default(),
                (row.id(), row.version() + 1),
                "deal",
                Some(place),
                Place::Deal,
                row.get("pool_id").as_id(),
                owner,
                owner,
                actor.map(|a| a.user_id.0),
                None,
                Some("deal closed".into()),
            ));
        }
        if !values.is_empty() {
            values.push(("updated_at", Value::Timestamp(self.now())));
            ops.insert(
                0,
                Op::Update {
                    table: Table::Customers,
                    id: row.id(),
                    expected_version: row.version(),
                    values,
                },
            );
        }
        Ok((ops, changes))
    }

    /// A customer the actor may record sales activity on: readable, live,
    /// and one they may edit.
    async fn sales_activity_row(&self, actor: &Actor, id: RecordId) -> Result<Row> {
        let row = self.readable_row(actor, Entity::Customer, id).await?;
        if !row.get("deleted_at").is_null() {
            return Err(Error::InvalidState(format!(
                "customer {} is in the recycle bin",
                Self::label(&row)
            )));
        }
        if !row.get("archived_at").is_null() {
            return Err(Self::archived_refusal(Entity::Customer, &row));
        }
        if !self
            .can_on_row(actor, Entity::Customer, Action::Update, &row)
            .await?
        {
            return Err(Error::Forbidden(format!(
                "{} may not update customer {}",
                actor.display_name,
                Self::label(&row)
            )));
        }
        Ok(row)
    }

    /// Records sales activity on a customer (the sales module calls this, or
    /// adds `Crm::sales_activity_ops` to its own change sets): the actor
    /// must be allowed to edit the customer.
    pub async fn record_sales_activity(
        &self,
        actor: &Actor,
        id: RecordId,
        activity: SalesActivity,
    ) -> Result<()> {
        let row = self.sales_activity_row(actor, id).await?;
        let (ops, changes) = self.sales_activity_ops(Some(actor), &row, &activity)?;
        if ops.is_empty() {
            return Ok(());
        }
        let mut cs = ChangeSet {
            ops,
            ..ChangeSet::default()
        };
        self.announce_sales_activity(actor, &row, changes, &mut cs);
        self.apply(cs).await
    }

    /// Adds to a change set that carries [`sales_activity_ops`]
    /// (Crm::sales_activity_ops) of `row` the customer's event and audit
    /// entry: `customer.deal_closed` (audit `deal`) when the deal date
    /// changed, else `customer.sales_activity`, with the customer's code,
    /// the field changes and the version the update gives it.
    pub(crate) fn announce_sales_activity(
        &self,
        actor: &Actor,
        row: &Row,
        changes: Vec<FieldChange>,
        cs: &mut ChangeSet,
    ) {
        let deal = changes.iter().any(|c| c.field == "closed_at");
        cs.events.push(
            self.event(
                actor.company_id.0,
                Table::Customers,
                row.id(),
                if deal {
                    "customer.deal_closed"
                } else {
                    "customer.sales_activity"
                }
                .into(),
                json!({
                    "code": row.get("code").to_json(),
                    "changes": &changes,
                    "version": row.version() + 1,
                }),
            ),
        );
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Customers,
            row.id(),
            if deal { "deal" } else { "sales_activity" },
            changes,
        ));
    }

    /// Marks a customer as closed-deal (成交) now or at `at`: it moves to the
    /// closed-deal customers and the "no deal" rules stop counting. A deal
    /// date later than today (in the company's time zone) or before the
    /// customer was created is refused; so is one that changes nothing (a
    /// deal no earlier is already recorded), saying so — a deal now too. A
    /// later deal of a closed-deal customer is a new deal: it moves the
    /// deal date.
    pub async fn mark_deal(
        &self,
        actor: &Actor,
        id: RecordId,
        at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        // A deal is its holder's: a public customer, held by nobody, is
        // claimed (or assigned) first, and its deal then marked with it.
        let held = self.sales_activity_row(actor, id).await?;
        if held.get("owner_id").is_null() {
            return Err(Error::InvalidState(format!(
                "customer {} is in a public pool (公海), held by nobody: claim or assign it \
                 before marking a deal (公海客户请先领取或分配)",
                Self::label(&held)
            )));
        }
        // A deal now is dated now, and refused as a dated one is when it
        // changes nothing (a deal already recorded at this very time).
        let at = at.unwrap_or_else(|| self.now());
        let row = held;
        let label = Self::label(&row);
        let today = self.local_date(self.now());
        if self.local_date(at) > today {
            return Err(Error::invalid(
                "at (成交日期)",
                format!(
                    "{} is in the future: a deal is marked at the latest today ({today}) \
                     (成交日期不能晚于今天)",
                    self.local_date(at)
                ),
            ));
        }
        // Later today is now, at the latest.
        let mut at = at.min(self.now());
        if let Some(created) = row.get("created_at").as_timestamp()
            && at < created
        {
            // The day it was created: when it was created, at the earliest.
            if self.local_date(at) == self.local_date(created) {
                at = created;
            } else {
                return Err(Error::invalid(
                    "at (成交日期)",
                    format!(
                        "{} is before customer {label} was created ({}) (成交日期早于客户创建日期)",
                        self.local_date(at),
                        self.local_date(created)
                    ),
                ));
            }
        }
        let activity = SalesActivity {
            deal_closed_at: Some(at),
            last_opportunity_is: None,
            ..SalesActivity::default()
        };
        let (ops, _) = self.sales_activity_ops(Some(actor), &row, &activity)?;
        if ops.is_empty() {
            let shown = crate::records::filterable(actor, Entity::Customer, "closed_at");
            return Err(Error::InvalidState(
                match row.get("closed_at").as_timestamp() {
                    Some(closed) if shown => format!(
                        "customer {label} already has a deal closed on {}, no earlier than {}; \
                     nothing changed (已有不早于该日期的成交，未作更改)",
                        self.local_date(closed),
                        self.local_date(at)
                    ),
                    _ => format!(
                        "customer {label} already has a deal no earlier than that; nothing \
                     changed (已有不早于该日期的成交，未作更改)"
                    ),
                },
            ));
        }
        self.record_sales_activity(actor, id, activity).await
    }

    /// The pool history of a customer, oldest first: readable customers, and
    /// customers in a pool the actor belongs to. A recycling's reason names
    /// the dates and the level it was computed from: it is left out for an
    /// actor from whom a field rule hides or masks any of them.
    pub async fn pool_history(&self, actor: &Actor, id: RecordId) -> Result<Vec<PoolMove>> {
        self.customer_for_pool_view(actor, id).await?;
        let sight = Sight::of(actor);
        // A recycling's reason names the dates (and the level) its rule
        // counted from: shown to who may read those, the rule's own.
        let set = if sight == Sight::ALL {
            None
        } else {
            Some(self.pool_set(actor.company_id.0).await?)
        };
        let shows = |rule: RuleId| {
            set.as_ref()
                .is_none_or(|set| reason_shown(set, sight, rule))
        };
        let mut sel = Select::all(Table::PoolMoves, actor.company_id.0, self.now());
        sel.filter = eq("customer_id", Value::Id(id.0));
        sel.sort = vec![
            Sort {
                col: col("created_at"),
                desc: false,
            },
            Sort {
                col: col("customer_version"),
                desc: false,
            },
        ];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(move_from_row)
            .map(|mut m| {
                if m.rule_id.is_some_and(|r| !shows(r)) {
                    m.reason = None;
                }
                m
            })
            .collect())
    }

    /// Leaves out of a customer's history (its audit `entries`) the reasons
    /// of recyclings that [`Crm::pool_history`] would not show the actor:
    /// such a reason names the dates (and the level) its rule counted from.
    /// A recycling's entry is matched to its pool move by the reason they
    /// share; one without a known rule loses its reason.
    pub(crate) async fn hide_recycle_reasons(
        &self,
        actor: &Actor,
        customer: Uuid,
        entries: &mut [AuditEntry],
    ) -> Result<()> {
        let sight = Sight::of(actor);
        let has_reason = |e: &AuditEntry| e.changes.iter().any(|c| c.field == "reason");
        if sight == Sight::ALL
            || !entries
                .iter()
                .any(|e| e.action == "recycle" && has_reason(e))
        {
            return Ok(());
        }
        let set = self.pool_set(actor.company_id.0).await?;
        let mut sel = Select::all(Table::PoolMoves, actor.company_id.0, self.now());
        sel.filter = Filter::And(vec![
            eq("customer_id", Value::Id(customer)),
            eq("action", "recycle"),
        ]);
        let moves: Vec<PoolMove> = self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(move_from_row)
            .collect();
        for e in entries.iter_mut().filter(|e| e.action == "recycle") {
            e.changes.retain(|c| {
                if c.field != "reason" {
                    return true;
                }
                let Some(text) = c.after.as_str() else {
                    return false;
                };
                let mut rules = moves
                    .iter()
                    .filter(|m| m.reason.as_deref() == Some(text))
                    .map(|m| m.rule_id)
                    .peekable();
                rules.peek().is_some()
                    && rules.all(|r| r.is_some_and(|r| reason_shown(&set, sight, r)))
            });
        }
        Ok(())
    }

    /// A customer the actor may look at: readable by scope or share, or in
    /// the public area of a pool the actor belongs to (the invalid area of a
    /// pool the actor administers).
    pub(crate) async fn customer_for_pool_view(&self, actor: &Actor, id: RecordId) -> Result<Row> {
        if let Ok(row) = self.readable_row(actor, Entity::Customer, id).await {
            return Ok(row);
        }
        let row = self
            .store
            .get(Table::Customers, id.0)
            .await?
            .filter(|r| {
                r.get("company_id").as_id() == Some(actor.company_id.0)
                    && r.get("deleted_at").is_null()
            })
            .ok_or_else(|| Error::not_found(Entity::Customer, id))?;
        if !Place::of_row(&row).is_owned()
            && self.pool_set(actor.company_id.0).await?.shows(&row, actor)
        {
            return Ok(row);
        }
        Err(Error::not_found(Entity::Customer, id))
    }

    /// A customer row for a pool operation, when the actor may look at it
    /// (readable by scope or share, or shown through its pool, see
    /// [`PoolSet::shows`]); otherwise not found, as if it did not exist, so
    /// that no refusal tells anything about it.
    /// An archived customer the actor may look at is refused naming its
    /// state.
    async fn pool_customer_row(&self, actor: &Actor, set: &PoolSet, id: RecordId) -> Result<Row> {
        let row = self
            .store
            .get(Table::Customers, id.0)
            .await?
            .filter(|r| {
                r.get("company_id").as_id() == Some(actor.company_id.0)
                    && r.get("deleted_at").is_null()
            })
            .ok_or_else(|| Error::not_found(Entity::Customer, id))?;
        if set.shows(&row, actor)
            || self
                .can_on_row(actor, Entity::Customer, Action::Read, &row)
                .await?
        {
            if !row.get("archived_at").is_null() {
                return Err(Self::archived_refusal(Entity::Customer, &row));
            }
            Ok(row)
        } else {
            Err(Error::not_found(Entity::Customer, id))
        }
    }

    /// The next page (by id, after `after`) of the customers of pool `i`
    /// that may be due by `horizon`, optionally limited to a scope; `None`
    /// when done. The store narrows by place, lock, governance and each
    /// rule's earliest possible cut-off; the exact due times are computed
    /// per row.
    #[allow(clippy::too_many_arguments)]
    async fn sweep_candidates(
        &self,
        company: Uuid,
        set: &PoolSet,
        i: usize,
        horizon: DateTime<Utc>,
        scope: Scope,
        with_locked: bool,
        after: &mut Option<Vec<Value>>,
    ) -> Result<Option<Vec<Row>>> {
        if after.as_ref().is_some_and(Vec::is_empty) {
            return Ok(None);
        }
        let g = &set.pools[i];
        let mut rule_filters = Vec::new();
        for r in g.rules.iter().filter(|r| r.spec.enabled) {
            let n = r.min_days();
            if n == 0 {
                continue;
            }
            let cutoff = Value::Timestamp(horizon - days(n));
            let since_before = Filter::Or(vec![
                Filter::Cmp(col("owned_since"), CmpOp::Le, cutoff.clone()),
                Filter::And(vec![
                    Filter::IsNull(col("owned_since")),
                    Filter::Cmp(col("created_at"), CmpOp::Le, cutoff.clone()),
                ]),
            ]);
            let mut parts = vec![since_before];
            if r.spec.kind == RuleKind::NoFollowUp {
                parts.push(Filter::Or(vec![
                    Filter::IsNull(col("last_follow_up_at")),
                    Filter::Cmp(col("last_follow_up_at"), CmpOp::Le, cutoff),
                ]));
            }
            if r.spec.exempt_deals {
                parts.push(eq("place", Place::Private.name()));
            }
            if r.spec.exempt_open_opportunities {
                parts.push(Filter::Cmp(
                    col("open_opportunities"),
                    CmpOp::Le,
                    Value::Int(0),
                ));
            }
            rule_filters.push(Filter::And(parts));
        }
        if rule_filters.is_empty() {
            return Ok(None);
        }
        let mut members = Vec::new();
        if !g.users.is_empty() {
            members.push(Filter::In(
                col("owner_id"),
                g.users.iter().map(|u| Value::Id(*u)).collect(),
            ));
        }
        if !g.departments.is_empty() {
            members.push(Filter::In(
                col("department_id"),
                g.departments.iter().map(|d| Value::Id(*d)).collect(),
            ));
        }
        // Governed by its pool, or by membership when it names none or a
        // pool since deleted (see `PoolSet::governing`).
        let no_live_pool = Filter::Or(vec![
            Filter::IsNull(col("pool_id")),
            Filter::not_among(col("pool_id"), set.pools.iter().map(|p| p.pool.id.0)),
        ]);
        let governed = Filter::Or(vec![
            eq("pool_id", Value::Id(g.pool.id.0)),
            Filter::And(vec![no_live_pool, Filter::Or(members)]),
        ]);
        let mut sel = Select::all(Table::Customers, company, self.now());
        sel.scope = scope;
        sel.filter = Filter::And(vec![
            Filter::In(
                col("place"),
                vec![Place::Private.name().into(), Place::Deal.name().into()],
            ),
            if with_locked {
                Filter::True
            } else {
                eq("locked", false)
            },
            governed,
            Filter::Or(rule_filters),
        ]);
        // An explicit sort key (rather than the primary key's order) lets the
        // store pick the place index and sort the few candidates.
        sel.sort = vec![Sort {
            col: col("id"),
            desc: false,
        }];
        sel.paging = Paging::Keyset {
            after: after.take(),
            limit: 5000,
        };
        let page = self.store.select(&sel).await?;
        // An empty cursor marks the last page as read.
        *after = match page.rows.last() {
            Some(last) if page.has_more => Some(vec![Value::Id(last.id()), Value::Id(last.id())]),
            _ => Some(Vec::new()),
        };
        Ok((!page.rows.is_empty()).then_some(page.rows))
    }

    /// Of these customer rows, the ids of those the actor may read: by data
    /// scope or by a live share, as [`Crm::can_on_row`] decides, with one
    /// query for all the rows the scope alone does not cover.
    async fn readable_customers<'r>(
        &self,
        actor: &Actor,
        rows: impl Iterator<Item = &'r Row>,
    ) -> Result<HashSet<Uuid>> {
        let mut readable = HashSet::new();
        let mut rest = Vec::new();
        for row in rows {
            if actor.covers(Entity::Customer, Action::Read, row) {
                readable.insert(row.id());
            } else {
                rest.push(Value::Id(row.id()));
            }
        }
        let Some(scope) = actor.store_scope(Entity::Customer, Action::Read) else {
            return Ok(readable);
        };
        if rest.is_empty() {
            return Ok(readable);
        }
        let mut sel = Select::all(Table::Customers, actor.company_id.0, self.now());
        sel.scope = scope;
        sel.filter = Filter::In(col("id"), rest);
        readable.extend(self.store.select(&sel).await?.rows.iter().map(Row::id));
        Ok(readable)
    }

    fn sweep_item(
        &self,
        actor: &Actor,
        g: &Governed,
        row: &Row,
        rule: &RecycleRule,
        due: DateTime<Utc>,
        sight: Sight,
    ) -> SweepItem {
        // The reason and the date as the actor may see them.
        let (due, why) = match self.verdict(rule, row, sight) {
            Verdict::Due(_, shown, why) => (shown.then_some(due), why),
            Verdict::Exempt(why) | Verdict::Satisfied(why) => (None, why),
        };
        SweepItem {
            customer: RecordId(row.id()),
            code: row.get("code").as_text().map(str::to_string),
            name: crate::dedupe::shown_value(actor, Entity::Customer, "name", &text(row, "name"))
                .unwrap_or_default(),
            owner_id: row.get("owner_id").as_id().map(UserId),
            pool_id: g.pool.id,
            pool: g.pool.name.clone(),
            rule_id: rule.id,
            rule: rule.describe(),
            due_at: due,
            why,
        }
    }

    /// Runs the recycling rules (公海回收) at the clock's time: customers whose
    /// first rule is due go back to their pool's public area (owner cleared
    /// on the customer and its contacts, the previous owner kept for the
    /// cooldown), owners of customers due within the warning period are
    /// warned (event `customer.recycle_warning`, once per due date). Locked
    /// customers are never touched. Running it again changes nothing.
    ///
    /// Administrators sweep every pool, pool admins their own pools. With
    /// `dry_run`, nothing changes and `at` may name another moment: the
    /// report says per customer which rule fires and when. Administering a
    /// pool lets one sweep every customer it governs, not read them: the
    /// report lists the customers the actor may read (by data scope or a
    /// share, judged before anything moves; names shown as the actor's
    /// field rules say) and only counts the others
    /// ([`SweepReport::hidden`]), with no code, name, owner or id — a dry
    /// run and the sweep it previews alike.
    pub async fn sweep(&self, actor: &Actor, options: &SweepOptions) -> Result<SweepReport> {
        let now = self.now();
        if !options.dry_run && options.at.is_some_and(|a| a != now) {
            return Err(Error::invalid(
                "at",
                "only a dry run may look at another moment; a sweep runs at the clock's time",
            ));
        }
        let at = options.at.unwrap_or(now);
        let company = actor.company_id.0;
        let set = self.pool_set(company).await?;
        let pools: Vec<usize> = match options.pool {
            Some(p) => {
                let i = set.index(p.0).ok_or_else(|| Error::not_found("pool", p))?;
                if !set.is_admin(i, actor) {
                    return Err(Error::Forbidden(format!(
                        "{} does not administer pool {}",
                        actor.display_name, set.pools[i].pool.name
                    )));
                }
                vec![i]
            }
            None => {
                let mine: Vec<usize> = (0..set.pools.len())
                    .filter(|i| set.is_admin(*i, actor))
                    .collect();
                if mine.is_empty() && !actor.is_admin() {
                    return Err(Error::Forbidden(format!(
                        "{} administers no pool and may not run the sweep",
                        actor.display_name
                    )));
                }
                mine
            }
        };
        let mut report = SweepReport {
            at,
            dry_run: options.dry_run,
            recycled: Vec::new(),
            warned: Vec::new(),
            upcoming: Vec::new(),
            refused: Vec::new(),
            hidden: SweepHidden::default(),
        };
        let sight = Sight::of(actor);
        for i in pools {
            let g = &set.pools[i];
            let horizon = at + days(g.pool.limits.warn_days);
            let mut after = None;
            while let Some(rows) = self
                .sweep_candidates(company, &set, i, horizon, Scope::All, false, &mut after)
                .await?
            {
                let due: Vec<_> = rows
                    .iter()
                    .filter(|row| set.governing(row) == Some(i))
                    .filter_map(|row| {
                        self.first_due(&g.rules, row)
                            .filter(|(_, due, _)| *due <= horizon)
                            .map(|(rule, due, why)| (row, rule, due, why))
                    })
                    .collect();
                // Read before any move, so that a preview and the sweep it
                // previews list the same customers.
                let readable = self
                    .readable_customers(actor, due.iter().map(|(row, ..)| *row))
                    .await?;
                // A customer still owed money stays with its owner, as a
                // release keeps it (see `to_pool`): never recycled, nor
                // warned of; a due one is listed as refused, with why.
                let ids: Vec<Uuid> = due.iter().map(|(row, ..)| row.id()).collect();
                let kept = self.customers_kept_by_sales(company, &ids).await?;
                for (row, rule, due, why) in due {
                    let shown = readable.contains(&row.id());
                    let item = self.sweep_item(actor, g, row, rule, due, sight);
                    if let Some(by) = kept.get(&row.id()) {
                        if due <= at {
                            report.list(shown, Listed::Refused(kept_refusal(row, *by)), item);
                        }
                        continue;
                    }
                    if due <= at {
                        if options.dry_run {
                            report.list(shown, Listed::Recycled, item);
                            continue;
                        }
                        match self.recycle_one(company, &set, i, row, rule, why, at).await {
                            Ok(true) => report.list(shown, Listed::Recycled, item),
                            // Recycled or released by someone else meanwhile
                            // (another sweep at the same moment), or no
                            // longer due: nothing to do.
                            Ok(false) => {}
                            Err(e) => report.list(shown, Listed::Refused(e.to_string()), item),
                        }
                    } else {
                        if options.dry_run {
                            report.list(shown, Listed::Upcoming, item);
                            continue;
                        }
                        if row.get("recycle_warned_due").as_timestamp() == Some(due) {
                            continue;
                        }
                        let mut cs = ChangeSet::default();
                        cs.ops.push(Op::Update {
                            table: Table::Customers,
                            id: row.id(),
                            expected_version: row.version(),
                            values: vec![("recycle_warned_due", Value::Timestamp(due))],
                        });
                        cs.events.push(self.event(
                            company,
                            Table::Customers,
                            row.id(),
                            "customer.recycle_warning".into(),
                            json!({
                                "code": row.get("code").to_json(),
                                "owner_id": row.get("owner_id").to_json(),
                                "pool_id": g.pool.id,
                                "rule_id": rule.id,
                                "rule": rule.describe(),
                                "due_at": due,
                                "why": why,
                            }),
                        ));
                        match self.apply(cs).await {
                            Ok(()) => report.list(shown, Listed::Warned, item),
                            Err(e) => {
                                // Warned by another sweep at the same moment,
                                // or recycled, released or taken meanwhile:
                                // nothing to do.
                                if matches!(&e, Error::Conflict { entity, .. }
                                    if entity == Entity::Customer.name())
                                    && self
                                        .store
                                        .get(Table::Customers, row.id())
                                        .await?
                                        .is_none_or(|r| {
                                            !Place::of_row(&r).is_owned()
                                                || r.get("recycle_warned_due").as_timestamp()
                                                    == Some(due)
                                        })
                                {
                                    continue;
                                }
                                report.list(shown, Listed::Refused(e.to_string()), item)
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Recycles one due customer of pool `i` by `rule`. When the customer
    /// was changed since it was read (another sweep running at the same
    /// moment recycled it, its owner released it, edited it or logged a
    /// follow-up), it is read again: `false` when it is in a pool by now,
    /// locked, governed by another pool or no longer due at `at` (nothing
    /// to do), else its recycling is tried again with the rule due now.
    #[allow(clippy::too_many_arguments)]
    async fn recycle_one(
        &self,
        company: Uuid,
        set: &PoolSet,
        i: usize,
        row: &Row,
        rule: &RecycleRule,
        why: String,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let g = &set.pools[i];
        let (mut row, mut rule, mut why) = (row.clone(), rule, why);
        let mut tries = 1;
        loop {
            let mut cs = self
                .move_changes(
                    company,
                    &row,
                    &Move {
                        action: "recycle",
                        to: Place::Public,
                        owner: None,
                        pool: Some(&g.pool),
                        reason: Some(why.clone()),
                        rule: Some(rule),
                        actor: None,
                    },
                )
                .await?;
            // What keeps a customer with its owner (money owed, a document
            // awaiting approval), read before, is checked again as the
            // move commits: a payment voided or a document submitted
            // meanwhile keeps it.
            if row.get("owner_id").as_id().is_some() {
                cs.guards
                    .push(self.contracts_open_guard(company, &row, false));
                cs.guards
                    .extend(self.pending_documents_guards(company, &row));
            }
            match self.apply(cs).await {
                Err(Error::Conflict { entity, .. })
                    if entity == Entity::Customer.name() && tries < HOLDER_TRIES =>
                {
                    tries += 1;
                    let Some(fresh) =
                        self.store
                            .get(Table::Customers, row.id())
                            .await?
                            .filter(|r| {
                                r.get("company_id").as_id() == Some(company)
                                    && r.get("deleted_at").is_null()
                                    && r.get("archived_at").is_null()
                            })
                    else {
                        return Ok(false);
                    };
                    if !Place::of_row(&fresh).is_owned()
                        || fresh.get("locked").as_bool() == Some(true)
                        || set.governing(&fresh) != Some(i)
                    {
                        return Ok(false);
                    }
                    if let Some(by) = self
                        .customers_kept_by_sales(company, &[fresh.id()])
                        .await?
                        .get(&fresh.id())
                    {
                        return Err(Error::InvalidState(kept_refusal(&fresh, *by)));
                    }
                    match self.first_due(&g.rules, &fresh) {
                        Some((r, due, w)) if due <= at => {
                            (row, rule, why) = (fresh, r, w);
                        }
                        _ => return Ok(false),
                    }
                }
                other => return other.map(|()| true),
            }
        }
    }

    /// Customers the actor can see that their pools' rules would recycle
    /// within `days` (overdue ones included), soonest first. Only those
    /// whose due date the actor may see (a rule counting from a date or
    /// level a field rule hides from them lists nobody for them), and, for
    /// who may not see the lock, locked customers too.
    pub async fn about_to_be_recycled(
        &self,
        actor: &Actor,
        within_days: u32,
    ) -> Result<Vec<SweepItem>> {
        let company = actor.company_id.0;
        let set = self.pool_set(company).await?;
        let horizon = self.now() + days(within_days);
        let scope =
            actor
                .store_scope(Entity::Customer, Action::Read)
                .unwrap_or(Scope::Restricted {
                    owners: Vec::new(),
                    departments: Vec::new(),
                    shared_with: None,
                });
        let sight = Sight::of(actor);
        let mut out = Vec::new();
        for i in 0..set.pools.len() {
            let mut after = None;
            while let Some(rows) = self
                .sweep_candidates(
                    company,
                    &set,
                    i,
                    horizon,
                    scope.clone(),
                    !sight.locked,
                    &mut after,
                )
                .await?
            {
                let ids: Vec<Uuid> = rows.iter().map(Row::id).collect();
                let kept = self.customers_kept_by_sales(company, &ids).await?;
                for row in rows {
                    if set.governing(&row) != Some(i) || kept.contains_key(&row.id()) {
                        continue;
                    }
                    // Listed, and in order, by a due date the actor may see:
                    // one computed from a value hidden from them would tell
                    // it by the day the customer first appears. (Who may
                    // not see the lock sees locked customers listed too.)
                    if let Some((rule, due, _)) = self.first_due(&set.pools[i].rules, &row)
                        && due <= horizon
                        && matches!(self.verdict(rule, &row, sight), Verdict::Due(_, true, _))
                    {
                        out.push((
                            due,
                            self.sweep_item(actor, &set.pools[i], &row, rule, due, sight),
                        ));
                    }
                }
            }
        }
        out.sort_by_key(|(due, s)| (*due, s.customer));
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    /// Explains, rule by rule, whether and when a customer the actor can see
    /// would be recycled, evaluated at `at` (default now). Values a field
    /// rule hides or masks from the actor (the level, the place, the lock,
    /// the dates of the last follow-up, the claim, the latest opportunity
    /// and deal, the open opportunities) are named nowhere, nor due dates
    /// computed from them.
    pub async fn explain_recycling(
        &self,
        actor: &Actor,
        id: RecordId,
        at: Option<DateTime<Utc>>,
    ) -> Result<RecycleExplanation> {
        let row = self.customer_for_pool_view(actor, id).await?;
        let at = at.unwrap_or_else(|| self.now());
        let set = self.pool_set(actor.company_id.0).await?;
        let sight = Sight::of(actor);
        let place = Place::of_row(&row);
        let locked = row.get("locked").as_bool().unwrap_or(false);
        let gi = set.governing(&row);
        // Each outcome with its due time, shown or not.
        let mut outcomes: Vec<(Option<DateTime<Utc>>, RuleOutcome)> = Vec::new();
        // A lock exempts it from every rule: none is listed as firing or
        // due. (Who may not see the lock reads the rules' verdicts as for
        // any customer, with the summary's proviso.)
        let lock_shown = sight.locked && locked;
        if let Some(i) = gi
            && place.is_owned()
        {
            for r in &set.pools[i].rules {
                let (status, due, shown, why) = if !r.spec.enabled {
                    (
                        RuleStatus::Exempt,
                        None,
                        false,
                        "the rule is switched off".to_string(),
                    )
                } else if lock_shown {
                    (
                        RuleStatus::Exempt,
                        None,
                        false,
                        "it is locked (锁定): no rule recycles it".to_string(),
                    )
                } else {
                    match self.verdict(r, &row, sight) {
                        Verdict::Exempt(w) => (RuleStatus::Exempt, None, false, w),
                        Verdict::Satisfied(w) => (RuleStatus::Satisfied, None, false, w),
                        Verdict::Due(d, s, w) if d <= at => (RuleStatus::Fires, Some(d), s, w),
                        Verdict::Due(d, s, w) => (RuleStatus::Later, Some(d), s, w),
                    }
                };
                outcomes.push((
                    due,
                    RuleOutcome {
                        rule_id: r.id,
                        rule: r.describe(),
                        status,
                        due_at: due.filter(|_| shown),
                        why,
                    },
                ));
            }
        }
        // Owed money keeps it with its owner whatever the rules say.
        let kept = if place.is_owned() && gi.is_some() {
            self.customers_kept_by_sales(actor.company_id.0, &[row.id()])
                .await?
                .get(&row.id())
                .copied()
        } else {
            None
        };
        let owed = kept.is_some();
        let next = outcomes
            .iter()
            .filter(|_| !owed)
            .filter_map(|(due, o)| due.map(|d| (d, o)))
            .min_by_key(|(d, _)| *d)
            .map(|(_, o)| o.clone());
        let on = |o: &RuleOutcome| {
            o.due_at
                .map(|d| format!(" on {}", self.local_date(d)))
                .unwrap_or_default()
        };
        let summary = match (place.is_owned(), gi, &next) {
            (false, _, _) if sight.place => {
                format!("it is in {}, not held by anyone", place.name_zh())
            }
            (false, _, _) => "it is not held by anyone".to_string(),
            (true, None, _) => "no pool governs it, so no rule applies".to_string(),
            (true, Some(_), _) if lock_shown => "it is locked and is never recycled".to_string(),
            (true, Some(_), _) if kept == Some(crate::sales::contract::KeptBySales::OwedMoney) => {
                "it is still owed money on its contracts, so no rule recycles it until that is \
                 collected (or the contracts are terminated)"
                    .to_string()
            }
            (true, Some(_), _) if owed => "a quote or contract of it awaits approval, so no rule \
                 recycles it until the approval is decided or withdrawn"
                .to_string(),
            (true, Some(_), None) => "no rule will recycle it".to_string(),
            // Who may not see the lock reads the rules' verdicts with the
            // proviso, locked or not: the summary must not tell them apart.
            (true, Some(_), Some(o)) if !sight.locked => format!(
                "'{}' {} it{} unless it is locked ({})",
                o.rule,
                if o.status == RuleStatus::Fires {
                    "recycles"
                } else {
                    "would recycle"
                },
                on(o),
                o.why
            ),
            (true, Some(_), Some(o)) if o.status == RuleStatus::Fires => match o.due_at {
                Some(d) => format!("'{}' fires: due {} ({})", o.rule, self.local_date(d), o.why),
                None => format!("'{}' fires ({})", o.rule, o.why),
            },
            (true, Some(_), Some(o)) => {
                format!("'{}' would recycle it{} ({})", o.rule, on(o), o.why)
            }
        };
        Ok(RecycleExplanation {
            customer: id,
            at,
            place: sight.place.then_some(place),
            locked: sight.locked.then_some(locked),
            pool: gi
                .filter(|_| sight.pool)
                .map(|i| (set.pools[i].pool.id, set.pools[i].pool.name.clone())),
            outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
            next,
            summary,
        })
    }

    /// The pool a customer row is governed by, with its name.
    pub(crate) async fn governing_pool(
        &self,
        company: Uuid,
        row: &Row,
    ) -> Result<Option<(PoolId, String)>> {
        let set = self.pool_set(company).await?;
        Ok(set
            .governing(row)
            .map(|i| (set.pools[i].pool.id, set.pools[i].pool.name.clone())))
    }

    /// How many customers are in the public area of a pool the actor
    /// belongs to and, for its admins (who alone may list them), in its
    /// invalid area.
    pub async fn pool_counts(&self, actor: &Actor, pool: PoolId) -> Result<BTreeMap<Place, u64>> {
        let set = self.pool_set(actor.company_id.0).await?;
        let i = set
            .index(pool.0)
            .filter(|i| set.is_member(*i, actor))
            .ok_or_else(|| Error::not_found("pool", pool))?;
        let places: &[Place] = if set.is_admin(i, actor) {
            &[Place::Public, Place::Invalid]
        } else {
            &[Place::Public]
        };
        let mut out = BTreeMap::new();
        for &place in places {
            let mut sel = Select::all(Table::Customers, actor.company_id.0, self.now());
            sel.lifecycle = Lifecycle::Active;
            sel.filter = Filter::And(vec![
                eq("pool_id", Value::Id(pool.0)),
                eq("place", place.name()),
            ]);
            out.insert(place, self.count(sel).await?);
        }
        Ok(out)
    }
}

/// The audit change recording that a customer's lock (锁定) ended because
/// it left the owner the lock was granted for.
pub(crate) fn lock_ended_change() -> FieldChange {
    FieldChange {
        field: "locked".into(),
        before: Json::Bool(true),
        after: Json::Bool(false),
    }
}

/// Whether the actor may lock or unlock a customer against recycling: a
/// manager of its owner, who may transfer it and does not hold it, or an
/// administrator.
pub(crate) fn may_lock(actor: &Actor, row: &Row) -> bool {
    let own = row.get("owner_id").as_id() == Some(actor.user_id.0);
    actor.covers(Entity::Customer, Action::Transfer, row) && (!own || actor.is_admin())
}

/// Why the sweep leaves a due customer with its owner (see
/// [`Crm::customers_kept_by_sales`]).
fn kept_refusal(row: &Row, by: crate::sales::contract::KeptBySales) -> String {
    match by {
        crate::sales::contract::KeptBySales::OwedMoney => format!(
            "customer {} is still owed money on its contracts: it stays with its owner until \
             that is collected, or the contracts are terminated",
            Crm::label(row)
        ),
        crate::sales::contract::KeptBySales::PendingApproval => format!(
            "customer {} has a quote or contract awaiting approval: it stays with its owner \
             until the approval is decided or withdrawn",
            Crm::label(row)
        ),
    }
}

/// Customers created, per owner and department: how many, and the closed
/// deals among them (what the caps count; see [`Crm::creation_caps`]).
pub(crate) type CreatedPerOwner = BTreeMap<(Uuid, Option<Uuid>), (u64, u64)>;

/// Adds to `into` the customers `ops` create for an owner (not those created
/// into a pool's public area, which hold none); whether there were any.
pub(crate) fn count_created_customers(ops: &[Op], into: &mut CreatedPerOwner) -> bool {
    let mut any = false;
    for op in ops {
        let Op::Insert {
            table: Table::Customers,
            values,
        } = op
        else {
            continue;
        };
        let get = |k: &str| values.iter().find(|(c, _)| *c == k).map(|(_, v)| v);
        let Some(owner) = get("owner_id").and_then(Value::as_id) else {
            continue;
        };
        let department = get("department_id").and_then(Value::as_id);
        let e = into.entry((owner, department)).or_default();
        e.0 += 1;
        if get("closed_at").is_some_and(|v| !v.is_null()) {
            e.1 += 1;
        }
        any = true;
    }
    any
}
