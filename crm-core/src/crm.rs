//! The engine's entry point: [`Crm`] ties a [`Store`] and a [`Clock`] to the
//! domain rules. Every operation takes the acting user's [`Actor`].

use crate::auth::{Action, Actor, Role};
use crate::clock::{Clock, new_uuid_in};
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::ids::{CompanyId, DepartmentId, RoleId, UserId};
use crate::schema::Table;
use crate::store::{
    AuditEntry, ChangeSet, FieldChange, Filter, NewEvent, Op, Payload, Row, Select, Store,
};
use crate::value::Value;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct CrmConfig {
    /// The offset of the companies' local time from UTC, for dates in codes
    /// (`KH-20261127-0001`) and for date-only inputs. Default UTC+8.
    pub utc_offset: FixedOffset,
    /// Whether a refused duplicate names the owner of the existing record
    /// even when the actor cannot see it. Default false: the message says
    /// only that someone else owns it.
    pub reveal_duplicate_owner: bool,
    /// Failed logins before an account is locked. Default 5.
    pub max_failed_logins: i64,
    /// How long a lockout lasts. Default 15 minutes.
    pub lockout: chrono::Duration,
    /// Minimum password length. Default 8.
    pub min_password_len: usize,
}

impl Default for CrmConfig {
    fn default() -> Self {
        CrmConfig {
            utc_offset: FixedOffset::east_opt(8 * 3600)
                .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset")),
            reveal_duplicate_owner: false,
            max_failed_logins: 5,
            lockout: chrono::Duration::minutes(15),
            min_password_len: 8,
        }
    }
}

/// The CRM engine.
#[derive(Clone)]
pub struct Crm {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: CrmConfig,
    /// Keeps the ids this engine makes within one millisecond in order.
    pub(crate) ids: Arc<crate::clock::IdContext>,
}

impl std::fmt::Debug for Crm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crm")
            .field("backend", &self.store.backend())
            .field("config", &self.config)
            .finish()
    }
}

impl Crm {
    /// An engine over a store with the given clock and default settings.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Crm {
        Crm::with_config(store, clock, CrmConfig::default())
    }

    /// An engine with explicit settings.
    pub fn with_config(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: CrmConfig) -> Crm {
        Crm {
            store,
            clock,
            config,
            ids: Arc::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &CrmConfig {
        &self.config
    }

    /// Now, from the injected clock.
    ///
    /// A host clock outside the years 1000 to 9999 (a broken one: dates,
    /// record codes and the stores keep four-digit years) is taken as the
    /// nearest end of that range.
    pub fn now(&self) -> DateTime<Utc> {
        // A leap second from the host's clock, as every store keeps it.
        let now = crate::clock::without_leap_second(self.clock.now());
        let first = NaiveDate::from_ymd_opt(1000, 1, 2)
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
        let last = NaiveDate::from_ymd_opt(9999, 12, 30)
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
        match (first, last) {
            (Some(first), _) if now < first => first,
            (_, Some(last)) if now > last => last,
            _ => now,
        }
    }

    /// Today in the companies' local time.
    pub fn today(&self) -> NaiveDate {
        self.now()
            .with_timezone(&self.config.utc_offset)
            .date_naive()
    }

    pub(crate) fn new_id(&self) -> Uuid {
        new_uuid_in(&self.ids, self.now())
    }

    /// Builds the actor for a user: roles, department subtree and
    /// subordinates. Refuses inactive or deleted users.
    pub async fn actor(&self, user_id: UserId) -> Result<Actor> {
        let row = self
            .store
            .get(Table::Users, user_id.0)
            .await?
            .filter(|r| r.get("deleted_at").is_null())
            .ok_or_else(|| Error::not_found("user", user_id))?;
        if row.get("active").as_bool() != Some(true) {
            return Err(Error::Forbidden(format!(
                "user {} is deactivated",
                row.get("username").as_text().unwrap_or_default()
            )));
        }
        let company = row.get("company_id").as_id().unwrap_or_default();
        let now = self.now();
        let role_ids = json_ids(row.get("role_ids"));
        let mut roles = if role_ids.is_empty() {
            Vec::new()
        } else {
            let mut sel = Select::all(Table::Roles, company, now);
            sel.filter = Filter::In(
                crate::store::Col::Column("id"),
                role_ids.iter().map(|u| Value::Id(*u)).collect(),
            );
            self.store
                .select(&sel)
                .await?
                .rows
                .iter()
                .map(role_from_row)
                .collect::<Result<Vec<_>>>()?
        };
        let department_id = row.get("department_id").as_id().map(DepartmentId);
        let departments = self
            .store
            .select(&Select::all(Table::Departments, company, now))
            .await?
            .rows;
        let department_tree = match department_id {
            Some(d) => subtree(
                d.0,
                departments
                    .iter()
                    .map(|r| (r.id(), r.get("parent_id").as_id())),
            )
            .into_iter()
            .map(DepartmentId)
            .collect(),
            None => Vec::new(),
        };
        let users = self
            .store
            .select(&Select::all(Table::Users, company, now))
            .await?
            .rows;
        let subordinates = subtree(
            user_id.0,
            users.iter().map(|r| (r.id(), r.get("superior_id").as_id())),
        )
        .into_iter()
        .filter(|u| *u != user_id.0)
        .map(UserId)
        .collect();
        // A user is held to the strictest field rules of the company's
        // roles on what none of their roles grants reading (what is shared
        // with them): all of it for a user without roles.
        let mut company_rules = if !roles.iter().any(|r| r.is_admin) {
            self.store
                .select(&Select::all(Table::Roles, company, now))
                .await?
                .rows
                .iter()
                .map(role_from_row)
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                // An administrator role's rules restrict no one.
                .filter(|r| !r.is_admin)
                .flat_map(|r| r.field_rules)
                .collect()
        } else {
            Vec::new()
        };
        // Rules stored naming a field by a label apply as by its name.
        self.canonical_rules(
            company,
            roles
                .iter_mut()
                .flat_map(|r| r.field_rules.iter_mut())
                .chain(company_rules.iter_mut())
                .collect(),
        )
        .await?;
        Ok(Actor {
            user_id,
            company_id: CompanyId(company),
            display_name: row
                .get("display_name")
                .as_text()
                .unwrap_or_default()
                .to_string(),
            department_id,
            roles,
            department_tree,
            subordinates,
            company_rules,
        })
    }

    /// The columns every new row starts with: id, company, version 1 and
    /// both timestamps set to now.
    pub(crate) fn new_row(&self, company: Uuid, id: Uuid) -> Vec<(&'static str, Value)> {
        let now = self.now();
        vec![
            ("id", Value::Id(id)),
            ("company_id", Value::Id(company)),
            ("version", Value::Int(1)),
            ("created_at", Value::Timestamp(now)),
            ("updated_at", Value::Timestamp(now)),
        ]
    }

    /// Reads a live row of the actor's company or fails with not found.
    pub(crate) async fn live_row(&self, actor: &Actor, table: Table, id: Uuid) -> Result<Row> {
        self.store
            .get(table, id)
            .await?
            .filter(|r| {
                r.get("company_id").as_id() == Some(actor.company_id.0)
                    && r.get("deleted_at").is_null()
            })
            .ok_or_else(|| Error::not_found(entity_name(table), id))
    }

    /// A guard that none of the rows `ids` of `table` is deleted when the
    /// change set commits, under `keys` (the keys deleting them takes): a
    /// write referring to them fails with `message` if one was deleted
    /// meanwhile.
    pub(crate) fn deleted_meanwhile_guard(
        &self,
        table: Table,
        company: Uuid,
        ids: &[Uuid],
        keys: Vec<String>,
        message: String,
    ) -> crate::store::Guard {
        let mut select = Select::all(table, company, self.now());
        select.lifecycle = crate::store::Lifecycle::Any;
        select.filter = crate::store::Filter::And(vec![
            crate::store::Filter::In(
                crate::store::Col::Column("id"),
                ids.iter().map(|id| Value::Id(*id)).collect(),
            ),
            crate::store::Filter::NotNull(crate::store::Col::Column("deleted_at")),
        ]);
        crate::store::Guard {
            keys,
            select,
            message,
            kind: crate::store::GuardKind::State,
        }
    }

    /// An audit entry by the actor.
    pub(crate) fn audit(
        &self,
        actor: Option<&Actor>,
        company: Uuid,
        table: Table,
        record: Uuid,
        action: &str,
        changes: Vec<FieldChange>,
    ) -> AuditEntry {
        AuditEntry {
            company_id: company,
            table,
            record_id: record,
            actor_id: actor.map(|a| a.user_id.0),
            at: self.now(),
            action: action.to_string(),
            changes,
        }
    }

    /// An outbox event.
    pub(crate) fn event(
        &self,
        company: Uuid,
        table: Table,
        record: Uuid,
        event_type: String,
        payload: impl Into<Payload>,
    ) -> NewEvent {
        NewEvent {
            company_id: company,
            event_type,
            table,
            record_id: record,
            payload: payload.into(),
            at: self.now(),
        }
    }

    /// Allocates the next human code for a document type, e.g.
    /// `KH-20261127-0001`. Codes restart each day and are never reused.
    pub async fn next_code(&self, company: CompanyId, prefix: &str) -> Result<String> {
        let day = self.today().format("%Y%m%d").to_string();
        let key = format!("{prefix}-{day}");
        let n = self.store.next_sequence(company.0, &key).await?;
        Ok(format!("{key}-{n:04}"))
    }

    /// Applies a change set, with the sort keys of the names and titles it
    /// writes filled in ([`fill_sort_keys`]).
    pub(crate) async fn apply(&self, mut changes: ChangeSet) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        fill_sort_keys(&mut changes.ops);
        match self.store.apply_owned(changes).await {
            Ok(()) => Ok(()),
            // A record changed meanwhile is named by its code (a row
            // without one keeps its id).
            Err(e @ crate::store::StoreError::Conflict { table, id, .. }) => {
                let code = match Entity::of_table(table) {
                    Some(_) => self
                        .store
                        .get(table, id)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|r| r.get("code").as_text().map(str::to_string)),
                    None => None,
                };
                Err(match (Error::from(e), code) {
                    (
                        Error::Conflict {
                            entity,
                            expected,
                            actual,
                            ..
                        },
                        Some(code),
                    ) => Error::Conflict {
                        entity,
                        id: code,
                        expected,
                        actual,
                    },
                    (e, _) => e,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The audit history of a record the actor can see, oldest first, as
    /// the actor's field rules show it: a hidden field's changes left out, a
    /// masked field's values masked. The history of a user, department,
    /// role, user group, custom field, approval flow or product is for those
    /// who manage such things (products: who may edit them), and a user's
    /// own for the user; it stays readable after such a thing is deleted.
    /// A record purged for good (or removed by an import's undo) keeps its
    /// history for administrators: who created, changed and purged it.
    pub async fn history(
        &self,
        actor: &Actor,
        entity: Entity,
        id: Uuid,
    ) -> Result<Vec<AuditEntry>> {
        if entity.is_record() {
            match self
                .get_record(actor, entity, crate::ids::RecordId(id))
                .await
            {
                // A public customer read through its pool (as its 360° view
                // shows it) keeps its past to those who hold or may read it
                // otherwise: earlier owners' values, transfers and shares
                // are not the pool's to show (its moves are in `pool
                // history`).
                Ok(r) if entity == Entity::Customer => {
                    if let Err(Error::NotFound { .. }) = self
                        .readable_row(actor, entity, crate::ids::RecordId(id))
                        .await
                    {
                        return Err(Error::Forbidden(format!(
                            "{} reads customer {} through its pool, not its history: a public \
                             customer's history is for who holds or may read it otherwise \
                             (公海客户的历史仅对可查看该客户的人可见; its moves are in `pool history`)",
                            actor.display_name,
                            r.code.as_deref().unwrap_or_default()
                        )));
                    }
                }
                Ok(_) => {}
                Err(Error::NotFound { .. })
                    if actor.is_admin() && self.store.get(entity.table(), id).await?.is_none() =>
                {
                    let entries = self.store.history(entity.table(), id).await?;
                    if entries.is_empty()
                        || entries.iter().any(|e| e.company_id != actor.company_id.0)
                    {
                        return Err(Error::not_found(entity_name(entity.table()), id));
                    }
                    return Ok(entries);
                }
                Err(e) => return Err(e),
            }
        } else {
            // A deleted department, role or group keeps its history: who
            // deleted it, and what it was.
            self.store
                .get(entity.table(), id)
                .await?
                .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
                .ok_or_else(|| Error::not_found(entity_name(entity.table()), id))?;
            let may = actor.can(entity, Action::Manage)
                || (entity == Entity::Product && actor.can(entity, Action::Update))
                || (entity == Entity::User && id == actor.user_id.0);
            if !may {
                return Err(Error::Forbidden(format!(
                    "{} may not read the history of {entity} records",
                    actor.display_name
                )));
            }
            // A scoped `user:manage` covers the users of the actor's branch.
            if entity == Entity::User
                && id != actor.user_id.0
                && let Some(scope) = actor.scope_for(Entity::User, Action::Manage)
            {
                let u = self.user(actor, UserId(id)).await?;
                if !crate::org::user_in_scope(
                    actor,
                    scope,
                    Some(u.id),
                    u.department_id,
                    u.superior_id,
                ) {
                    return Err(Error::Forbidden(format!(
                        "{} may not read the history of user '{}', outside the users they manage",
                        actor.display_name, u.username
                    )));
                }
            }
        }
        let mut entries = self.store.history(entity.table(), id).await?;
        // Who else the record is shared with is for those who manage it, as
        // `list_shares` has it: anyone else reading the history sees the
        // entries of their own share only.
        let sees_all = if entity.is_record() {
            match self
                .readable_row(actor, entity, crate::ids::RecordId(id))
                .await
            {
                Ok(row) => crate::lifecycle::sees_all_shares(actor, entity, &row),
                // Read another way (an administrator reading a purged
                // record returned above; a pool member is refused above):
                // only an administrator sees every share.
                Err(_) => actor.is_admin(),
            }
        } else {
            true
        };
        if !sees_all {
            let own = self
                .username_of(Some(actor.user_id.0))
                .await
                .map(|u| format!("share:{u}"));
            entries.retain_mut(|e| {
                let had = !e.changes.is_empty();
                e.changes.retain(|c| {
                    c.field != "shares"
                        && (!c.field.starts_with("share:") || Some(&c.field) == own.as_ref())
                });
                !(had && e.changes.is_empty() && matches!(e.action.as_str(), "share" | "unshare"))
            });
        }
        if (entity.is_record() || entity == Entity::Product)
            && !actor.restricted_fields(entity).is_empty()
        {
            // An edit that changed nothing but hidden fields is left out
            // whole: an empty entry would still tell that something the
            // actor may not see changed then.
            entries.retain_mut(|e| {
                let had = !e.changes.is_empty();
                e.changes = std::mem::take(&mut e.changes)
                    .into_iter()
                    .filter_map(|c| visible_change(actor, entity, c))
                    .collect();
                !(had && e.changes.is_empty() && e.action == "update")
            });
            // A recycling's reason names the values its rule counted from.
            if entity == Entity::Customer {
                self.hide_recycle_reasons(actor, id, &mut entries).await?;
            }
        }
        Ok(entries)
    }

    /// Outbox events not yet acknowledged by `consumer`, oldest first. Each
    /// event is delivered again until acknowledged (at least once).
    pub async fn pending_events(
        &self,
        consumer: &str,
        limit: u64,
    ) -> Result<Vec<crate::store::OutboxEvent>> {
        consumer_name(consumer)?;
        Ok(self.store.outbox_pending(consumer, limit).await?)
    }

    /// Outbox events of one company not yet acknowledged by `consumer` for
    /// that company, oldest first: how a company's administrator reads the
    /// queue every company of the database shares. Its position is the
    /// consumer's own for that company ([`company_consumer`]), apart from
    /// the position [`Crm::pending_events`] reads from, so acknowledging a
    /// company's events ([`Crm::ack_events_of`]) never passes over another
    /// company's.
    pub async fn pending_events_of(
        &self,
        consumer: &str,
        company: CompanyId,
        limit: u64,
    ) -> Result<Vec<crate::store::OutboxEvent>> {
        consumer_name(consumer)?;
        Ok(self
            .store
            .outbox_pending_of(&company_consumer(consumer, company), company.0, limit)
            .await?)
    }

    /// Acknowledges every event of one company up to `seq` for `consumer`
    /// (its position for that company, see [`Crm::pending_events_of`]). A
    /// number past the newest event is refused, as by [`Crm::ack_events`].
    pub async fn ack_events_of(&self, consumer: &str, company: CompanyId, seq: i64) -> Result<()> {
        consumer_name(consumer)?;
        self.ack_at(&company_consumer(consumer, company), seq).await
    }

    /// Acknowledges every event up to `seq` for `consumer`. A number past
    /// the newest event is refused: acknowledged, it would skip events not
    /// written yet, which the consumer would then never receive.
    pub async fn ack_events(&self, consumer: &str, seq: i64) -> Result<()> {
        consumer_name(consumer)?;
        self.ack_at(consumer, seq).await
    }

    /// Moves the position kept under `cursor` to `seq`, unless past the
    /// newest event.
    async fn ack_at(&self, cursor: &str, seq: i64) -> Result<()> {
        if seq < 0 {
            return Err(Error::invalid(
                "seq",
                format!("{seq} is not an event's position: positions start at 1"),
            ));
        }
        let last = self.store.outbox_last_seq().await?;
        if seq > last {
            return Err(Error::invalid(
                "seq",
                format!(
                    "no event {seq} has been written (the newest is {last}): acknowledge the \
                     events received"
                ),
            ));
        }
        Ok(self.store.outbox_ack(cursor, seq).await?)
    }
}

/// Refuses a consumer name that is blank or holds `@`, which separates a
/// consumer from the company of a position of its own
/// ([`company_consumer`]): `erp@<company id>` given as a name would share
/// that company's position.
fn consumer_name(consumer: &str) -> Result<()> {
    crate::validate::refuse_nul("consumer", [consumer])?;
    if consumer.trim().is_empty() || consumer.contains('@') {
        return Err(Error::invalid(
            "consumer",
            format!("'{consumer}' is not a consumer name: give a name without '@'"),
        ));
    }
    Ok(())
}

/// The name under which a consumer's position in one company's events is
/// kept: `consumer@company-id`.
pub fn company_consumer(consumer: &str, company: CompanyId) -> String {
    format!("{consumer}@{}", company.0)
}

/// How many times a write given no expected version (a follow-up, a
/// payment, a claim, a transfer …) is made again, on the records read
/// again, after colleagues' writes to the same records committed first:
/// each failed try means one of theirs landed, so this many is enough for
/// a dozen or so people at one record at once before the conflict is
/// reported.
pub(crate) const WRITE_TRIES: u32 = 16;

pub(crate) fn entity_name(table: Table) -> String {
    if let Some(e) = Entity::of_table(table) {
        return e.name().to_string();
    }
    // What people call the rows of the other tables (internal ones keep
    // their table's name).
    match table {
        Table::Companies => "company",
        Table::UserGroups => "user group",
        Table::CustomFields => "custom field",
        Table::Picklists => "option list",
        Table::Shares => "share",
        Table::Imports => "import",
        Table::ImportItems => "import row",
        Table::ApprovalInstances => "approval",
        Table::Pools => "pool",
        Table::PoolRules => "pool rule",
        Table::PoolMoves => "pool move",
        Table::ProductCategories => "product category",
        Table::Pipelines => "pipeline",
        Table::PaymentPlans => "payment plan",
        Table::Payments => "payment",
        Table::Invoices => "invoice",
        Table::Deliveries => "delivery",
        other => other.name(),
    }
    .to_string()
}

/// Ids held in a JSON array column.
pub(crate) fn json_ids(v: &Value) -> Vec<Uuid> {
    v.as_json()
        .and_then(|j| j.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// The node and everything below it in a parent relation.
pub(crate) fn subtree(root: Uuid, edges: impl Iterator<Item = (Uuid, Option<Uuid>)>) -> Vec<Uuid> {
    let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (id, parent) in edges {
        if let Some(p) = parent {
            children.entry(p).or_default().push(id);
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            for id in c {
                if !out.contains(id) {
                    out.push(*id);
                }
            }
        }
        i += 1;
    }
    out
}

pub(crate) fn role_from_row(r: &Row) -> Result<Role> {
    let perms = r.get("permissions").as_json().cloned().unwrap_or_default();
    let rules = r.get("field_rules").as_json().cloned().unwrap_or_default();
    Ok(Role {
        id: RoleId(r.id()),
        name: r.get("name").as_text().unwrap_or_default().to_string(),
        is_admin: r.get("is_admin").as_bool().unwrap_or(false),
        permissions: serde_json::from_value(perms).map_err(|e| {
            Error::InvalidState(format!("role {} has unreadable permissions: {e}", r.id()))
        })?,
        field_rules: serde_json::from_value(rules).map_err(|e| {
            Error::InvalidState(format!("role {} has unreadable field rules: {e}", r.id()))
        })?,
        version: r.version(),
    })
}

/// An audit change as the actor may see it: `None` for a hidden field,
/// masked values for a masked one; a change of the whole custom object
/// (a merge) loses its hidden keys and masks its masked ones.
fn visible_change(actor: &Actor, entity: Entity, mut c: FieldChange) -> Option<FieldChange> {
    use crate::auth::FieldAccess;
    use crate::entity::MaskStyle;
    if c.field == "custom" {
        for side in [&mut c.before, &mut c.after] {
            if let serde_json::Value::Object(m) = side {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    match actor.field_access(entity, &format!("custom.{k}")) {
                        FieldAccess::Hidden => {
                            m.remove(&k);
                        }
                        FieldAccess::Masked => {
                            if let Some(v) = m.remove(&k) {
                                m.insert(k, crate::records::mask_json(MaskStyle::Text, v));
                            }
                        }
                        FieldAccess::Full | FieldAccess::ReadOnly => {}
                    }
                }
            }
        }
        return Some(c);
    }
    match actor.field_access(entity, &c.field) {
        FieldAccess::Hidden => None,
        FieldAccess::Masked => {
            let style = entity
                .field(&c.field)
                .map(crate::entity::FieldDef::mask_style)
                .unwrap_or(MaskStyle::Text);
            c.before = crate::records::mask_json(style, c.before);
            c.after = crate::records::mask_json(style, c.after);
            Some(c)
        }
        FieldAccess::Full | FieldAccess::ReadOnly => Some(c),
    }
}

/// The stored sort key of a name or title: its
/// [`sort_key`](crate::pinyin::sort_key), NULL without one.
pub(crate) fn sort_key_value(text: Option<&str>) -> Value {
    text.map_or(Value::Null, |t| Value::Text(crate::pinyin::sort_key(t)))
}

/// Sets the sort key ([`SORT_KEYS`](crate::schema::SORT_KEYS)) of every
/// insert and update in `ops` that sets a column lists sort by one: the
/// text's [`sort_key`](crate::pinyin::sort_key), or NULL with the text. Every
/// write of the engine passes here ([`Crm::apply`]), so records, sales
/// documents, products, imports, merges and undos all keep their keys
/// without computing them themselves.
pub(crate) fn fill_sort_keys(ops: &mut [Op]) {
    for op in ops {
        let (Op::Insert { table, values } | Op::Update { table, values, .. }) = op else {
            continue;
        };
        for (t, source, key) in crate::schema::SORT_KEYS {
            if t != table {
                continue;
            }
            let Some(text) = values.iter().find(|(c, _)| c == source).map(|(_, v)| v) else {
                continue;
            };
            let sorted = sort_key_value(text.as_text());
            match values.iter_mut().find(|(c, _)| c == key) {
                Some((_, v)) => *v = sorted,
                None => values.push((key, sorted)),
            }
        }
    }
}
