//! Record lifecycle: logical delete with restore and purge, archive to
//! history, transfer of ownership and sharing — single and in batches that
//! report record by record.

use crate::auth::{Action, Actor};
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::ids::{RecordId, UserId};
use crate::records::{BatchReport, Share, ShareAccess};
use crate::schema::Table;
use crate::store::{ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, Lifecycle, Op, Row, Select};
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// How a follow-up changes among its customer's live follow-ups, for
/// [`Crm::follow_up_dates`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum FollowUpChange<'a> {
    /// Deleted or purged: it leaves them.
    Gone,
    /// Restored: it comes back.
    Back,
    /// Its time or next follow-up date edited.
    Edited {
        /// The follow-up as it will be stored.
        after: &'a Row,
        /// Whether the editor may plan the customer's next follow-up (may
        /// edit the customer): if not, the date stays.
        plans: bool,
    },
}

/// What a lifecycle step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Delete,
    Restore,
    Purge,
    Archive,
    Unarchive,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Delete => "delete",
            Step::Restore => "restore",
            Step::Purge => "purge",
            Step::Archive => "archive",
            Step::Unarchive => "unarchive",
        }
    }

    fn event(self) -> &'static str {
        match self {
            Step::Delete => "deleted",
            Step::Restore => "restored",
            Step::Purge => "purged",
            Step::Archive => "archived",
            Step::Unarchive => "unarchived",
        }
    }
}

/// How many times an operation given no version (a transfer, a share) is
/// tried on a record that others keep changing meanwhile before the
/// conflict is reported.
const STALE_TRIES: u32 = crate::crm::WRITE_TRIES;

impl Crm {
    async fn owned_row(&self, actor: &Actor, entity: Entity, id: RecordId) -> Result<Row> {
        if !entity.is_record() {
            return Err(Error::invalid(
                "entity",
                format!("{entity} is not a business record"),
            ));
        }
        self.store
            .get(entity.table(), id.0)
            .await?
            .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
            .ok_or_else(|| Error::not_found(entity, id))
    }

    /// Live child rows of a customer (contacts, follow-ups) in a state.
    async fn children(
        &self,
        actor: &Actor,
        customer: uuid::Uuid,
        deleted_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        for table in [Table::Contacts, Table::FollowUps] {
            let mut sel = Select::all(table, actor.company_id.0, self.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                Filter::Cmp(Col::Column("customer_id"), CmpOp::Eq, Value::Id(customer)),
                match deleted_at {
                    Some(t) => {
                        Filter::Cmp(Col::Column("deleted_at"), CmpOp::Eq, Value::Timestamp(t))
                    }
                    None => Filter::IsNull(Col::Column("deleted_at")),
                },
            ]);
            out.extend(self.store.select(&sel).await?.rows);
        }
        Ok(out)
    }

    /// The contacts and follow-ups a customer being purged takes with it
    /// (the store removes them with it), whatever their state: each must
    /// be one the actor may delete — a salesperson does not destroy a
    /// colleague's contact or the service team's follow-ups they may not
    /// even see — and each goes into its own history and is announced, at
    /// the version read (one changed meanwhile makes the purge conflict).
    async fn purge_children(
        &self,
        actor: &Actor,
        customer: &Row,
        code: &str,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let mut kids = Vec::new();
        for table in [Table::Contacts, Table::FollowUps] {
            let mut sel = Select::all(table, actor.company_id.0, self.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::Cmp(
                Col::Column("customer_id"),
                CmpOp::Eq,
                Value::Id(customer.id()),
            );
            kids.extend(self.store.select(&sel).await?.rows);
        }
        let kind = |t: Table| {
            if t == Table::Contacts {
                Entity::Contact
            } else {
                Entity::FollowUp
            }
        };
        let (mut contacts, mut follow_ups) = (0, 0);
        for k in &kids {
            if !actor.covers(kind(k.table), Action::Delete, k) {
                match k.table {
                    Table::Contacts => contacts += 1,
                    _ => follow_ups += 1,
                }
            }
        }
        if contacts + follow_ups > 0 {
            let mut others = Vec::new();
            if contacts > 0 {
                others.push(format!("{contacts} contact(s)"));
            }
            if follow_ups > 0 {
                others.push(format!("{follow_ups} follow-up(s)"));
            }
            return Err(Error::Forbidden(format!(
                "customer {code} cannot be purged by {}: {} that {} may not delete would go \
                 with it (彻底删除会一并删除他人的联系人或跟进记录); their owners delete them \
                 first, or an administrator purges the customer",
                actor.display_name,
                others.join(" and "),
                actor.display_name
            )));
        }
        let now = self.now();
        for k in kids {
            cs.ops.push(Op::Update {
                table: k.table,
                id: k.id(),
                expected_version: k.version(),
                values: vec![("updated_at", Value::Timestamp(now))],
            });
            let name = crate::crm::entity_name(k.table);
            let kcode = k.get("code").as_text().unwrap_or_default().to_string();
            cs.audit.push(self.audit(
                Some(actor),
                actor.company_id.0,
                k.table,
                k.id(),
                Step::Purge.name(),
                vec![FieldChange {
                    field: "record".into(),
                    before: Json::String(kcode.clone()),
                    after: Json::Null,
                }],
            ));
            cs.events.push(self.event(
                actor.company_id.0,
                k.table,
                k.id(),
                format!("{name}.{}", Step::Purge.event()),
                serde_json::json!({ "code": kcode, "with_customer": code }),
            ));
        }
        Ok(())
    }

    /// Refuses an action on a record the actor may not do it on: as
    /// forbidden (naming the record) when the actor may read the record,
    /// else as not found, not revealing that it exists.
    async fn refuse(
        &self,
        actor: &Actor,
        entity: Entity,
        row: &Row,
        what: impl FnOnce(&str) -> String,
    ) -> Error {
        match self.can_on_row(actor, entity, Action::Read, row).await {
            Ok(true) => {
                let id = row.id().to_string();
                let code = row.get("code").as_text().unwrap_or(&id);
                Error::Forbidden(what(code))
            }
            Ok(false) => Error::not_found(entity, row.id()),
            Err(e) => e,
        }
    }

    /// The live customer of a child record being restored, and a guard that
    /// it is still live when the restore is written (under the key deleting
    /// or merging the customer takes): a child restored while its customer
    /// is in the recycle bin, merged away or purged would be a live record
    /// of a dead customer. The customer is named only to who may read it.
    async fn restorable_customer(
        &self,
        actor: &Actor,
        entity: Entity,
        code: &str,
        customer: uuid::Uuid,
        verb: &str,
    ) -> Result<(Row, Guard)> {
        let company = actor.company_id.0;
        let crow = self
            .store
            .get(Table::Customers, customer)
            .await?
            .filter(|c| c.get("company_id").as_id() == Some(company));
        let Some(crow) = crow else {
            return Err(Error::InvalidState(format!(
                "{entity} {code} cannot be {verb}: its customer no longer exists"
            )));
        };
        let readable = self
            .can_on_row(actor, Entity::Customer, Action::Read, &crow)
            .await?;
        let ccode = crow.get("code").as_text().unwrap_or_default().to_string();
        if !crow.get("deleted_at").is_null() {
            return Err(Error::InvalidState(
                match (readable, crow.get("merged_into").is_null()) {
                    (true, true) => format!(
                        "{entity} {code} cannot be {verb} while its customer {ccode} is in the recycle bin; restore customer {ccode} first"
                    ),
                    (true, false) => format!(
                        "{entity} {code} cannot be {verb}: its customer {ccode} was merged into another customer"
                    ),
                    (false, _) => format!(
                        "{entity} {code} cannot be {verb}: its customer is in the recycle bin"
                    ),
                },
            ));
        }
        let guard = self.deleted_meanwhile_guard(
            Table::Customers,
            company,
            &[customer],
            vec![crate::records::customer_contacts_key(company, customer)],
            if readable {
                format!(
                    "{entity} {code} cannot be {verb}: its customer {ccode} was deleted or merged into another meanwhile"
                )
            } else {
                format!(
                    "{entity} {code} cannot be {verb}: its customer was deleted or merged into another meanwhile"
                )
            },
        );
        Ok((crow, guard))
    }

    /// Refuses to purge a customer that opportunities, quotes or contracts
    /// (live or in the recycle bin) still refer to — they have no foreign
    /// key that would take them with it — naming those the actor may read
    /// and counting the others; else the guards that none was added by the
    /// time the purge is written.
    async fn no_sales_references(
        &self,
        actor: &Actor,
        customer: &Row,
        code: &str,
    ) -> Result<Vec<Guard>> {
        let company = actor.company_id.0;
        let mut named: Vec<String> = Vec::new();
        let mut hidden: Vec<String> = Vec::new();
        let mut guards = Vec::new();
        for entity in [Entity::Opportunity, Entity::Quote, Entity::Contract] {
            let mut sel = Select::all(entity.table(), company, self.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::Cmp(
                Col::Column("customer_id"),
                CmpOp::Eq,
                Value::Id(customer.id()),
            );
            for r in self.store.select(&sel).await?.rows {
                // Quote versions are rows of one code: named (or counted)
                // once.
                let name = format!("{entity} {}", r.get("code").as_text().unwrap_or_default());
                let list = if self.can_on_row(actor, entity, Action::Read, &r).await? {
                    &mut named
                } else {
                    &mut hidden
                };
                if !list.contains(&name) {
                    list.push(name);
                }
            }
            guards.push(Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![crate::records::customer_contacts_key(
                    company,
                    customer.id(),
                )],
                select: sel,
                message: format!(
                    "customer {code} cannot be purged: {} was added to it meanwhile",
                    match entity {
                        Entity::Opportunity => "an opportunity",
                        Entity::Quote => "a quote",
                        _ => "a contract",
                    }
                ),
            });
        }
        if named.is_empty() && hidden.is_empty() {
            return Ok(guards);
        }
        let mut what = named.join(", ");
        match (named.is_empty(), hidden.len()) {
            (_, 0) => {}
            (true, n) => {
                what = format!(
                    "{n} sales record{} (opportunities, quotes, contracts)",
                    if n == 1 { "" } else { "s" }
                )
            }
            (false, n) => {
                what = format!(
                    "{what} and {n} other sales record{}",
                    if n == 1 { "" } else { "s" }
                )
            }
        }
        Err(Error::InvalidState(format!(
            "customer {code} cannot be purged while {what} {} to it (live or in the recycle bin); purge those first",
            if named.len() + hidden.len() == 1 {
                "refers"
            } else {
                "refer"
            }
        )))
    }

    /// The quotes and contracts of a customer waiting for approval, named
    /// by code where the actor may read them (`None` when there are none),
    /// with guards that none is submitted before the change commits.
    /// A guard, under the customer's key, that none of `customer`'s live
    /// contracts is owed money (collected on, with money outstanding) or,
    /// with `executing`, still executing when the change commits: a payment
    /// voided meanwhile (which reopens a finished contract and makes it
    /// owed again) takes that key too, so a customer does not leave the
    /// working set, or its owner, with a contract it owes on.
    pub(crate) fn contracts_open_guard(
        &self,
        company: uuid::Uuid,
        customer: &Row,
        executing: bool,
    ) -> crate::store::Guard {
        use crate::store::{CmpOp, Col, Filter, Select};
        let mut sel = Select::all(Table::Contracts, company, self.now());
        sel.lifecycle = Lifecycle::Any;
        let mut open = vec![Filter::And(vec![
            Filter::In(
                Col::Column("status"),
                crate::sales::payment::collected_statuses(),
            ),
            Filter::Cmp(Col::Column("outstanding"), CmpOp::Gt, Value::Int(0)),
        ])];
        if executing {
            open.push(Filter::Cmp(
                Col::Column("status"),
                CmpOp::Eq,
                crate::sales::ContractStatus::Executing.name().into(),
            ));
        }
        sel.filter = Filter::And(vec![
            Filter::Cmp(
                Col::Column("customer_id"),
                CmpOp::Eq,
                Value::Id(customer.id()),
            ),
            Filter::IsNull(Col::Column("deleted_at")),
            Filter::Or(open),
        ]);
        customer_state_guard(
            company,
            customer,
            sel,
            format!(
                "a contract of customer {} was reopened or became owed money meanwhile; try again",
                customer.get("code").as_text().unwrap_or_default()
            ),
        )
    }

    /// Guards, under the customer's key, that no quote or contract of
    /// `customer` awaits approval when the change commits (a submission
    /// takes that key too): for a change that takes the customer out of
    /// its owner's hands or the working set. Quotes' first, then
    /// contracts' (`documents_pending_approval` reads them in that order).
    pub(crate) fn pending_documents_guards(
        &self,
        company: uuid::Uuid,
        customer: &Row,
    ) -> Vec<crate::store::Guard> {
        use crate::store::{CmpOp, Col, Filter, Select};
        [
            (Table::Quotes, Entity::Quote),
            (Table::Contracts, Entity::Contract),
        ]
        .into_iter()
        .map(|(table, doc)| {
            let mut sel = Select::all(table, company, self.now());
            sel.filter = Filter::And(vec![
                Filter::Cmp(
                    Col::Column("customer_id"),
                    CmpOp::Eq,
                    Value::Id(customer.id()),
                ),
                Filter::Cmp(
                    Col::Column("status"),
                    CmpOp::Eq,
                    crate::sales::QuoteStatus::PendingApproval.name().into(),
                ),
            ]);
            customer_state_guard(
                company,
                customer,
                sel,
                format!(
                    "a {doc} of customer {} was submitted for approval meanwhile; try again",
                    customer.get("code").as_text().unwrap_or_default()
                ),
            )
        })
        .collect()
    }

    pub(crate) async fn documents_pending_approval(
        &self,
        actor: &Actor,
        customer: &Row,
    ) -> Result<(Option<String>, Vec<crate::store::Guard>)> {
        let (mut named, mut hidden) = (Vec::new(), 0usize);
        // The guards' own selects find the documents pending now.
        let guards = self.pending_documents_guards(actor.company_id.0, customer);
        for (g, doc) in guards.iter().zip([Entity::Quote, Entity::Contract]) {
            for r in self.store.select(&g.select).await?.rows {
                if self.can_on_row(actor, doc, Action::Read, &r).await? {
                    named.push(format!(
                        "{doc} {}",
                        r.get("code").as_text().unwrap_or_default()
                    ));
                } else {
                    hidden += 1;
                }
            }
        }
        if hidden > 0 {
            named.push(format!("{hidden} document(s) of others"));
        }
        let what = (!named.is_empty()).then(|| {
            let verb = if named.len() == 1 && hidden <= 1 {
                "is"
            } else {
                "are"
            };
            format!("{} {verb}", named.join(", "))
        });
        Ok((what, guards))
    }

    /// The open (tracking or on hold) opportunities of a customer that are
    /// neither in the recycle bin nor archived, in words: by code where the
    /// actor may read them, counted otherwise; `None` when there are none.
    async fn open_opportunities_named(
        &self,
        actor: &Actor,
        customer: &Row,
    ) -> Result<Option<String>> {
        let mut sel = Select::all(Table::Opportunities, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(
            Col::Column("customer_id"),
            CmpOp::Eq,
            Value::Id(customer.id()),
        );
        let (mut named, mut others) = (Vec::new(), 0usize);
        for row in self.store.select(&sel).await?.rows {
            if !crate::sales::opportunity::is_open(&row) {
                continue;
            }
            if self
                .can_on_row(actor, Entity::Opportunity, Action::Read, &row)
                .await?
            {
                named.push(row.get("code").as_text().unwrap_or_default().to_string());
            } else {
                others += 1;
            }
        }
        Ok(open_list(named, others))
    }

    /// One step of one record. A follow-up's step writes its customer's
    /// follow-up dates at the version read: when another write of that
    /// customer (a colleague's follow-up, the owner's edit) committed
    /// meanwhile, the step is taken again from a fresh read, at most
    /// [`FOLLOW_UP_TRIES`](crate::records::FOLLOW_UP_TRIES) times — the
    /// actor changed no customer field, so that is no conflict of theirs.
    async fn step(&self, actor: &Actor, entity: Entity, id: RecordId, step: Step) -> Result<()> {
        let mut tries = 1;
        loop {
            match self.step_once(actor, entity, id, step).await {
                Err(e)
                    if entity == Entity::FollowUp
                        && crate::records::is_customer_conflict(&e)
                        && tries < crate::records::FOLLOW_UP_TRIES =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    async fn step_once(
        &self,
        actor: &Actor,
        entity: Entity,
        id: RecordId,
        step: Step,
    ) -> Result<()> {
        let row = self.owned_row(actor, entity, id).await?;
        let action = match step {
            Step::Archive | Step::Unarchive => Action::Update,
            _ => Action::Delete,
        };
        if !actor.covers(entity, action, &row) {
            // Readable through a share too: then it is a refusal, not a
            // record that is not there.
            if self.can_on_row(actor, entity, Action::Read, &row).await? {
                return Err(Error::Forbidden(format!(
                    "{} may not {} {} {}",
                    actor.display_name,
                    step.name(),
                    entity,
                    row.get("code").as_text().unwrap_or(&id.to_string())
                )));
            }
            return Err(Error::not_found(entity, id));
        }
        if entity == Entity::FollowUp {
            self.follow_up_customer_in_reach(actor, &row, step.name())
                .await?;
        }
        let deleted = row.get("deleted_at").as_timestamp();
        let archived = row.get("archived_at").as_timestamp();
        let code = row.get("code").as_text().unwrap_or_default().to_string();
        let state_error = |m: &str| Err(Error::InvalidState(format!("{entity} {code} {m}")));
        let now = self.now();
        let mut cs = ChangeSet::default();
        let (col, value): (&'static str, Value) = match step {
            Step::Delete if deleted.is_some() => {
                return state_error("is already in the recycle bin");
            }
            Step::Delete => ("deleted_at", Value::Timestamp(now)),
            Step::Restore if deleted.is_none() => return state_error("is not in the recycle bin"),
            Step::Restore => ("deleted_at", Value::Null),
            Step::Purge if deleted.is_none() => {
                return state_error("must be deleted (in the recycle bin) before it can be purged");
            }
            Step::Purge => ("deleted_at", Value::Null),
            Step::Archive if deleted.is_some() => return state_error("is in the recycle bin"),
            Step::Archive if archived.is_some() => return state_error("is already archived"),
            Step::Archive => ("archived_at", Value::Timestamp(now)),
            Step::Unarchive if deleted.is_some() => return state_error("is in the recycle bin"),
            Step::Unarchive if archived.is_none() => return state_error("is not archived"),
            Step::Unarchive => ("archived_at", Value::Null),
        };
        // A contract still owed money, or with payments awaiting approval,
        // stays in the working set: deleted or archived, it would drop out
        // of the receivables unnoticed. It is collected, or terminated,
        // first (as finishing it needs).
        if entity == Entity::Contract
            && matches!(step, Step::Delete | Step::Archive)
            && let Some(what) = self.contract_money_open(actor, &row).await?
        {
            let pending = if what.contains("awaiting approval") {
                ", approve or reject the payments awaiting approval"
            } else {
                ""
            };
            return Err(Error::InvalidState(format!(
                "contract {code} cannot be {}: {what}; collect what is owed{pending}, or \
                 terminate the contract with a reason first",
                step.event()
            )));
        }
        // Nor is a contract still executing deleted, all paid as it may be:
        // its payments would drop out of what was collected, and a payment
        // voided later would be owed on a deleted contract. It is finished
        // or terminated first (archiving keeps it, and is allowed).
        if entity == Entity::Contract
            && step == Step::Delete
            && row.get("status").as_text() == Some(crate::sales::ContractStatus::Executing.name())
        {
            return Err(Error::InvalidState(format!(
                "contract {code} is still executing (合同执行中) and cannot be deleted: finish \
                 it (完成) or terminate it with a reason first"
            )));
        }
        // Nor does a customer whose contracts are still owed money (or have
        // payments awaiting approval) leave the working set: its
        // receivables would be a deleted customer's.
        if entity == Entity::Customer
            && matches!(step, Step::Delete | Step::Archive)
            && let Some(open) = self.contracts_with_money_open(actor, &row).await?
        {
            return Err(Error::InvalidState(format!(
                "customer {code} cannot be {}: {open}; collect what is owed, or terminate the \
                 contracts with a reason first",
                step.event()
            )));
        }
        // Nor one whose contracts are still executing, all paid as they may
        // be: a payment voided later would be owed by a deleted customer.
        if entity == Entity::Customer
            && matches!(step, Step::Delete | Step::Archive)
            && let Some(open) = self.executing_contracts_named(actor, &row).await?
        {
            return Err(Error::InvalidState(format!(
                "customer {code} cannot be {}: {open}",
                step.event()
            )));
        }
        // Nor does a customer with open opportunities: in the recycle bin
        // (or archived), its pipeline would still be forecast and moved on
        // as if the customer were live. They are won, lost or deleted
        // first, as a contract owed money is collected first. (Contacts and
        // follow-ups are the customer's own and go with it; an opportunity
        // is a sales record of its own, like the contracts.) An
        // opportunity created meanwhile counts on its customer, whose
        // version this write carries.
        if entity == Entity::Customer
            && matches!(step, Step::Delete | Step::Archive)
            && let Some(open) = self.open_opportunities_named(actor, &row).await?
        {
            return Err(Error::InvalidState(format!(
                "customer {code} cannot be {}: {open}",
                step.event()
            )));
        }
        // A quote or contract waiting for approval is the approvers' to
        // decide: it is withdrawn (撤回) first. Deleted meanwhile, an
        // approval would pass a document in the recycle bin.
        if matches!(entity, Entity::Quote | Entity::Contract)
            && matches!(step, Step::Delete | Step::Archive)
            // (Quotes and contracts store this state under one name.)
            && row.get("status").as_text() == Some(crate::sales::QuoteStatus::PendingApproval.name())
        {
            return Err(Error::InvalidState(format!(
                "{entity} {code} is pending approval; withdraw its approval (撤回) before it can \
                 be {}",
                step.event()
            )));
        }
        // Nor does a customer leave the working set while quotes or
        // contracts of it wait for approval (checked again as the change
        // commits: a submission takes the customer's key too).
        if entity == Entity::Customer && matches!(step, Step::Delete | Step::Archive) {
            let (pending, guards) = self.documents_pending_approval(actor, &row).await?;
            if let Some(what) = pending {
                return Err(Error::InvalidState(format!(
                    "customer {code} cannot be {}: {what} pending approval; withdraw the \
                     approvals (撤回) or have them decided first",
                    step.event()
                )));
            }
            cs.guards.extend(guards);
            cs.guards
                .push(self.contracts_open_guard(actor.company_id.0, &row, true));
        }
        // A customer merged into another came back empty (its contacts,
        // follow-ups and sales records belong to the survivor now), a
        // duplicate of the survivor.
        if entity == Entity::Customer
            && step == Step::Restore
            && let Some(survivor) = row.get("merged_into").as_id()
        {
            let readable = match self
                .store
                .get(Table::Customers, survivor)
                .await?
                .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
            {
                Some(s) if self.can_on_row(actor, entity, Action::Read, &s).await? => {
                    s.get("code").as_text().map(str::to_string)
                }
                _ => None,
            };
            return Err(Error::InvalidState(match readable {
                Some(scode) => {
                    format!("customer {code} was merged into {scode}; it cannot be restored")
                }
                None => format!(
                    "customer {code} was merged into another customer; it cannot be restored"
                ),
            }));
        }
        // A customer coming back into the working set is its owner's again,
        // within the caps of its pool as a claim is (out of it, it counted
        // toward none).
        if entity == Entity::Customer
            && (step == Step::Unarchive || (step == Step::Restore && archived.is_none()))
            && let Err(e) = self.comeback_caps(actor, &row, &mut cs).await
        {
            return Err(match e {
                Error::Forbidden(m) => Error::Forbidden(format!(
                    "customer {code} cannot be {}: {m}; transfer some of those customers, or \
                     raise the limit, first",
                    step.event()
                )),
                other => other,
            });
        }
        // The customer a child record (contact, follow-up, opportunity,
        // quote, contract) belongs to.
        let customer_id = if entity == Entity::Customer {
            None
        } else {
            row.get("customer_id").as_id()
        };
        // Read before the open opportunities are counted below: its version
        // guards the count (see `customer_sales_activity_of`).
        let mut customer_row = None;
        // (Unarchived too: an archived child of a customer in the recycle
        // bin would come back into the working set without it.)
        if matches!(step, Step::Restore | Step::Unarchive)
            && let Some(cid) = customer_id
        {
            let verb = if step == Step::Restore {
                "restored"
            } else {
                "unarchived"
            };
            let crow = self
                .restorable_customer(actor, entity, &code, cid, verb)
                .await?;
            // A sales document comes back to work on its customer: not at
            // the hands of who lost the customer (transferred, released)
            // — its new owner takes it over.
            if matches!(
                entity,
                Entity::Opportunity | Entity::Quote | Entity::Contract
            ) && !self
                .can_on_row(actor, Entity::Customer, Action::Read, &crow.0)
                .await?
            {
                return Err(Error::Forbidden(format!(
                    "{} may not {} {entity} {code}: its customer is no longer theirs to read \
                     (transferred or released); an administrator, or a manager over both, may \
                     restore it and transfer it to whoever holds the customer now",
                    actor.display_name,
                    step.name()
                )));
            }
            // Nor does a sales document come back to work on an archived
            // customer (nothing is recorded on one): unarchived first.
            if matches!(
                entity,
                Entity::Opportunity | Entity::Quote | Entity::Contract
            ) && !crow.0.get("archived_at").is_null()
            {
                return Err(Error::InvalidState(format!(
                    "{entity} {code} cannot be {verb}: its customer {} is archived (已归档); \
                     unarchive the customer first",
                    crow.0.get("code").as_text().unwrap_or_default()
                )));
            }
            cs.guards.push(crow.1);
            customer_row = Some(crow.0);
        }
        if step == Step::Purge && entity == Entity::Customer {
            cs.guards
                .extend(self.no_sales_references(actor, &row, &code).await?);
            self.purge_children(actor, &row, &code, &mut cs).await?;
        }
        if step == Step::Purge && entity == Entity::Quote {
            // A contract made from this quote keeps its lines and amounts
            // (they are its own) and forgets the quote gone for good: no
            // contract points at a quote that is no more.
            let mut sel = crate::store::Select::all(Table::Contracts, actor.company_id.0, now);
            sel.lifecycle = crate::store::Lifecycle::Any;
            sel.filter = crate::store::Filter::Cmp(
                crate::store::Col::Column("quote_id"),
                crate::store::CmpOp::Eq,
                Value::Id(id.0),
            );
            for c in self.store.select(&sel).await?.rows {
                cs.ops.push(Op::Update {
                    table: Table::Contracts,
                    id: c.id(),
                    expected_version: c.version(),
                    values: vec![
                        ("quote_id", Value::Null),
                        ("updated_at", Value::Timestamp(now)),
                    ],
                });
                cs.audit.push(self.audit(
                    Some(actor),
                    actor.company_id.0,
                    Table::Contracts,
                    c.id(),
                    "quote_purged",
                    vec![FieldChange {
                        field: "quote_id".into(),
                        before: c.get("quote_id").to_json(),
                        after: Json::Null,
                    }],
                ));
            }
        }
        // Payments and invoices are finance records (and an invoice number
        // stays taken): a contract holding any stays in the recycle bin,
        // whence it may be restored, rather than taking them with it.
        if step == Step::Purge && entity == Entity::Contract {
            let mut held = Vec::new();
            for (table, one, many) in [
                (Table::Payments, "payment (回款)", "payments (回款)"),
                (Table::Invoices, "invoice (开票)", "invoices (开票)"),
            ] {
                let mut sel = crate::store::Select::all(table, actor.company_id.0, now);
                sel.lifecycle = crate::store::Lifecycle::Any;
                sel.filter = crate::store::Filter::Cmp(
                    crate::store::Col::Column("contract_id"),
                    crate::store::CmpOp::Eq,
                    Value::Id(id.0),
                );
                let n = self.count(sel).await?;
                if n > 0 {
                    held.push(format!("{n} {}", if n == 1 { one } else { many }));
                }
            }
            if !held.is_empty() {
                return Err(Error::InvalidState(format!(
                    "contract {code} holds {} on record: finance records are kept, so it stays \
                     in the recycle bin (it may be restored) and is not purged",
                    held.join(" and ")
                )));
            }
        }
        if step == Step::Purge && entity == Entity::Contract {
            // The quote this contract was made from is approved again: gone
            // for good, the contract no longer holds it converted.
            let mut sel = crate::store::Select::all(Table::Quotes, actor.company_id.0, now);
            sel.lifecycle = crate::store::Lifecycle::Any;
            sel.filter = crate::store::Filter::Cmp(
                crate::store::Col::Column("contract_id"),
                crate::store::CmpOp::Eq,
                Value::Id(id.0),
            );
            for q in self.store.select(&sel).await?.rows {
                cs.ops.push(Op::Update {
                    table: Table::Quotes,
                    id: q.id(),
                    expected_version: q.version(),
                    values: vec![
                        (
                            "status",
                            Value::Text(crate::sales::QuoteStatus::Approved.name().into()),
                        ),
                        ("contract_id", Value::Null),
                        ("updated_at", Value::Timestamp(now)),
                    ],
                });
                cs.events.push(self.event(
                    actor.company_id.0,
                    Table::Quotes,
                    q.id(),
                    "quote.contract_purged".to_string(),
                    serde_json::json!({
                        "code": q.get("code").as_text(),
                        "contract": code,
                        "status": crate::sales::QuoteStatus::Approved.name(),
                    }),
                ));
                cs.audit.push(self.audit(
                    Some(actor),
                    actor.company_id.0,
                    Table::Quotes,
                    q.id(),
                    "contract_purged",
                    vec![
                        FieldChange {
                            field: "status".into(),
                            before: q.get("status").to_json(),
                            after: Json::String(crate::sales::QuoteStatus::Approved.name().into()),
                        },
                        FieldChange {
                            field: "contract_id".into(),
                            before: q.get("contract_id").to_json(),
                            after: Json::Null,
                        },
                    ],
                ));
            }
        }
        // Derived columns (keys) a restore puts right, in case the record was
        // deleted before they existed or were computed as they are now (e.g.
        // an e-mail key a migration backfilled with SQL's lower()).
        let mut rederived: Vec<(&'static str, Value)> = Vec::new();
        if step == Step::Restore && matches!(entity, Entity::Customer | Entity::Contact) {
            // Restoring must not bring back a duplicate saved meanwhile, nor
            // one saved while the restore is written: the record is checked
            // as a create of its values would be, and guarded the same way.
            let mut merged: BTreeMap<&'static str, Value> = entity
                .table()
                .columns()
                .iter()
                .map(|c| (c.name, row.get(c.name).clone()))
                .collect();
            // The keys are derived before `derive` checks the values
            // together; a stored record failing that check (an individual
            // with a credit code, which an import's update can leave) still
            // comes back.
            let _ = self.derive(entity, &mut merged);
            rederived = merged
                .iter()
                .filter(|(k, v)| crate::records::is_derived(k) && row.get(k) != *v)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            let custom: BTreeMap<String, Json> = row
                .get("custom")
                .as_json()
                .and_then(Json::as_object)
                .map(|o| o.clone().into_iter().collect())
                .unwrap_or_default();
            let customs = self.custom_fields(actor, entity).await?;
            cs.guards.extend(
                self.check_duplicates(actor, entity, &merged, &custom, &customs, Some(id.0))
                    .await?,
            );
        }
        if step == Step::Purge {
            // A delete carries no version: the update before it does, so a
            // record restored (or changed) since it was read here is not
            // purged — the change set fails as a conflict instead.
            cs.ops.push(Op::Update {
                table: entity.table(),
                id: id.0,
                expected_version: row.version(),
                values: vec![("updated_at", Value::Timestamp(now))],
            });
            cs.ops.push(Op::Delete {
                table: entity.table(),
                id: id.0,
            });
        } else {
            let mut values = vec![(col, value.clone()), ("updated_at", Value::Timestamp(now))];
            values.extend(rederived);
            cs.ops.push(Op::Update {
                table: entity.table(),
                id: id.0,
                expected_version: row.version(),
                values,
            });
        }
        // An opportunity deleted no longer dates its customer's last
        // opportunity (the pools' "no opportunity within N days" rules read
        // it: one made and deleted again keeps no customer from recycling);
        // one restored does again.
        let redates = entity == Entity::Opportunity && matches!(step, Step::Delete | Step::Restore);
        if entity == Entity::Opportunity
            && (crate::sales::opportunity::is_open(&row) || redates)
            && let Some(cid) = customer_id
        {
            // The customer's count of open opportunities counts active ones:
            // this one leaves it when deleted, purged or archived, and comes
            // back into it when restored (unless archived) or unarchived.
            let counted_after = match step {
                Step::Delete | Step::Purge | Step::Archive => false,
                Step::Restore => archived.is_none(),
                Step::Unarchive => true,
            };
            let crow = match customer_row.take() {
                Some(c) => Some(c),
                None => self.sales_customer_row(actor, cid).await?,
            };
            if let Some(crow) = crow {
                let open = if crate::sales::opportunity::is_open(&row) {
                    Some(
                        self.open_opportunities(actor, cid, Some(id.0)).await?
                            + i64::from(counted_after),
                    )
                } else {
                    None
                };
                // Only the opportunity that dates the customer's last one
                // takes the date away (a host may have reported others
                // through `record_sales_activity`); a restored one dates it
                // again if it is the latest.
                let created = row.get("created_at").as_timestamp();
                let last = if step == Step::Delete
                    && created.is_some()
                    && crow.get("last_opportunity_at").as_timestamp() == created
                {
                    Some(self.last_opportunity_created(actor, cid, id.0).await?)
                } else {
                    None
                };
                self.customer_sales_activity_of(
                    actor,
                    &crow,
                    crate::pool::SalesActivity {
                        opportunity_at: created.filter(|_| step == Step::Restore),
                        open_opportunities: open,
                        deal_closed_at: None,
                        last_opportunity_is: last,
                    },
                    &mut cs,
                )?;
            }
        }
        // A follow-up deleted (or purged) no longer dates its customer's
        // last follow-up nor plans its next one; one restored does again.
        if entity == Entity::FollowUp
            && matches!(step, Step::Delete | Step::Purge | Step::Restore)
            && let Some(cid) = customer_id
        {
            let crow = match customer_row.take() {
                Some(c) => Some(c),
                None => self.store.get(Table::Customers, cid).await?.filter(|c| {
                    c.get("company_id").as_id() == Some(actor.company_id.0)
                        && c.get("deleted_at").is_null()
                }),
            };
            if let Some(crow) = crow {
                let change = if step == Step::Restore {
                    FollowUpChange::Back
                } else {
                    FollowUpChange::Gone
                };
                self.follow_up_dates(actor, &crow, &row, change, &mut cs)
                    .await?;
            }
        }
        // A quote or contract being made for the opportunity checks, under
        // this key, that it was not deleted meanwhile.
        if entity == Entity::Opportunity && step == Step::Delete {
            cs.guards
                .push(self.opportunity_closing_lock(actor.company_id.0, id.0));
        }
        if entity == Entity::Customer && matches!(step, Step::Delete | Step::Restore) {
            // Contacts and follow-ups go to the recycle bin with their
            // customer and come back with it (those deleted at the same time).
            let kids = match step {
                Step::Delete => self.children(actor, id.0, None).await?,
                _ => self.children(actor, id.0, deleted).await?,
            };
            if step == Step::Delete {
                // A contact added meanwhile would stay live, pointing at a
                // customer in the recycle bin. (A follow-up added meanwhile
                // updates the customer: its version catches that.)
                let contacts: Vec<uuid::Uuid> = kids
                    .iter()
                    .filter(|k| k.table == Table::Contacts)
                    .map(Row::id)
                    .collect();
                cs.guards.push(self.no_other_contacts_guard(
                    actor.company_id.0,
                    &[&row],
                    &contacts,
                ));
            }
            for k in kids {
                cs.ops.push(Op::Update {
                    table: k.table,
                    id: k.id(),
                    expected_version: k.version(),
                    values: vec![(col, value.clone()), ("updated_at", Value::Timestamp(now))],
                });
                // Each goes in its own history, and is announced, as if
                // deleted or restored on its own.
                let kind = crate::crm::entity_name(k.table);
                cs.audit.push(self.audit(
                    Some(actor),
                    actor.company_id.0,
                    k.table,
                    k.id(),
                    step.name(),
                    vec![FieldChange {
                        field: col.into(),
                        before: k.get(col).to_json(),
                        after: value.to_json(),
                    }],
                ));
                cs.events.push(self.event(
                    actor.company_id.0,
                    k.table,
                    k.id(),
                    format!("{kind}.{}", step.event()),
                    with_version(
                        serde_json::json!({
                            "code": k.get("code").as_text(),
                            "with_customer": code,
                        }),
                        &cs.ops,
                        k.table,
                        k.id(),
                    ),
                ));
            }
        }
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            entity.table(),
            id.0,
            step.name(),
            if step == Step::Purge {
                vec![FieldChange {
                    field: "record".into(),
                    before: Json::String(code.clone()),
                    after: Json::Null,
                }]
            } else {
                vec![FieldChange {
                    field: col.into(),
                    before: row.get(col).to_json(),
                    after: value.to_json(),
                }]
            },
        ));
        cs.events.push(self.event(
            actor.company_id.0,
            entity.table(),
            id.0,
            format!("{entity}.{}", step.event()),
            with_version(
                serde_json::json!({ "code": code }),
                &cs.ops,
                entity.table(),
                id.0,
            ),
        ));
        self.apply_indexed(cs).await
    }

    /// Puts a customer's follow-up dates right when one of its follow-ups
    /// (`follow_up`, as stored) leaves the live ones (deleted, purged),
    /// comes back (restored) or has its dates edited (see
    /// [`FollowUpChange`]): the last follow-up time is the latest of the
    /// live follow-ups (archived ones count: they happened), and the next
    /// follow-up date is planned by the latest live follow-up that plans
    /// one — changed only when the follow-up going (or the date it planned,
    /// on an edit) was the one that set it (a date set on the customer by
    /// hand stays), or when the one coming back (or edited) is the latest
    /// and plans one, as creating it did. The date only for who has full
    /// access to it, as a follow-up's creation. The customer is written at
    /// the version read: a follow-up added meanwhile (which updates the
    /// customer) makes the change conflict, and so does another
    /// follow-up's delete, restore or edit meanwhile (the customer is
    /// written when the dates stand too).
    pub(crate) async fn follow_up_dates(
        &self,
        actor: &Actor,
        customer: &Row,
        follow_up: &Row,
        change: FollowUpChange<'_>,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let mut sel = Select::all(Table::FollowUps, actor.company_id.0, self.now());
        sel.lifecycle = Lifecycle::Any;
        sel.filter = Filter::And(vec![
            Filter::Cmp(
                Col::Column("customer_id"),
                CmpOp::Eq,
                Value::Id(customer.id()),
            ),
            Filter::IsNull(Col::Column("deleted_at")),
            Filter::not_among(Col::Column("id"), [follow_up.id()]),
        ]);
        let mut live = self.store.select(&sel).await?.rows;
        match change {
            FollowUpChange::Gone => {}
            FollowUpChange::Back => live.push(follow_up.clone()),
            FollowUpChange::Edited { after, .. } => live.push(after.clone()),
        }
        let when = |r: &Row| {
            (
                r.get("occurred_at")
                    .as_timestamp()
                    .or_else(|| r.get("created_at").as_timestamp()),
                r.get("created_at").as_timestamp(),
            )
        };
        live.sort_by_key(|r| std::cmp::Reverse(when(r)));
        let last = live.first().and_then(|r| when(r).0);
        let planned = |r: &Row| {
            r.get("next_follow_up_at")
                .as_timestamp()
                .map(|t| Value::Date(t.with_timezone(&self.config.utc_offset).date_naive()))
        };
        let before_next = customer.get("next_follow_up").clone();
        let is_latest = live.first().map(Row::id) == Some(follow_up.id());
        // The follow-up going (or its date before the edit) set the
        // customer's date: the latest live follow-up that plans one sets
        // it now, or none.
        let fall_back = || {
            (planned(follow_up).as_ref() == Some(&before_next))
                .then(|| live.iter().find_map(planned).unwrap_or(Value::Null))
        };
        let next = match change {
            // As creating it: the latest plans the next follow-up.
            FollowUpChange::Back => planned(follow_up).filter(|_| is_latest),
            FollowUpChange::Gone => fall_back(),
            FollowUpChange::Edited { plans: false, .. } => None,
            FollowUpChange::Edited { after, .. } => {
                planned(after).filter(|_| is_latest).or_else(fall_back)
            }
        }
        .filter(|n| {
            *n != before_next
                && actor.field_access(Entity::Customer, "next_follow_up")
                    == crate::auth::FieldAccess::Full
        });
        let before_last = customer.get("last_follow_up_at").clone();
        let last = Value::from(last);
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        let mut changes = Vec::new();
        if last != before_last {
            changes.push(FieldChange {
                field: "last_follow_up_at".into(),
                before: before_last.to_json(),
                after: last.to_json(),
            });
            values.push(("last_follow_up_at", last));
        }
        if let Some(next) = next {
            changes.push(FieldChange {
                field: "next_follow_up".into(),
                before: crate::records::output_json(
                    Entity::Customer,
                    "next_follow_up",
                    &before_next,
                ),
                after: crate::records::output_json(Entity::Customer, "next_follow_up", &next),
            });
            values.push(("next_follow_up", next));
        }
        values.push(("updated_at", Value::Timestamp(self.now())));
        if changes.is_empty() {
            // The dates stand as read — unless another follow-up is
            // deleted or restored meanwhile, computing its dates from a
            // list still holding this one: the customer is written at the
            // version read all the same, so one of the two conflicts.
            cs.ops.push(Op::Update {
                table: Table::Customers,
                id: customer.id(),
                expected_version: customer.version(),
                values,
            });
            return Ok(());
        }
        cs.ops.push(Op::Update {
            table: Table::Customers,
            id: customer.id(),
            expected_version: customer.version(),
            values,
        });
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Customers,
            customer.id(),
            "customer.updated".into(),
            serde_json::json!({
                "code": customer.get("code").to_json(),
                "version": customer.version() + 1,
                "changes": &changes,
            }),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Customers,
            customer.id(),
            "update",
            changes,
        ));
        Ok(())
    }

    async fn batch<F, Fut>(&self, ids: &[RecordId], f: F) -> BatchReport
    where
        F: Fn(RecordId) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let mut report = BatchReport::default();
        for id in &distinct_ids(ids) {
            match f(*id).await {
                Ok(()) => report.done.push(*id),
                Err(e) => report.refused.push((*id, e.to_string())),
            }
        }
        report
    }

    /// Moves records to the recycle bin (logical delete). A customer takes
    /// its contacts and follow-ups with it.
    pub async fn delete_records(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
    ) -> BatchReport {
        self.batch(ids, |id| self.step(actor, entity, id, Step::Delete))
            .await
    }

    /// When the latest opportunity of customer `customer` not in the
    /// recycle bin, other than `opportunity` (being deleted), was created;
    /// `None` when there is none.
    async fn last_opportunity_created(
        &self,
        actor: &Actor,
        customer: uuid::Uuid,
        opportunity: uuid::Uuid,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let mut sel =
            crate::store::Select::all(Table::Opportunities, actor.company_id.0, self.now());
        sel.lifecycle = crate::store::Lifecycle::Any;
        sel.filter = crate::store::Filter::Cmp(
            crate::store::Col::Column("customer_id"),
            crate::store::CmpOp::Eq,
            Value::Id(customer),
        );
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .filter(|r| r.id() != opportunity && r.get("deleted_at").is_null())
            .filter_map(|r| r.get("created_at").as_timestamp())
            .max())
    }

    /// Brings records back from the recycle bin.
    pub async fn restore_records(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
    ) -> BatchReport {
        self.batch(ids, |id| self.step(actor, entity, id, Step::Restore))
            .await
    }

    /// Removes records from the recycle bin for good.
    pub async fn purge_records(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
    ) -> BatchReport {
        self.batch(ids, |id| self.step(actor, entity, id, Step::Purge))
            .await
    }

    /// Moves records out of the working set into history (转移到历史库).
    pub async fn archive_records(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
    ) -> BatchReport {
        self.batch(ids, |id| self.step(actor, entity, id, Step::Archive))
            .await
    }

    /// Brings archived records back into the working set.
    pub async fn unarchive_records(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
    ) -> BatchReport {
        self.batch(ids, |id| self.step(actor, entity, id, Step::Unarchive))
            .await
    }

    /// The username of a user, as events name owners (none for no user or
    /// one not found).
    pub(crate) async fn username_of(&self, id: Option<uuid::Uuid>) -> Option<String> {
        let row = self.store.get(Table::Users, id?).await.ok()??;
        row.get("username").as_text().map(str::to_string)
    }

    /// The usernames of `ids`, in order (an id whose user is gone stays an
    /// id): for events naming users beside their ids.
    pub(crate) async fn usernames_of(&self, ids: &[uuid::Uuid]) -> Vec<String> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(
                self.username_of(Some(*id))
                    .await
                    .unwrap_or_else(|| id.to_string()),
            );
        }
        out
    }

    /// Refuses to transfer a contact of a customer on its own: a
    /// customer's contacts are its owner's and follow it (on transfer,
    /// claim, release, recycling), so a contact given to someone else
    /// would leave the customer's owner without it. Giving a stray contact
    /// back to its customer's owner is allowed. The customer is named to
    /// who may read it.
    async fn contact_moves_with_its_customer(
        &self,
        actor: &Actor,
        contact: &Row,
        to: &crate::org::User,
    ) -> Result<()> {
        let Some(cid) = contact.get("customer_id").as_id() else {
            return Ok(());
        };
        let Some(crow) = self
            .store
            .get(Table::Customers, cid)
            .await?
            .filter(|c| c.get("company_id").as_id() == Some(actor.company_id.0))
        else {
            return Ok(());
        };
        if crow.get("owner_id").as_id() == Some(to.id.0) {
            return Ok(());
        }
        let code = contact.get("code").as_text().unwrap_or_default();
        let customer = if self
            .can_on_row(actor, Entity::Customer, Action::Read, &crow)
            .await?
        {
            format!(
                "customer {}",
                crow.get("code").as_text().unwrap_or_default()
            )
        } else {
            "its customer".to_string()
        };
        Err(Error::InvalidState(format!(
            "contact {code} moves with {customer}: a customer's contacts are its owner's; \
             transfer {customer} instead (联系人随客户转移，请转移客户)"
        )))
    }

    /// Refuses to give a record to a user whose roles do not let them edit
    /// it once it is theirs (owned by them, in their department): it would
    /// be stranded with someone who can neither work on it nor give it up.
    /// `verb` is what happens to it ("transferred", "assigned").
    pub(crate) async fn able_to_work_on(
        &self,
        entity: Entity,
        row: &Row,
        to: &crate::org::User,
        verb: &str,
    ) -> Result<()> {
        let target = self.actor(to.id).await?;
        let mut theirs = row.clone();
        theirs.set("owner_id", Value::Id(to.id.0));
        theirs.set("department_id", to.department_id.map(|d| d.0).into());
        if target.covers(entity, Action::Update, &theirs) {
            return Ok(());
        }
        let id = row.id().to_string();
        let code = row.get("code").as_text().unwrap_or(&id);
        Err(Error::Forbidden(format!(
            "{entity} {code} cannot be {verb} to {} ({}): their roles do not let them edit \
             {entity} records they own ({} 的角色没有{}的编辑权限)",
            to.username,
            to.display_name,
            to.display_name,
            entity.name_zh()
        )))
    }

    async fn transfer_one(
        &self,
        actor: &Actor,
        entity: Entity,
        id: RecordId,
        to: &crate::org::User,
    ) -> Result<()> {
        let row = self.owned_row(actor, entity, id).await?;
        if !actor.covers(entity, Action::Transfer, &row) {
            return Err(self
                .refuse(actor, entity, &row, |code| {
                    format!("{} may not transfer {entity} {code}", actor.display_name)
                })
                .await);
        }
        if !row.get("deleted_at").is_null() {
            return Err(Error::InvalidState(format!(
                "{entity} {} is in the recycle bin",
                row.get("code").as_text().unwrap_or(&id.to_string())
            )));
        }
        if !row.get("archived_at").is_null() {
            return Err(Crm::archived_refusal(entity, &row));
        }
        let before = row.get("owner_id").as_id();
        if before == Some(to.id.0) {
            return Err(Error::InvalidState(format!(
                "{entity} {} is already owned by {} ({}); nothing changed (已是其负责人，未作更改)",
                row.get("code").as_text().unwrap_or(&id.to_string()),
                to.username,
                to.display_name
            )));
        }
        // A quote or contract waiting for approval does not go to one of
        // its approvers, who would then approve a document of their own.
        if matches!(entity, Entity::Quote | Entity::Contract)
            && row.get("status").as_text()
                == Some(crate::sales::QuoteStatus::PendingApproval.name())
            && self
                .approves_pending(actor.company_id.0, entity.name(), id.0, to.id.0)
                .await?
        {
            return Err(Error::InvalidState(format!(
                "{entity} {} is pending approval and {} ({}) approves it: a document is not \
                 given to who approves it; withdraw its approval (撤回) first, or give it to \
                 someone else",
                row.get("code").as_text().unwrap_or(&id.to_string()),
                to.display_name,
                to.username
            )));
        }
        if entity == Entity::FollowUp {
            self.follow_up_customer_in_reach(actor, &row, "transfer")
                .await?;
        }
        if entity == Entity::Contact {
            self.contact_moves_with_its_customer(actor, &row, to)
                .await?;
        }
        self.able_to_work_on(entity, &row, to, "transferred")
            .await?;
        let now = self.now();
        let values = vec![
            ("owner_id", Value::Id(to.id.0)),
            ("department_id", to.department_id.map(|d| d.0).into()),
            ("updated_at", Value::Timestamp(now)),
        ];
        let mut cs = ChangeSet::default();
        // The record takes the new owner's department: deleted meanwhile
        // (its delete guards, under the same key, that no record is put
        // into it), the transfer fails instead of leaving the record in it.
        if let Some(d) = to.department_id {
            cs.guards.push(self.department_live_guard(actor, d));
        }
        cs.ops.push(Op::Update {
            table: entity.table(),
            id: id.0,
            expected_version: row.version(),
            values: values.clone(),
        });
        // The records whose shares the transfer ends: the record, and a
        // customer's contacts, which move with it.
        let mut shared = vec![Value::Id(id.0)];
        let mut lock_ended = false;
        if entity == Entity::Customer {
            lock_ended = self.transfer_pool_ops(actor, &row, to.id.0, &mut cs);
            // The caps of the pool governing it bind a transfer as a claim.
            self.transfer_caps(actor, &row, to, &mut cs).await?;
            // The customer's contacts follow their customer, those in the
            // recycle bin or archived too (they come back with the new
            // owner).
            let mut sel = Select::all(Table::Contacts, actor.company_id.0, now);
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::Cmp(Col::Column("customer_id"), CmpOp::Eq, Value::Id(id.0));
            let mut moved = Vec::new();
            for c in self.store.select(&sel).await?.rows {
                moved.push(c.id());
                shared.push(Value::Id(c.id()));
                cs.ops.push(Op::Update {
                    table: Table::Contacts,
                    id: c.id(),
                    expected_version: c.version(),
                    values: values.clone(),
                });
                if c.get("owner_id").as_id() == Some(to.id.0) {
                    continue;
                }
                // In the contact's own history, and announced.
                let change = FieldChange {
                    field: "owner_id".into(),
                    before: c.get("owner_id").to_json(),
                    after: Json::String(to.id.to_string()),
                };
                cs.events.push(self.event(
                    actor.company_id.0,
                    Table::Contacts,
                    c.id(),
                    "contact.transferred".to_string(),
                    serde_json::json!({
                        "code": c.get("code").as_text(),
                        "name": c.get("name").as_text(),
                        "from": change.before,
                        "to": change.after,
                        "from_username": self.username_of(c.get("owner_id").as_id()).await,
                        "to_username": to.username,
                        "with_customer": row.get("code").as_text(),
                        "version": c.version() + 1,
                    }),
                ));
                cs.audit.push(self.audit(
                    Some(actor),
                    actor.company_id.0,
                    Table::Contacts,
                    c.id(),
                    "transfer",
                    vec![change],
                ));
            }
            // A contact added meanwhile would keep the old owner: the
            // transfer fails instead (a contact's create guards the
            // customer's version under the same key).
            cs.guards
                .push(self.no_other_contacts_guard(actor.company_id.0, &[&row], &moved));
        }
        // The shares granted on it end with its owner's hold on it (as when
        // it goes into a pool): a colleague the old owner let read or edit
        // it does not keep it in the new owner's hands; the new owner
        // shares it anew. A share written meanwhile wrote the record at the
        // version read here, so one of the two writes fails.
        let shares_ended = self
            .end_shares(actor.company_id.0, shared, id.0, &mut cs)
            .await?;
        let idj = |u: &uuid::Uuid| Json::String(u.to_string());
        let change = FieldChange {
            field: "owner_id".into(),
            before: before
                .map(|b| Json::String(b.to_string()))
                .unwrap_or(Json::Null),
            after: Json::String(to.id.to_string()),
        };
        cs.events.push(self.event(
            actor.company_id.0,
            entity.table(),
            id.0,
            format!("{entity}.transferred"),
            serde_json::json!({
                "code": row.get("code").as_text(),
                "name": row.get("name").as_text().or_else(|| row.get("title").as_text()),
                "from": change.before,
                "to": change.after,
                "from_username": self.username_of(before).await,
                "to_username": to.username,
                "shares_ended": shares_ended.iter().map(idj).collect::<Vec<_>>(),
                "shares_ended_usernames": self.usernames_of(&shares_ended).await,
                "lock_ended": lock_ended,
                "version": row.version() + 1,
            }),
        ));
        if entity == Entity::Quote
            && let Some(e) = cs.events.last_mut()
        {
            // A quote's versions share its code: each says which it is.
            let mut payload = e.payload.to_value();
            payload["quote_version"] = row.get("quote_version").to_json();
            e.payload = payload.into();
        }
        let mut changes = vec![change];
        if !shares_ended.is_empty() {
            changes.push(FieldChange {
                field: "shares".into(),
                before: Json::Array(shares_ended.iter().map(idj).collect()),
                after: Json::Array(Vec::new()),
            });
        }
        if lock_ended {
            changes.push(crate::pool::lock_ended_change());
        }
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            entity.table(),
            id.0,
            "transfer",
            changes,
        ));
        self.apply(cs).await
    }

    /// Transfers records to another owner (转移); the records take the new
    /// owner's department, and a customer's contacts follow it.
    pub async fn transfer_records(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
        to: UserId,
    ) -> Result<BatchReport> {
        self.transfer_records_reading(actor, entity, ids, to, STALE_TRIES)
            .await
    }

    /// [`Crm::transfer_records`], reading a record changed meanwhile again
    /// up to `stale_tries` times in all (1: a conflict is reported).
    async fn transfer_records_reading(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
        to: UserId,
        stale_tries: u32,
    ) -> Result<BatchReport> {
        let ids = &distinct_ids(ids);
        let target = self.user(actor, to).await?;
        if !target.active {
            return Err(Error::invalid(
                "to",
                format!("user {} is deactivated", target.username),
            ));
        }
        let target = &target;
        Ok(self
            .batch(ids, |id| async move {
                // A claim or assignment to the same user (or department)
                // committed after the caps were counted: count again.
                let mut tries = 1;
                // The caller gave no version: a record changed meanwhile
                // (a colleague's edit) is read again and transferred as it
                // is now, every check made again.
                let mut stale = 1;
                loop {
                    match self.transfer_one(actor, entity, id, target).await {
                        Err(e) if crate::pool::is_holder_conflict(&e) => {
                            if tries >= crate::pool::HOLDER_TRIES {
                                return Err(crate::pool::holders_busy(&target.display_name));
                            }
                            tries += 1;
                        }
                        Err(Error::Conflict { .. }) if stale < stale_tries => stale += 1,
                        other => return other,
                    }
                }
            })
            .await)
    }

    /// Transfers customers as [`Crm::transfer_records`] does, each together
    /// with the sales documents its owner before the transfer held on it —
    /// its opportunities, quotes (every version) and contracts, live or
    /// archived — so that the new owner takes over the deals and the money
    /// still to collect with the customer (转移客户时同时转移商机、报价、合同).
    /// Each document goes as its own transfer would (the actor's transfer
    /// right on it, the new owner's rights on it); documents of other
    /// users stay theirs. Returns the customers' report and what became of
    /// each document (a quote's versions one by one).
    pub async fn transfer_customers_with_documents(
        &self,
        actor: &Actor,
        ids: &[RecordId],
        to: UserId,
    ) -> Result<(BatchReport, Vec<DocumentTransfer>)> {
        let company = actor.company_id.0;
        // Whose each customer was: read before, what it holds moves after.
        let mut before = std::collections::HashMap::new();
        for id in ids {
            if let Some(r) = self.store.get(Table::Customers, id.0).await?
                && r.get("company_id").as_id() == Some(company)
                && let Some(o) = r.get("owner_id").as_id()
            {
                before.insert(*id, o);
            }
        }
        // A customer changed meanwhile is reported, not read again: its
        // documents are the owner's read above.
        let customers = self
            .transfer_records_reading(actor, Entity::Customer, ids, to, 1)
            .await?;
        let mut documents = Vec::new();
        let moved = self
            .transfer_documents_of(actor, &customers.done, &before, to, &mut documents)
            .await;
        if let Err(e) = moved {
            // The customers are with the new owner already: say so, and
            // what is left to do, instead of an error that reads as if
            // nothing happened.
            let left: Vec<String> = documents
                .iter()
                .filter(|d| d.refused.is_none())
                .filter_map(|d| d.code.clone())
                .collect();
            return Err(Error::InvalidState(format!(
                "{} customer(s) were transferred, but moving their sales documents stopped: {e}; \
                 {}the documents not moved stay with their former owner: transfer them on their \
                 own (opportunity, quote, contract transfer)",
                customers.done.len(),
                if left.is_empty() {
                    String::new()
                } else {
                    format!("moved: {}; ", left.join(", "))
                }
            )));
        }
        Ok((customers, documents))
    }

    /// The document phase of [`Crm::transfer_customers_with_documents`]:
    /// the documents each transferred customer's former owner (`before`)
    /// held on it go to `to`, each reported in `documents` as it goes.
    async fn transfer_documents_of(
        &self,
        actor: &Actor,
        done: &[RecordId],
        before: &std::collections::HashMap<RecordId, uuid::Uuid>,
        to: UserId,
        documents: &mut Vec<DocumentTransfer>,
    ) -> Result<()> {
        let company = actor.company_id.0;
        for id in done {
            let Some(owner) = before.get(id).copied().filter(|o| *o != to.0) else {
                continue;
            };
            for entity in [Entity::Opportunity, Entity::Quote, Entity::Contract] {
                let mut sel = Select::all(entity.table(), company, self.now());
                sel.lifecycle = Lifecycle::Any;
                sel.filter = Filter::And(vec![
                    Filter::Cmp(Col::Column("customer_id"), CmpOp::Eq, Value::Id(id.0)),
                    Filter::Cmp(Col::Column("owner_id"), CmpOp::Eq, Value::Id(owner)),
                    Filter::IsNull(Col::Column("deleted_at")),
                ]);
                sel.sort = vec![crate::store::Sort {
                    col: Col::Column("id"),
                    desc: false,
                }];
                let rows = self.store.select(&sel).await?.rows;
                if rows.is_empty() {
                    continue;
                }
                let docs: Vec<RecordId> = rows.iter().map(|r| RecordId(r.id())).collect();
                // Named only to who could read it when asking (their own
                // documents, which they read no more once transferred).
                let mut codes = Vec::with_capacity(rows.len());
                for row in &rows {
                    codes.push(
                        if self.can_on_row(actor, entity, Action::Read, row).await? {
                            row.get("code").as_text().map(str::to_string)
                        } else {
                            None
                        },
                    );
                }
                let r = self.transfer_records(actor, entity, &docs, to).await?;
                for (row, code) in rows.iter().zip(codes) {
                    let id = RecordId(row.id());
                    documents.push(DocumentTransfer {
                        entity,
                        id,
                        code,
                        refused: r
                            .refused
                            .iter()
                            .find(|(rid, _)| *rid == id)
                            .map(|(_, why)| why.clone()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Ends, in `cs`, every share of the records `records` (ids), each at
    /// the version read; returns the users whose live share of `main` (the
    /// record itself, not its contacts) ended, for the event and the
    /// history. Used when a record leaves its owner's hands: a transfer, a
    /// move into a pool.
    pub(crate) async fn end_shares(
        &self,
        company: uuid::Uuid,
        records: Vec<Value>,
        main: uuid::Uuid,
        cs: &mut ChangeSet,
    ) -> Result<Vec<uuid::Uuid>> {
        let now = self.now();
        let mut ended = Vec::new();
        let mut sel = Select::all(Table::Shares, company, now);
        sel.filter = Filter::In(Col::Column("record_id"), records);
        for sh in self.store.select(&sel).await?.rows {
            cs.ops.push(Op::Update {
                table: Table::Shares,
                id: sh.id(),
                expected_version: sh.version(),
                values: vec![
                    ("deleted_at", Value::Timestamp(now)),
                    ("updated_at", Value::Timestamp(now)),
                ],
            });
            if sh.get("record_id").as_id() == Some(main)
                && sh.get("expires_at").as_timestamp().is_none_or(|e| e > now)
                && let Some(u) = sh.get("user_id").as_id()
            {
                ended.push(u);
            }
        }
        Ok(ended)
    }

    /// When a share given "until" `text` ends: a date without a time (or
    /// with `24:00`) means through that day, so the share ends at the end
    /// of that day in the company's time zone (the start of the next day);
    /// a date with a time ends then. Refused when that is not in the future.
    pub fn share_end(&self, text: &str) -> std::result::Result<DateTime<Utc>, String> {
        let t = text.trim();
        // `2027-01-31 24:00` (as a share's end is shown) is that day's end.
        let t = t
            .strip_suffix("24:00")
            .map(str::trim_end)
            .filter(|d| crate::records::parse_date(d).is_ok())
            .unwrap_or(t);
        let end = match crate::records::parse_date(t) {
            Ok(day) if !t.contains(':') => {
                let next = day
                    .succ_opt()
                    .ok_or_else(|| format!("'{t}' is too far ahead"))?;
                next.and_time(chrono::NaiveTime::MIN)
                    .and_local_timezone(self.config.utc_offset)
                    .single()
                    .map(|d| d.with_timezone(&Utc))
                    .ok_or_else(|| format!("'{t}' is not a valid local date"))?
            }
            _ => self.parse_datetime(t)?,
        };
        if end <= self.now() {
            return Err(format!(
                "'{t}' has passed: a share must end in the future (共享截止时间须晚于现在)"
            ));
        }
        Ok(end)
    }

    /// Shares a record with a user, for reading or for editing, optionally
    /// until a given time. Sharing again replaces the earlier share; the
    /// same share again (same access and end) changes nothing and writes
    /// nothing. A
    /// record changed meanwhile (the caller gave no version) is read again
    /// and shared as it is now, every check made again.
    pub async fn share_record(
        &self,
        actor: &Actor,
        entity: Entity,
        id: RecordId,
        with: UserId,
        access: ShareAccess,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let mut stale = 1;
        loop {
            match self
                .share_record_once(actor, entity, id, with, access, expires_at)
                .await
            {
                Err(Error::Conflict { .. }) if stale < STALE_TRIES => stale += 1,
                other => return other,
            }
        }
    }

    async fn share_record_once(
        &self,
        actor: &Actor,
        entity: Entity,
        id: RecordId,
        with: UserId,
        access: ShareAccess,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let row = self.owned_row(actor, entity, id).await?;
        // Sharing passes on what the sharer may do with the record itself:
        // reading it, and editing it for a write share.
        let passes_on = actor.covers(entity, Action::Read, &row)
            && (access == ShareAccess::Read || actor.covers(entity, Action::Update, &row));
        let allowed = actor.covers(entity, Action::Share, &row) && passes_on;
        // A record the actor may not read is not found, whatever else is
        // wrong with the share; one they may read is named.
        if !allowed && !self.can_on_row(actor, entity, Action::Read, &row).await? {
            return Err(Error::not_found(entity, id));
        }
        let code = row
            .get("code")
            .as_text()
            .unwrap_or(&id.to_string())
            .to_string();
        if with == actor.user_id {
            return Err(Error::invalid(
                "with",
                format!("{entity} {code} cannot be shared with the one sharing it"),
            ));
        }
        // A public customer is worked on by whoever claims it (caps and
        // cooldowns apply): a share would let someone work on it without.
        if allowed && entity == Entity::Customer && row.get("owner_id").is_null() {
            return Err(Error::InvalidState(format!(
                "customer {code} is in a public pool (公海), held by nobody: it is not shared; \
                 whoever works on it claims it, or is assigned it (公海客户不能共享)"
            )));
        }
        if !allowed {
            return Err(Error::Forbidden(format!(
                "{} may not share {entity} {code}{}",
                actor.display_name,
                if access == ShareAccess::Write {
                    " for editing"
                } else {
                    ""
                }
            )));
        }
        if !row.get("deleted_at").is_null() {
            return Err(Error::InvalidState(format!(
                "{entity} {code} is in the recycle bin"
            )));
        }
        if !row.get("archived_at").is_null() {
            return Err(Crm::archived_refusal(entity, &row));
        }
        if entity == Entity::FollowUp {
            self.follow_up_customer_in_reach(actor, &row, "share")
                .await?;
        }
        let target = self.user(actor, with).await?;
        if !target.active {
            return Err(Error::invalid(
                "with",
                format!("user {} is deactivated", target.username),
            ));
        }
        // A write share lets its user change what their roles let them
        // change, on one more record: a user whose roles change no such
        // records would hold a share that does nothing.
        if access == ShareAccess::Write && !self.actor(with).await?.can(entity, Action::Update) {
            return Err(Error::Forbidden(format!(
                "{entity} {code} cannot be shared with {} ({}) for editing: their roles do not \
                 let them edit {entity} records; share it for reading \
                 ({} 的角色没有{}的编辑权限，请只读共享)",
                target.username,
                target.display_name,
                target.display_name,
                entity.name_zh()
            )));
        }
        if expires_at.is_some_and(|e| e <= self.now()) {
            return Err(Error::invalid(
                "expires_at",
                "a share must end in the future",
            ));
        }
        let now = self.now();
        let mut cs = ChangeSet::default();
        let olds = self
            .share_rows(actor, entity.table(), id.0, Some(with))
            .await?;
        let access_name = match access {
            ShareAccess::Read => "read",
            ShareAccess::Write => "write",
        };
        // The same share again (same user, access and end) changes
        // nothing: nothing is written, announced or recorded.
        let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
        if let [old] = olds.as_slice()
            && old.get("access").as_text() == Some(access_name)
            && micros(old.get("expires_at").as_timestamp()) == micros(expires_at)
        {
            return Ok(());
        }
        // Two shares of the record to the user at once would both find no
        // earlier share (or the same ones): under a key per record and user,
        // none but those replaced here may be live when this one is written.
        let mut sel = Select::all(Table::Shares, actor.company_id.0, now);
        sel.filter = Filter::And(vec![
            Filter::Cmp(
                Col::Column("entity"),
                CmpOp::Eq,
                entity.table().name().into(),
            ),
            Filter::Cmp(Col::Column("record_id"), CmpOp::Eq, Value::Id(id.0)),
            Filter::Cmp(Col::Column("user_id"), CmpOp::Eq, Value::Id(with.0)),
            Filter::not_among(Col::Column("id"), olds.iter().map(Row::id)),
        ]);
        let guard = Guard {
            kind: crate::store::GuardKind::State,
            keys: vec![format!(
                "{}:shares:{}:{}:{}",
                actor.company_id.0,
                entity.table().name(),
                id.0,
                with.0
            )],
            select: sel,
            message: format!(
                "{entity} {code} was shared with {} meanwhile; share it again to replace that share",
                target.username
            ),
        };
        cs.guards.push(guard);
        // A customer (or one of its contacts, which move with it) is shared
        // at the version its owner's right to share it was checked on:
        // released into a pool (or transferred) meanwhile, the share
        // conflicts instead of outliving the owner's hands (a release ends
        // the shares it finds, not one written after it).
        if matches!(entity, Entity::Customer | Entity::Contact) {
            cs.ops.push(Op::Update {
                table: entity.table(),
                id: id.0,
                expected_version: row.version(),
                values: vec![("updated_at", Value::Timestamp(now))],
            });
        }
        for old in olds {
            cs.ops.push(Op::Update {
                table: Table::Shares,
                id: old.id(),
                expected_version: old.version(),
                values: vec![("deleted_at", Value::Timestamp(now))],
            });
        }
        let sid = self.new_id();
        cs.ops.push(Op::Insert {
            table: Table::Shares,
            values: [
                self.new_row(actor.company_id.0, sid),
                vec![
                    ("entity", entity.table().name().into()),
                    ("record_id", Value::Id(id.0)),
                    ("user_id", Value::Id(with.0)),
                    ("access", access_name.into()),
                    ("expires_at", expires_at.into()),
                    ("granted_by", Value::Id(actor.user_id.0)),
                ],
            ]
            .concat(),
        });
        let change = FieldChange {
            field: format!("share:{}", target.username),
            before: Json::Null,
            after: serde_json::json!({"access": access_name, "expires_at": expires_at}),
        };
        cs.events.push(self.event(
            actor.company_id.0,
            entity.table(),
            id.0,
            format!("{entity}.shared"),
            serde_json::json!({"user_id": with, "access": access_name, "expires_at": expires_at}),
        ));
        if matches!(entity, Entity::Customer | Entity::Contact)
            && let Some(e) = cs.events.last_mut()
        {
            // The record is written too (see above): its new version.
            let mut payload = e.payload.to_value();
            payload["version"] = serde_json::json!(row.version() + 1);
            e.payload = payload.into();
        }
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            entity.table(),
            id.0,
            "share",
            vec![change],
        ));
        self.apply(cs).await
    }

    async fn share_rows(
        &self,
        actor: &Actor,
        table: Table,
        id: uuid::Uuid,
        user: Option<UserId>,
    ) -> Result<Vec<Row>> {
        let mut sel = Select::all(Table::Shares, actor.company_id.0, self.now());
        let mut f = vec![
            Filter::Cmp(Col::Column("entity"), CmpOp::Eq, table.name().into()),
            Filter::Cmp(Col::Column("record_id"), CmpOp::Eq, Value::Id(id)),
        ];
        if let Some(u) = user {
            f.push(Filter::Cmp(
                Col::Column("user_id"),
                CmpOp::Eq,
                Value::Id(u.0),
            ));
        }
        sel.filter = Filter::And(f);
        Ok(self.store.select(&sel).await?.rows)
    }

    /// Ends a user's share of a record.
    pub async fn unshare_record(
        &self,
        actor: &Actor,
        entity: Entity,
        id: RecordId,
        with: UserId,
    ) -> Result<()> {
        let row = self.owned_row(actor, entity, id).await?;
        if !actor.covers(entity, Action::Share, &row) {
            return Err(self
                .refuse(actor, entity, &row, |code| {
                    format!(
                        "{} may not change the sharing of {entity} {code}",
                        actor.display_name
                    )
                })
                .await);
        }
        let code = row
            .get("code")
            .as_text()
            .unwrap_or(&id.to_string())
            .to_string();
        let rows = self
            .share_rows(actor, entity.table(), id.0, Some(with))
            .await?;
        // The user as shared with, deactivated or deleted since too.
        let username = self
            .store
            .get(Table::Users, with.0)
            .await?
            .filter(|u| u.get("company_id").as_id() == Some(actor.company_id.0))
            .and_then(|u| u.get("username").as_text().map(str::to_string))
            .unwrap_or_else(|| with.to_string());
        if rows.is_empty() {
            return Err(Error::not_found(
                "share",
                format!("{entity} {code} with user {username}"),
            ));
        }
        // What ended: the share as last granted.
        let ended = rows
            .iter()
            .max_by_key(|r| r.get("created_at").as_timestamp())
            .map(|r| {
                (
                    r.get("access").as_text().unwrap_or("read").to_string(),
                    r.get("expires_at").as_timestamp(),
                )
            })
            .unwrap_or_default();
        let now = self.now();
        let mut cs = ChangeSet::default();
        for r in rows {
            cs.ops.push(Op::Update {
                table: Table::Shares,
                id: r.id(),
                expected_version: r.version(),
                values: vec![("deleted_at", Value::Timestamp(now))],
            });
        }
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            entity.table(),
            id.0,
            "unshare",
            vec![FieldChange {
                field: format!("share:{username}"),
                before: serde_json::json!({"access": ended.0, "expires_at": ended.1}),
                after: Json::Null,
            }],
        ));
        cs.events.push(self.event(
            actor.company_id.0,
            entity.table(),
            id.0,
            format!("{entity}.unshared"),
            serde_json::json!({"user_id": with, "access": ended.0, "expires_at": ended.1}),
        ));
        self.apply(cs).await
    }

    /// The live shares of a record the actor can see. Its owner, an
    /// administrator and whoever may edit, transfer or share it by their
    /// own data scope see them all; anyone else reading it (through a share,
    /// a read-only scope, an approval) sees only their own share: who else
    /// has the record is for those who manage it.
    pub async fn list_shares(
        &self,
        actor: &Actor,
        entity: Entity,
        id: RecordId,
    ) -> Result<Vec<Share>> {
        if !entity.is_record() {
            return Err(Error::invalid(
                "entity",
                format!("{entity} is not a business record"),
            ));
        }
        let row = self.readable_row(actor, entity, id).await?;
        let only = (!sees_all_shares(actor, entity, &row)).then_some(actor.user_id);
        let now = self.now();
        Ok(self
            .share_rows(actor, entity.table(), id.0, only)
            .await?
            .iter()
            .filter(|r| r.get("expires_at").as_timestamp().is_none_or(|e| e > now))
            .map(|r| Share {
                user_id: UserId(r.get("user_id").as_id().unwrap_or_default()),
                access: if r.get("access").as_text() == Some("write") {
                    ShareAccess::Write
                } else {
                    ShareAccess::Read
                },
                expires_at: r.get("expires_at").as_timestamp(),
                granted_by: UserId(r.get("granted_by").as_id().unwrap_or_default()),
            })
            .collect())
    }
}

/// A guard that `select` finds nothing when the change commits, under
/// `customer`'s contacts key (which its delete, archive, release, merge
/// and the writes of its documents take).
fn customer_state_guard(
    company: uuid::Uuid,
    customer: &Row,
    select: crate::store::Select,
    message: String,
) -> crate::store::Guard {
    crate::store::Guard {
        kind: crate::store::GuardKind::State,
        keys: vec![crate::records::customer_contacts_key(
            company,
            customer.id(),
        )],
        select,
        message,
    }
}

/// `ids` without repeats, in their order: a batch acts on a record named
/// twice once (the second time would read as refused, or as done by
/// someone else).
pub(crate) fn distinct_ids(ids: &[RecordId]) -> Vec<RecordId> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// Whether `actor` sees every share of the record `row` (its owner, an
/// administrator, whoever may edit, transfer or share it by their own data
/// scope), not only their own: in [`Crm::list_shares`] and in the record's
/// history.
pub(crate) fn sees_all_shares(actor: &Actor, entity: Entity, row: &Row) -> bool {
    actor.is_admin()
        || row.get("owner_id").as_id() == Some(actor.user_id.0)
        || [Action::Update, Action::Transfer, Action::Share]
            .into_iter()
            .any(|a| actor.covers(entity, a, row))
}

/// A customer's open opportunities, in words, with what to do about them:
/// "it has open opportunity JH-1; close it …", "it has open opportunities
/// JH-1, JH-2 and 1 more of others'; close them …", "it has 2 open
/// opportunities of others'; …"; `None` when there are none.
fn open_list(named: Vec<String>, others: usize) -> Option<String> {
    let total = named.len() + others;
    let noun = if total == 1 {
        "opportunity"
    } else {
        "opportunities"
    };
    let them = if total == 1 { "it" } else { "them" };
    let which = match (named.is_empty(), others) {
        (true, 0) => return None,
        (true, n) => format!("{n} open {noun} of others'"),
        (false, 0) => format!("open {noun} {}", named.join(", ")),
        (false, n) => format!("open {noun} {} and {n} more of others'", named.join(", ")),
    };
    Some(format!(
        "it has {which}; close {them} (won or lost) or delete {them} first"
    ))
}

/// What became of one sales document in
/// [`Crm::transfer_customers_with_documents`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DocumentTransfer {
    /// Opportunity, quote or contract.
    pub entity: Entity,
    /// The document (a quote's version).
    pub id: RecordId,
    /// Its code; `None` when the actor may not read the document.
    pub code: Option<String>,
    /// Why it stayed with its owner; `None` when it was transferred.
    pub refused: Option<String>,
}

/// An event's payload with the version the change set's update of row `id`
/// of `table` gives it (`version`), when the change set updates it (a purge
/// deletes it: no version).
pub(crate) fn with_version(mut payload: Json, ops: &[Op], table: Table, id: uuid::Uuid) -> Json {
    let version = ops.iter().rev().find_map(|op| match op {
        Op::Update {
            table: t,
            id: i,
            expected_version,
            ..
        } if *t == table && *i == id => Some(expected_version + 1),
        _ => None,
    });
    if let (Some(v), Some(map)) = (version, payload.as_object_mut()) {
        map.insert("version".into(), Json::from(v));
    }
    payload
}
