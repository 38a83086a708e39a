//! Contracts and orders (合同及订单): typed, with lines and exact totals,
//! approved through the approval engine (`contract` flows), with their
//! received and invoiced amounts kept in the contract row in the same change
//! set as the payment or invoice that changes them.

use super::lines::{Line, LineInput, totals};
use super::{opt_text, req_text};
use crate::approval::{ApprovalInfo, Facts, Status, SubmitRequest};
use crate::auth::{Action, Actor};
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::ids::RecordId;
use crate::money::Money;
use crate::query::Page;
use crate::schema::Table;
use crate::store::{ChangeSet, CmpOp, Col, FieldChange, Filter, Op, Paging, Row, Select, Sort};
use crate::value::Value;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Contract types (合同类型).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractType {
    /// 销售合同.
    Sales,
    /// 服务合同.
    Service,
    /// 业务合作.
    Cooperation,
    /// 采购合同.
    Purchase,
}

impl ContractType {
    /// Every type.
    pub const ALL: [ContractType; 4] = [
        ContractType::Sales,
        ContractType::Service,
        ContractType::Cooperation,
        ContractType::Purchase,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            ContractType::Sales => "sales",
            ContractType::Service => "service",
            ContractType::Cooperation => "cooperation",
            ContractType::Purchase => "purchase",
        }
    }

    /// The Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            ContractType::Sales => "销售合同",
            ContractType::Service => "服务合同",
            ContractType::Cooperation => "业务合作",
            ContractType::Purchase => "采购合同",
        }
    }

    /// Parses an API name (letter case aside) or Chinese label.
    pub fn parse(s: &str) -> Option<ContractType> {
        ContractType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()) || t.label_zh() == s.trim())
    }
}

/// Contract statuses (合同状态).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractStatus {
    /// 草稿: editable, not yet submitted.
    Draft,
    /// 审批中.
    PendingApproval,
    /// 执行中: approved; payments and invoices are recorded.
    Executing,
    /// 结束.
    Finished,
    /// 意外中止.
    Terminated,
}

impl ContractStatus {
    /// Every status.
    pub const ALL: [ContractStatus; 5] = [
        ContractStatus::Draft,
        ContractStatus::PendingApproval,
        ContractStatus::Executing,
        ContractStatus::Finished,
        ContractStatus::Terminated,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            ContractStatus::Draft => "draft",
            ContractStatus::PendingApproval => "pending_approval",
            ContractStatus::Executing => "executing",
            ContractStatus::Finished => "finished",
            ContractStatus::Terminated => "terminated",
        }
    }

    /// The English label, as messages name the status.
    pub fn label_en(self) -> &'static str {
        match self {
            ContractStatus::Draft => "a draft",
            ContractStatus::PendingApproval => "pending approval",
            ContractStatus::Executing => "executing",
            ContractStatus::Finished => "finished",
            ContractStatus::Terminated => "terminated",
        }
    }

    /// The status in both languages, e.g. `executing (执行中)`.
    pub fn label(self) -> String {
        format!("{} ({})", self.label_en(), self.label_zh())
    }

    /// The Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            ContractStatus::Draft => "草稿",
            ContractStatus::PendingApproval => "审批中",
            ContractStatus::Executing => "执行中",
            ContractStatus::Finished => "结束",
            ContractStatus::Terminated => "意外中止",
        }
    }

    /// Parses an API name or Chinese label.
    pub fn parse(s: &str) -> Option<ContractStatus> {
        ContractStatus::ALL
            .into_iter()
            .find(|t| t.name() == s.trim() || t.label_zh() == s.trim())
    }
}

/// A new contract (a draft).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewContract {
    /// The title, e.g. `华为服务器采购合同`.
    pub title: String,
    /// The customer.
    pub customer_id: Uuid,
    /// The type (default sales).
    pub contract_type: Option<ContractType>,
    /// The opportunity it closes.
    pub opportunity_id: Option<Uuid>,
    /// Lines; when empty, `amount` is the contract amount. Lines add up to
    /// a positive amount.
    pub lines: Vec<LineInput>,
    /// The amount of a contract without lines (refused together with
    /// lines).
    pub amount: Option<Money>,
    /// Signing date (签约日期).
    pub signed_on: Option<NaiveDate>,
    /// Start date.
    pub start_on: Option<NaiveDate>,
    /// End date.
    pub end_on: Option<NaiveDate>,
    /// Notes.
    pub notes: Option<String>,
}

/// Changes to a contract; `None` keeps a value. A draft takes every
/// change. An approved (executing) contract is what its approval approved:
/// its title, signing date, lines and amount no longer change (a change of
/// terms is a new contract, approved anew); its start and end dates (the
/// term it runs, e.g. an extension) and notes still do. A contract pending
/// approval, finished or terminated takes none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContractPatch {
    /// The title.
    pub title: Option<String>,
    /// New lines (replace all; the amount follows; they add up to a
    /// positive amount).
    pub lines: Option<Vec<LineInput>>,
    /// The amount of a contract without lines (refused together with new
    /// lines).
    pub amount: Option<Money>,
    /// Signing date.
    pub signed_on: Option<NaiveDate>,
    /// Start date.
    pub start_on: Option<NaiveDate>,
    /// End date.
    pub end_on: Option<NaiveDate>,
    /// Notes.
    pub notes: Option<String>,
}

/// Refuses a contract's dates as they would stand when its end date is
/// before its start date or before its signing date (a contract does not
/// end before it is signed), naming both dates.
impl Crm {
    /// Refuses moving a contract's signing date to `signed` while an
    /// instalment of its payment plan falls due, a payment was received
    /// or an invoice is dated before it: none of them is dated before the
    /// contract began. Each is named.
    async fn nothing_dated_before(
        &self,
        actor: &Actor,
        c: &Contract,
        signed: NaiveDate,
    ) -> Result<()> {
        let mut before = Vec::new();
        for (table, column, what) in [
            (Table::PaymentPlans, "due_on", "instalment due"),
            (Table::Payments, "received_on", "payment received"),
            (Table::Invoices, "invoice_date", "invoice dated"),
        ] {
            for r in self.rows_of_contract(actor, table, c.id).await? {
                if matches!(
                    r.get("status").as_text(),
                    Some("voided" | "rejected" | "withdrawn")
                ) {
                    continue;
                }
                if let Some(d) = r.get(column).as_date()
                    && d < signed
                {
                    before.push(format!(
                        "{what} {d} ({})",
                        Money::cny(r.get("amount").as_int().unwrap_or(0))
                    ));
                }
            }
        }
        if before.is_empty() {
            return Ok(());
        }
        Err(Error::invalid(
            "signed_on (签约日期)",
            format!(
                "contract {} cannot be signed on {signed}: {} lie before that day; change the \
                 plan or void what was recorded by mistake first (签约日期不能晚于已有的回款计划、\
                 回款或开票日期)",
                c.code,
                before.join(", ")
            ),
        ))
    }
}

/// Refuses a signing date ahead of today: it records what happened, and
/// one ahead would keep every payment and invoice out until then (they
/// are not dated before it).
fn signed_not_ahead(today: NaiveDate, signed: Option<NaiveDate>) -> Result<()> {
    match signed {
        Some(s) if s > today => Err(Error::invalid(
            "signed_on (签约日期)",
            format!(
                "{s} is in the future (today is {today}): a contract is given its signing \
                 date once it is signed (签约日期不能晚于今天)"
            ),
        )),
        _ => Ok(()),
    }
}

fn check_contract_dates(
    signed: Option<NaiveDate>,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
) -> Result<()> {
    let Some(e) = end else {
        return Ok(());
    };
    if let Some(s) = start
        && e < s
    {
        return Err(Error::invalid(
            "end_on (结束日期)",
            format!("{e} is before the start date {s}"),
        ));
    }
    if let Some(s) = signed
        && e < s
    {
        return Err(Error::invalid(
            "end_on (结束日期)",
            format!(
                "{e} is before the signing date (签约日期) {s}: a contract does not end before it is signed"
            ),
        ));
    }
    Ok(())
}

/// A contract as the actor sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    /// The id.
    pub id: Uuid,
    /// The code, e.g. `HT-20261127-0001`.
    pub code: String,
    /// The title.
    pub title: String,
    /// The customer.
    pub customer_id: Uuid,
    /// The owner.
    pub owner_id: Option<Uuid>,
    /// The owner's department.
    pub department_id: Option<Uuid>,
    /// The opportunity.
    pub opportunity_id: Option<Uuid>,
    /// The quote it was made from.
    pub quote_id: Option<Uuid>,
    /// The type.
    pub contract_type: ContractType,
    /// The status.
    pub status: ContractStatus,
    /// Lines.
    pub lines: Vec<Line>,
    /// The amount, tax included (合同金额).
    pub amount: Money,
    /// The amount in Chinese capitals (大写), for documents.
    pub amount_capital: String,
    /// The VAT in the amount.
    pub tax: Money,
    /// Signing date.
    pub signed_on: Option<NaiveDate>,
    /// Start date.
    pub start_on: Option<NaiveDate>,
    /// End date.
    pub end_on: Option<NaiveDate>,
    /// Confirmed payments received (已回款).
    pub received: Money,
    /// amount − received (未回款).
    pub outstanding: Money,
    /// Invoices issued (已开票).
    pub invoiced: Money,
    /// amount − invoiced (未开票).
    pub not_invoiced: Money,
    /// Why it was terminated.
    pub terminated_reason: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// The row version.
    pub version: i64,
}

/// A contract search.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContractQuery {
    /// Only this status.
    pub status: Option<ContractStatus>,
    /// Only this type.
    pub contract_type: Option<ContractType>,
    /// Only this customer's.
    pub customer_id: Option<Uuid>,
    /// Only executing contracts ending within this many days from today.
    pub ending_within_days: Option<u32>,
    /// Only executing contracts whose end date has passed.
    pub expired: bool,
    /// Only executing contracts not fully collected (未回款完): finished
    /// contracts are fully collected, terminated ones will not be paid.
    pub not_fully_received: bool,
    /// Code, title or pinyin initials.
    pub search: Option<String>,
    /// The page, from 1.
    pub page: u64,
    /// Items per page (default 10).
    pub per_page: u64,
}

pub(crate) fn contract_from_row(r: &Row) -> Contract {
    let amount = Money::cny(r.get("amount").as_int().unwrap_or(0));
    let received = Money::cny(r.get("received").as_int().unwrap_or(0));
    let invoiced = Money::cny(r.get("invoiced").as_int().unwrap_or(0));
    Contract {
        id: r.id(),
        code: r.get("code").as_text().unwrap_or_default().to_string(),
        title: r.get("title").as_text().unwrap_or_default().to_string(),
        customer_id: r.get("customer_id").as_id().unwrap_or_default(),
        owner_id: r.get("owner_id").as_id(),
        department_id: r.get("department_id").as_id(),
        opportunity_id: r.get("opportunity_id").as_id(),
        quote_id: r.get("quote_id").as_id(),
        contract_type: r
            .get("contract_type")
            .as_text()
            .and_then(ContractType::parse)
            .unwrap_or(ContractType::Sales),
        status: r
            .get("status")
            .as_text()
            .and_then(ContractStatus::parse)
            .unwrap_or(ContractStatus::Draft),
        lines: r
            .get("lines")
            .as_json()
            .cloned()
            .and_then(|j| serde_json::from_value(j).ok())
            .unwrap_or_default(),
        amount_capital: amount.to_chinese_capital().unwrap_or_default(),
        amount,
        tax: Money::cny(r.get("tax").as_int().unwrap_or(0)),
        signed_on: r.get("signed_on").as_date(),
        start_on: r.get("start_on").as_date(),
        end_on: r.get("end_on").as_date(),
        received,
        outstanding: Money::cny(amount.minor - received.minor),
        invoiced,
        not_invoiced: Money::cny(amount.minor - invoiced.minor),
        terminated_reason: r.get("terminated_reason").as_text().map(str::to_string),
        notes: r.get("notes").as_text().map(str::to_string),
        version: r.version(),
    }
}

/// The last end date `ending_within_days = days` takes in: `days` from
/// `today`, but no later than 9999-12-31 — a date beyond that overflows
/// the calendar for the largest counts, and is not compared as a date by
/// every store.
fn ending_by(today: NaiveDate, days: u32) -> NaiveDate {
    let last = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    today
        .checked_add_days(chrono::Days::new(u64::from(days)))
        .map_or(last, |d| d.min(last))
}

/// A contract given both lines and an amount: the amount of a contract
/// with lines is the sum of its lines, so one of them would be ignored.
fn both_lines_and_amount() -> Error {
    Error::invalid(
        "amount (合同金额)",
        "give either lines or an amount (合同金额), not both: the amount of a contract \
         with lines is the sum of its lines",
    )
}

/// Lines adding up to nothing: a contract's amount is positive.
fn zero_lines_total(total: Money) -> Error {
    Error::invalid(
        "lines",
        format!("the lines add up to {total}; a contract's amount must be positive"),
    )
}

/// Payments awaiting approval in words: their amounts and dates.
fn awaiting_text(awaiting: &[Row]) -> String {
    awaiting
        .iter()
        .map(|r| {
            let amount = Money::cny(r.get("amount").as_int().unwrap_or(0));
            match r.get("received_on").as_date() {
                Some(d) => format!("{amount} received {d}"),
                None => amount.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status a document takes when its approval reaches `status`.
fn contract_status_for(status: Status) -> ContractStatus {
    match status {
        Status::Pending => ContractStatus::PendingApproval,
        Status::Approved => ContractStatus::Executing,
        Status::Rejected | Status::Withdrawn => ContractStatus::Draft,
    }
}

impl Crm {
    /// Reads a live contract the actor may see.
    pub(crate) async fn contract_row(&self, actor: &Actor, id: Uuid) -> Result<Row> {
        let row = self
            .readable_row(actor, Entity::Contract, RecordId(id))
            .await?;
        if !row.get("deleted_at").is_null() {
            return Err(Error::not_found(Entity::Contract, id));
        }
        Ok(row)
    }

    /// Reads a live contract the actor may edit, to record money or goods
    /// on (payments, invoices, payment plans, deliveries): refused while
    /// the contract is archived, where no list would show what is recorded.
    pub(crate) async fn contract_for_records(
        &self,
        actor: &Actor,
        id: Uuid,
        what: &str,
    ) -> Result<Row> {
        let row = self.writable_contract(actor, id).await?;
        if !row.get("archived_at").is_null() {
            return Err(Error::InvalidState(format!(
                "contract {} is archived; {what} cannot be recorded on it: unarchive it first",
                row.get("code").as_text().unwrap_or_default()
            )));
        }
        // Nor on a contract whose customer is in the recycle bin or
        // archived: the money would be owed by a customer nobody works with.
        if let Some(customer) = row.get("customer_id").as_id()
            && let Some(c) = self.store.get(Table::Customers, customer).await?
            && (!c.get("deleted_at").is_null() || !c.get("archived_at").is_null())
        {
            let (state, undo) = if c.get("deleted_at").is_null() {
                ("archived (客户已归档)", "unarchive")
            } else {
                ("in the recycle bin (客户已删除)", "restore")
            };
            return Err(Error::InvalidState(format!(
                "contract {}'s customer {} is {state}; {what} cannot be recorded on it: {undo} \
                 the customer first",
                row.get("code").as_text().unwrap_or_default(),
                c.get("code").as_text().unwrap_or_default()
            )));
        }
        Ok(row)
    }

    /// The customer's live contracts still executing (执行中), named by
    /// code where the actor may read them and counted otherwise, in words;
    /// `None` when there are none. A customer leaves the working set once
    /// its contracts are finished or terminated, even when nothing is owed
    /// on them any more: a payment voided later would be owed again.
    pub(crate) async fn executing_contracts_named(
        &self,
        actor: &Actor,
        customer: &Row,
    ) -> Result<Option<String>> {
        // Archived ones too: unarchived, they execute again.
        let mut sel = Select::all(Table::Contracts, actor.company_id.0, self.now());
        sel.lifecycle = crate::store::Lifecycle::Any;
        sel.filter = Filter::And(vec![
            Filter::Cmp(
                Col::Column("customer_id"),
                CmpOp::Eq,
                Value::Id(customer.id()),
            ),
            Filter::Cmp(
                Col::Column("status"),
                CmpOp::Eq,
                Value::from(ContractStatus::Executing.name()),
            ),
            Filter::IsNull(Col::Column("deleted_at")),
        ]);
        let (mut named, mut unnamed) = (Vec::new(), 0usize);
        for row in self.store.select(&sel).await?.rows {
            if self
                .can_on_row(actor, Entity::Contract, Action::Read, &row)
                .await?
            {
                named.push(row.get("code").as_text().unwrap_or_default().to_string());
            } else {
                unnamed += 1;
            }
        }
        if named.is_empty() && unnamed == 0 {
            return Ok(None);
        }
        Ok(Some(format!(
            "{} still executing (合同执行中); finish the contracts (完成) or terminate \
             them with a reason first",
            contracts_subject(&named, unnamed)
        )))
    }

    /// The live payments of a contract awaiting approval.
    pub(crate) async fn payments_awaiting_approval(
        &self,
        actor: &Actor,
        contract: Uuid,
    ) -> Result<Vec<Row>> {
        Ok(self
            .rows_of_contract(actor, Table::Payments, contract)
            .await?
            .into_iter()
            .filter(|r| r.get("status").as_text() == Some("pending_approval"))
            .collect())
    }

    /// What keeps a contract among the receivables, in words: the money
    /// still owed on a contract payments are collected on (see
    /// `collected_on`) and the payments awaiting approval; `None` when
    /// there is neither.
    pub(crate) async fn contract_money_open(
        &self,
        actor: &Actor,
        row: &Row,
    ) -> Result<Option<String>> {
        let c = contract_from_row(row);
        let awaiting = self.payments_awaiting_approval(actor, c.id).await?;
        let mut parts = Vec::new();
        if super::payment::collected_on(&c) && c.outstanding.minor > 0 {
            parts.push(format!(
                "{} is still outstanding (received {} of {})",
                c.outstanding, c.received, c.amount
            ));
        }
        if !awaiting.is_empty() {
            parts.push(format!(
                "payments awaiting approval: {}",
                awaiting_text(&awaiting)
            ));
        }
        Ok((!parts.is_empty()).then(|| parts.join("; ")))
    }

    /// What keeps a customer in the working set: its live contracts still
    /// owed money or with payments awaiting approval
    /// ([`Crm::contract_money_open`]), named by code where the actor may
    /// read them and counted otherwise; `None` when there are none.
    pub(crate) async fn contracts_with_money_open(
        &self,
        actor: &Actor,
        customer: &Row,
    ) -> Result<Option<String>> {
        let mut sel = Select::all(Table::Contracts, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(
            Col::Column("customer_id"),
            CmpOp::Eq,
            Value::Id(customer.id()),
        );
        let (mut named, mut unnamed) = (Vec::new(), 0usize);
        for row in self.store.select(&sel).await?.rows {
            if self.contract_money_open(actor, &row).await?.is_none() {
                continue;
            }
            if self
                .can_on_row(actor, Entity::Contract, Action::Read, &row)
                .await?
            {
                named.push(row.get("code").as_text().unwrap_or_default().to_string());
            } else {
                unnamed += 1;
            }
        }
        if named.is_empty() && unnamed == 0 {
            return Ok(None);
        }
        Ok(Some(owed_contracts_text(&named, unnamed)))
    }

    /// The customers among `ids` (of `company`) their sales keep with their
    /// owner, and why: still owed money — a live contract payments are
    /// collected on with money outstanding, or payments awaiting approval
    /// (as [`Crm::contract_money_open`] counts them) — or a quote or
    /// contract awaiting approval (approved, it would be owed by a customer
    /// nobody holds). For nobody in particular: the recycling sweep.
    pub(crate) async fn customers_kept_by_sales(
        &self,
        company: Uuid,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, KeptBySales>> {
        let mut kept = HashMap::new();
        for chunk in ids.chunks(500) {
            for table in [Table::Quotes, Table::Contracts] {
                let mut sel = Select::all(table, company, self.now());
                sel.filter = Filter::And(vec![
                    Filter::In(
                        Col::Column("customer_id"),
                        chunk.iter().map(|id| Value::Id(*id)).collect(),
                    ),
                    Filter::Cmp(
                        Col::Column("status"),
                        CmpOp::Eq,
                        Value::from(crate::sales::QuoteStatus::PendingApproval.name()),
                    ),
                ]);
                for row in self.store.select(&sel).await?.rows {
                    if let Some(c) = row.get("customer_id").as_id() {
                        kept.insert(c, KeptBySales::PendingApproval);
                    }
                }
            }
        }
        let owed = self.customers_owed_money(company, ids).await?;
        kept.extend(owed.into_iter().map(|c| (c, KeptBySales::OwedMoney)));
        Ok(kept)
    }

    /// The customers among `ids` still owed money (see
    /// [`Crm::customers_kept_by_sales`]).
    async fn customers_owed_money(&self, company: Uuid, ids: &[Uuid]) -> Result<HashSet<Uuid>> {
        let mut owed = HashSet::new();
        for chunk in ids.chunks(500) {
            let mut sel = Select::all(Table::Contracts, company, self.now());
            sel.filter = Filter::In(
                Col::Column("customer_id"),
                chunk.iter().map(|id| Value::Id(*id)).collect(),
            );
            let mut of_contract = HashMap::new();
            for row in self.store.select(&sel).await?.rows {
                let c = contract_from_row(&row);
                let customer = row.get("customer_id").as_id().unwrap_or_default();
                if super::payment::collected_on(&c) && c.outstanding.minor > 0 {
                    owed.insert(customer);
                } else {
                    of_contract.insert(row.id(), customer);
                }
            }
            let contracts: Vec<Value> = of_contract.keys().map(|id| Value::Id(*id)).collect();
            for part in contracts.chunks(500) {
                let mut sel = Select::all(Table::Payments, company, self.now());
                sel.filter = Filter::And(vec![
                    Filter::In(Col::Column("contract_id"), part.to_vec()),
                    Filter::Cmp(
                        Col::Column("status"),
                        CmpOp::Eq,
                        Value::from("pending_approval"),
                    ),
                ]);
                for p in self.store.select(&sel).await?.rows {
                    if let Some(c) = p
                        .get("contract_id")
                        .as_id()
                        .and_then(|c| of_contract.get(&c))
                    {
                        owed.insert(*c);
                    }
                }
            }
        }
        Ok(owed)
    }

    /// Reads a live contract the actor may edit.
    pub(crate) async fn writable_contract(&self, actor: &Actor, id: Uuid) -> Result<Row> {
        let row = self.contract_row(actor, id).await?;
        if !self
            .can_on_row(actor, Entity::Contract, Action::Update, &row)
            .await?
        {
            return Err(Error::Forbidden(format!(
                "{} may not change contract {}",
                actor.display_name,
                row.get("code").as_text().unwrap_or_default()
            )));
        }
        Ok(row)
    }

    /// Who owns the contract a quote becomes, and its department: the
    /// quote's owner, in their department today, when another user (their
    /// manager) converts it: the deal stays the salesperson's, in lists,
    /// receivables and reports. The converter owns it instead when the
    /// quote's owner may no longer act (deactivated, removed) or lies
    /// outside the converter's create scope (a write sharee converting).
    async fn converted_contract_owner(
        &self,
        actor: &Actor,
        quote: &Row,
    ) -> Result<(Uuid, Option<Uuid>)> {
        let own = (actor.user_id.0, actor.department_id.map(|d| d.0));
        let Some(owner) = quote.get("owner_id").as_id() else {
            return Ok(own);
        };
        if owner == actor.user_id.0 {
            return Ok(own);
        }
        let user = match self.user(actor, crate::ids::UserId(owner)).await {
            Ok(u) if u.active => u,
            Ok(_) | Err(Error::NotFound { .. } | Error::Forbidden(_)) => return Ok(own),
            Err(e) => return Err(e),
        };
        match self
            .check_owner_for_create(actor, Entity::Contract, owner, None)
            .await
        {
            Ok(()) => {}
            Err(Error::Forbidden(_) | Error::NotFound { .. }) => return Ok(own),
            Err(e) => return Err(e),
        }
        // Nor is a contract given to someone who no longer sees its
        // customer (transferred away since the quote was made).
        let Some(customer) = quote.get("customer_id").as_id() else {
            return Ok(own);
        };
        let sees = match self.actor(crate::ids::UserId(owner)).await {
            // Nor to someone whose roles do not work on contracts (they
            // could neither read nor change their own).
            Ok(them)
                if !(them.can(Entity::Contract, Action::Read)
                    && them.can(Entity::Contract, Action::Update)) =>
            {
                false
            }
            Ok(them) => match self
                .readable_row(&them, Entity::Customer, crate::ids::RecordId(customer))
                .await
            {
                Ok(_) => true,
                Err(Error::NotFound { .. } | Error::Forbidden(_)) => false,
                Err(e) => return Err(e),
            },
            Err(Error::NotFound { .. } | Error::Forbidden(_) | Error::Unauthenticated(_)) => false,
            Err(e) => return Err(e),
        };
        Ok(if sees {
            (owner, user.department_id.map(|d| d.0))
        } else {
            own
        })
    }

    /// Creates a draft contract for a customer the actor can see.
    pub async fn create_contract(&self, actor: &Actor, input: NewContract) -> Result<Contract> {
        self.create_contract_from(actor, input, None).await
    }

    pub(crate) async fn create_contract_from(
        &self,
        actor: &Actor,
        input: NewContract,
        quote: Option<(Row, Vec<Line>)>,
    ) -> Result<Contract> {
        if !actor.can(Entity::Contract, Action::Create) {
            return Err(Error::Forbidden(format!(
                "{} may not create contracts",
                actor.display_name
            )));
        }
        let title = req_text("title (合同名称)", &input.title, 128)?;
        if !input.lines.is_empty() && input.amount.is_some() {
            return Err(both_lines_and_amount());
        }
        signed_not_ahead(self.today(), input.signed_on)?;
        check_contract_dates(input.signed_on, input.start_on, input.end_on)?;
        let customer = self
            .sales_record_customer(actor, input.customer_id, "a contract")
            .await?;
        let mut opportunity_guards = Vec::new();
        if let Some(o) = input.opportunity_id {
            opportunity_guards = self
                .check_document_opportunity(actor, o, input.customer_id, "contract")
                .await?;
        }
        let (quote_row, lines) = match quote {
            Some((q, lines)) => (Some(q), lines),
            None => (None, self.price_lines(actor, &input.lines, &[]).await?),
        };
        let quote_id = quote_row.as_ref().map(Row::id);
        let (owner, department) = match &quote_row {
            Some(q) => self.converted_contract_owner(actor, q).await?,
            None => (actor.user_id.0, actor.department_id.map(|d| d.0)),
        };
        let t = totals(&lines).map_err(|m| Error::invalid("lines", m))?;
        let (amount, tax) = if lines.is_empty() {
            let a = input.amount.ok_or_else(|| {
                Error::invalid(
                    "amount (合同金额)",
                    "a contract without lines needs an amount",
                )
            })?;
            super::require_cny("amount (合同金额)", &a)?;
            if a.is_negative() || a.is_zero() {
                return Err(Error::invalid(
                    "amount (合同金额)",
                    format!("{a} is not positive"),
                ));
            }
            (a, Money::cny(0))
        } else {
            if t.amount.minor <= 0 {
                return Err(zero_lines_total(t.amount));
            }
            (t.amount, t.tax)
        };
        let company = actor.company_id.0;
        let code = self.next_code(actor.company_id, "HT").await?;
        let id = self.new_id();
        let now = self.now();
        let ty = input.contract_type.unwrap_or(ContractType::Sales);
        let lines_json = serde_json::to_value(&lines)
            .map_err(|e| Error::InvalidState(format!("cannot encode lines: {e}")))?;
        let values = vec![
            ("id", Value::Id(id)),
            ("company_id", Value::Id(company)),
            ("version", Value::Int(1)),
            ("created_at", Value::Timestamp(now)),
            ("updated_at", Value::Timestamp(now)),
            ("owner_id", Value::Id(owner)),
            ("department_id", department.map_or(Value::Null, Value::Id)),
            ("created_by", Value::Id(actor.user_id.0)),
            ("custom", Value::Json(json!({}))),
            ("code", Value::Text(code.clone())),
            (
                "pinyin_keys",
                Value::Text(crate::pinyin::search_keys(&title)),
            ),
            ("title", Value::Text(title.clone())),
            ("customer_id", Value::Id(input.customer_id)),
            (
                "opportunity_id",
                input.opportunity_id.map_or(Value::Null, Value::Id),
            ),
            ("quote_id", quote_id.map_or(Value::Null, Value::Id)),
            ("contract_type", Value::Text(ty.name().into())),
            ("status", Value::Text(ContractStatus::Draft.name().into())),
            ("lines", Value::Json(lines_json)),
            ("amount", Value::Int(amount.minor)),
            ("tax", Value::Int(tax.minor)),
            (
                "signed_on",
                input.signed_on.map_or(Value::Null, Value::Date),
            ),
            ("start_on", input.start_on.map_or(Value::Null, Value::Date)),
            ("end_on", input.end_on.map_or(Value::Null, Value::Date)),
            ("received", Value::Int(0)),
            ("outstanding", Value::Int(amount.minor)),
            ("invoiced", Value::Int(0)),
            ("notes", opt_text(input.notes.clone())),
        ];
        let mut cs = ChangeSet::default();
        cs.guards.push(self.customer_live_guard(company, &customer));
        cs.guards
            .push(self.customer_kept_guard(company, &customer, "the contract"));
        // The opportunity it closes is still open (not lost or expired)
        // when the contract is written.
        cs.guards.extend(opportunity_guards);
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Contracts,
            id,
            "create",
            vec![
                FieldChange {
                    field: "title".into(),
                    before: serde_json::Value::Null,
                    after: json!(title),
                },
                FieldChange {
                    field: "amount".into(),
                    before: serde_json::Value::Null,
                    after: json!(amount.minor),
                },
            ],
        ));
        cs.events.push(self.event(
            company,
            Table::Contracts,
            id,
            "contract.created".into(),
            json!({"code": code, "title": title, "customer_id": input.customer_id,
                   "amount": amount.minor, "quote_id": quote_id}),
        ));
        cs.ops.push(Op::Insert {
            table: Table::Contracts,
            values,
        });
        if let Some(q) = &quote_row {
            self.mark_quote_converted(actor, q, id, &mut cs);
        }
        self.apply(cs).await?;
        self.contract(actor, id).await
    }

    /// Changes a contract if it is still at `expected_version`: a draft
    /// in every field; an executing (approved) one only in its start and
    /// end dates (e.g. an extension) and notes — its title, signing date,
    /// lines and amount are what was approved, and a change of them is
    /// refused, naming them (see [`ContractPatch`]). A contract pending
    /// approval, finished or terminated is not changed. New lines of a
    /// draft keep the products of its lines, discontinued (停售) ones too;
    /// a line adding a discontinued product is refused. A patch giving
    /// the values the contract has changes nothing: the contract is
    /// returned as it is, at its version, and nothing is written.
    pub async fn update_contract(
        &self,
        actor: &Actor,
        id: Uuid,
        expected_version: i64,
        patch: ContractPatch,
    ) -> Result<Contract> {
        let row = self.writable_contract(actor, id).await?;
        let c = contract_from_row(&row);
        match c.status {
            ContractStatus::Draft => {}
            ContractStatus::Executing => {
                // What the approval approved, given a different value.
                let mut approved: Vec<&str> = Vec::new();
                if patch
                    .title
                    .as_deref()
                    .is_some_and(|t| t.trim() != c.title.as_str())
                {
                    approved.push("title (合同名称)");
                }
                if patch.signed_on.is_some_and(|d| Some(d) != c.signed_on) {
                    approved.push("signing date (签约日期)");
                }
                if patch.lines.is_some() {
                    approved.push("lines (产品明细)");
                }
                if patch.amount.is_some_and(|a| a != c.amount) {
                    approved.push("amount (合同金额)");
                }
                if !approved.is_empty() {
                    return Err(Error::InvalidState(format!(
                        "contract {} is {}: it was approved as it stands, so its {} no longer \
                         change (已审批的合同不能修改); only its start and end dates and notes \
                         do. For other terms, terminate it (意外中止) with a reason and make a \
                         new contract for approval",
                        c.code,
                        c.status.label(),
                        approved.join(", ")
                    )));
                }
            }
            ContractStatus::PendingApproval => {
                return Err(Error::InvalidState(format!(
                    "contract {} is {}: it is not changed while its approval runs; withdraw \
                     the approval first (撤回审批), change it, and submit it again",
                    c.code,
                    c.status.label()
                )));
            }
            ContractStatus::Finished | ContractStatus::Terminated => {
                return Err(Error::InvalidState(format!(
                    "contract {} is {}: a closed contract is not changed (已结束的合同不能修改)",
                    c.code,
                    c.status.label()
                )));
            }
        }
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        if let Some(t) = &patch.title {
            let t = req_text("title (合同名称)", t, 128)?;
            values.push(("pinyin_keys", Value::Text(crate::pinyin::search_keys(&t))));
            values.push(("title", Value::Text(t)));
        }
        if patch.lines.is_some() && patch.amount.is_some() {
            return Err(both_lines_and_amount());
        }
        let new_amount = if let Some(lines) = &patch.lines {
            // Its lines keep their products, discontinued ones too.
            let priced = self.price_lines(actor, lines, &c.lines).await?;
            let t = totals(&priced).map_err(|m| Error::invalid("lines", m))?;
            if priced.is_empty() {
                return Err(Error::invalid("lines", "give lines or an amount"));
            }
            if t.amount.minor <= 0 {
                return Err(zero_lines_total(t.amount));
            }
            values.push((
                "lines",
                Value::Json(
                    serde_json::to_value(&priced)
                        .map_err(|e| Error::InvalidState(format!("cannot encode lines: {e}")))?,
                ),
            ));
            values.push(("tax", Value::Int(t.tax.minor)));
            Some(t.amount)
        } else if let Some(a) = patch.amount {
            if !c.lines.is_empty() {
                return Err(Error::invalid(
                    "amount (合同金额)",
                    "the amount of a contract with lines is the sum of its lines",
                ));
            }
            super::require_cny("amount (合同金额)", &a)?;
            if a.minor <= 0 {
                return Err(Error::invalid(
                    "amount (合同金额)",
                    format!("{a} is not positive"),
                ));
            }
            Some(a)
        } else {
            None
        };
        if let Some(a) = new_amount {
            // The payment plan may not exceed the amount; a plan written
            // meanwhile bumps the contract, so this write then conflicts.
            let planned: i64 = self
                .rows_of_contract(actor, Table::PaymentPlans, id)
                .await?
                .iter()
                .map(|p| p.get("amount").as_int().unwrap_or(0))
                .sum();
            if planned > a.minor {
                return Err(Error::invalid(
                    "amount (合同金额)",
                    format!(
                        "{a} is less than the payment plan's total {}; change the plan first",
                        Money::cny(planned)
                    ),
                ));
            }
            values.push(("amount", Value::Int(a.minor)));
            values.push(("outstanding", Value::Int(a.minor - c.received.minor)));
        }
        for (col, d) in [
            ("signed_on", patch.signed_on),
            ("start_on", patch.start_on),
            ("end_on", patch.end_on),
        ] {
            if let Some(d) = d {
                values.push((col, Value::Date(d)));
            }
        }
        // (Checked when a date changes: a contract stored with dates out
        // of order still takes other changes.)
        if patch.signed_on.is_some() || patch.start_on.is_some() || patch.end_on.is_some() {
            signed_not_ahead(self.today(), patch.signed_on)?;
            if let Some(signed) = patch.signed_on {
                self.nothing_dated_before(actor, &c, signed).await?;
            }
            check_contract_dates(
                patch.signed_on.or(c.signed_on),
                patch.start_on.or(c.start_on),
                patch.end_on.or(c.end_on),
            )?;
        }
        // What no instalment schedules falls due on the end date: moved
        // later, what is overdue of it stays due all the same.
        if let Some(end) = patch.end_on.filter(|e| Some(*e) != c.end_on) {
            let today = self.today();
            let plans = super::payment::dated_plans(
                &self
                    .rows_of_contract(actor, Table::PaymentPlans, id)
                    .await?,
                today,
            );
            let overdue = |end_on| {
                super::payment::overdue_minor(
                    c.amount.minor,
                    end_on,
                    c.received.minor,
                    &plans,
                    today,
                )
            };
            super::payment::overdue_not_put_off(actor, &c, overdue(c.end_on), overdue(Some(end)))?;
        }
        if let Some(n) = &patch.notes {
            values.push(("notes", opt_text(Some(n.clone()))));
        }
        let changes: Vec<FieldChange> = values
            .iter()
            .filter(|(k, v)| !matches!(*k, "pinyin_keys" | "lines") && row.get(k) != v)
            .map(|(k, v)| FieldChange {
                field: (*k).into(),
                before: row.get(k).to_json(),
                after: v.to_json(),
            })
            .collect();
        // The host is told which fields changed (the lines as one field).
        let mut fields: Vec<String> = changes.iter().map(|c| c.field.clone()).collect();
        if values.iter().any(|(k, v)| *k == "lines" && row.get(k) != v) {
            fields.push("lines".into());
        }
        // Values as they are change nothing: the contract is returned as
        // it is, nothing written, announced or recorded.
        if fields.is_empty() {
            return Ok(c);
        }
        values.push(("updated_at", Value::Timestamp(self.now())));
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Contracts,
            id,
            expected_version,
            values,
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Contracts,
            id,
            "update",
            changes.clone(),
        ));
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Contracts,
            id,
            "contract.updated".into(),
            json!({
                "code": c.code,
                "fields": fields,
                "version": expected_version + 1,
                "changes": &changes,
            }),
        ));
        self.apply(cs).await?;
        self.contract(actor, id).await
    }

    /// A contract the actor may see.
    pub async fn contract(&self, actor: &Actor, id: Uuid) -> Result<Contract> {
        Ok(contract_from_row(&self.contract_row(actor, id).await?))
    }

    /// Finds a contract the actor may see by its code.
    pub async fn contract_by_code(&self, actor: &Actor, code: &str) -> Result<Contract> {
        let mut sel = Select::all(Table::Contracts, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(
            Col::Column("code"),
            CmpOp::Eq,
            Value::Text(crate::validate::record_code(code)),
        );
        let row = self
            .store
            .select(&sel)
            .await?
            .rows
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(Entity::Contract, code.trim()))?;
        // One the actor may not read is not found by the code asked for,
        // exactly as a code nobody has: its id is not told.
        self.contract(actor, row.id())
            .await
            .map_err(|e| e.not_found_as(Entity::Contract, code.trim()))
    }

    /// Submits a draft contract for approval. Without a `contract` flow the
    /// contract is approved at once. Returns the contract and its approval.
    pub async fn submit_contract(
        &self,
        actor: &Actor,
        id: Uuid,
        picked: Vec<Uuid>,
        comment: Option<&str>,
    ) -> Result<(Contract, Option<ApprovalInfo>)> {
        let row = self.writable_contract(actor, id).await?;
        let c = contract_from_row(&row);
        if c.status != ContractStatus::Draft {
            return Err(Error::InvalidState(format!(
                "contract {} is {}; only a draft is submitted{}",
                c.code,
                c.status.label(),
                if c.status == ContractStatus::PendingApproval {
                    ": it is submitted already; wait for the decision, or withdraw the \
                     approval (撤回审批) to change it"
                } else {
                    ""
                }
            )));
        }
        let customer = self
            .document_customer_guard(
                actor,
                &format!("contract {}", c.code),
                "submitting",
                c.customer_id,
            )
            .await?;
        let opportunity_guards = match c.opportunity_id {
            Some(o) => {
                self.opportunity_still_open(actor, o, &format!("submitting contract {}", c.code))
                    .await?
            }
            None => Vec::new(),
        };
        if self.approval_flow(actor, "contract").await?.is_none()
            && self
                .approval_of(actor, "contract", id)
                .await
                .ok()
                .flatten()
                .is_none()
        {
            let mut cs = ChangeSet::default();
            self.set_contract_status(actor, &row, ContractStatus::Executing, &mut cs);
            self.contract_deal_closed(actor, &row, &mut cs).await?;
            cs.guards.push(customer);
            cs.guards.extend(opportunity_guards.clone());
            cs.events.push(self.event(
                actor.company_id.0,
                Table::Contracts,
                id,
                "contract.approved".into(),
                json!({"document_id": id, "document_code": c.code, "doc_type": "contract",
                       "status": "approved", "approval_id": null}),
            ));
            self.apply(cs).await?;
            return Ok((self.contract(actor, id).await?, None));
        }
        let t = self
            .document_submission(
                actor,
                &SubmitRequest {
                    doc_type: "contract".into(),
                    document_id: id,
                    document_code: Some(c.code.clone()),
                    title: Some(c.title.clone()),
                    facts: Facts {
                        amount_minor: Some(c.amount.minor),
                        kind: Some(c.contract_type.name().into()),
                        // A contract with lines is approved on its largest
                        // discount against the list prices, as a quote is.
                        discount_bp: c.lines.iter().map(Line::effective_discount_bp).max(),
                    },
                    picked,
                    comment: comment.map(str::to_string),
                },
            )
            .await?;
        let mut changes = t.changes;
        // The approval routes on the contract as read here: an edit
        // committed since (a new amount) fails the submission instead of
        // running on facts it no longer has.
        super::pin_read_version(&mut changes, Table::Contracts, id, row.version());
        changes.guards.push(customer);
        changes.guards.extend(opportunity_guards);
        self.apply(changes).await?;
        Ok((self.contract(actor, id).await?, Some(t.info)))
    }

    /// Adds the status change of a contract to a change set.
    pub(crate) fn set_contract_status(
        &self,
        actor: &Actor,
        row: &Row,
        status: ContractStatus,
        cs: &mut ChangeSet,
    ) {
        self.set_document_status(actor, Table::Contracts, row, status.name(), cs);
    }

    /// Applies an approval's outcome to its contract (same change set).
    pub(crate) async fn contract_approval_effect(
        &self,
        actor: &Actor,
        info: &ApprovalInfo,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let Some(row) = self
            .approval_document_row(actor, Table::Contracts, info)
            .await?
        else {
            return Ok(());
        };
        let c = contract_from_row(&row);
        let status = contract_status_for(info.status);
        if c.status == status {
            return Ok(());
        }
        // An approval moves a contract only while it is in the approval's
        // hands: a draft being submitted, or a contract pending approval.
        let applies = match status {
            ContractStatus::PendingApproval | ContractStatus::Executing => {
                matches!(
                    c.status,
                    ContractStatus::Draft | ContractStatus::PendingApproval
                )
            }
            ContractStatus::Draft => c.status == ContractStatus::PendingApproval,
            ContractStatus::Finished | ContractStatus::Terminated => false,
        };
        if !applies {
            if status == ContractStatus::Executing {
                return Err(Error::InvalidState(format!(
                    "contract {} is {}; its approval cannot put it into execution",
                    c.code,
                    c.status.label_zh()
                )));
            }
            return Ok(());
        }
        self.set_contract_status(actor, &row, status, cs);
        if status == ContractStatus::Executing {
            self.contract_deal_closed(actor, &row, cs).await?;
        }
        Ok(())
    }

    /// An approved sales or service contract closes a deal with its
    /// customer (成交), for the customer pools.
    async fn contract_deal_closed(
        &self,
        actor: &Actor,
        row: &Row,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let c = contract_from_row(row);
        if c.contract_type == ContractType::Purchase {
            return Ok(());
        }
        self.customer_sales_activity(
            actor,
            c.customer_id,
            crate::pool::SalesActivity {
                deal_closed_at: Some(self.now()),
                last_opportunity_is: None,
                ..crate::pool::SalesActivity::default()
            },
            cs,
        )
        .await
    }

    /// Finishes an executing contract (结束) or terminates it (意外中止,
    /// with a reason; also while pending approval).
    ///
    /// - Finishing needs the contract fully collected: a contract with money
    ///   still outstanding is refused, naming the amount (and any payments
    ///   awaiting approval). A contract that will not be paid in full is
    ///   terminated with a reason instead; terminated contracts are no
    ///   longer receivable.
    /// - Finishing does not wait for deliveries: goods still owed are
    ///   delivered on the finished contract (a service contract's lines need
    ///   none); a terminated contract takes no delivery.
    /// - Terminating a contract with payments awaiting approval is refused,
    ///   naming them: finance approves (the money came in) or rejects them
    ///   first, so no receipt is silently dropped or confirmed afterwards.
    /// - Terminating a contract pending approval withdraws its approval in
    ///   the same change set (recorded as a withdrawal by the actor, with
    ///   the reason), so it leaves the approvers' pending lists.
    pub async fn close_contract(
        &self,
        actor: &Actor,
        id: Uuid,
        terminate_reason: Option<&str>,
    ) -> Result<Contract> {
        let row = self.writable_contract(actor, id).await?;
        let c = contract_from_row(&row);
        // Ending a contract cannot be undone: like deleting it, it is for
        // whoever's role covers the contract (its owner, their managers), not
        // for a colleague it is shared with, who may work on it.
        if !actor.covers(Entity::Contract, Action::Update, &row) {
            return Err(Error::Forbidden(format!(
                "{} may not {} contract {}: it is shared with them, and ending a contract \
                 (完成/中止) is for its owner or whoever's role covers it",
                actor.display_name,
                if terminate_reason.is_some() {
                    "terminate"
                } else {
                    "finish"
                },
                c.code
            )));
        }
        let target = match terminate_reason {
            Some(r) => {
                if r.trim().is_empty() {
                    return Err(Error::invalid(
                        "reason",
                        "terminating a contract needs a reason",
                    ));
                }
                if !matches!(
                    c.status,
                    ContractStatus::Executing | ContractStatus::PendingApproval
                ) {
                    return Err(Error::InvalidState(format!(
                        "contract {} is {}; only executing or pending contracts can be terminated",
                        c.code,
                        c.status.label_zh()
                    )));
                }
                ContractStatus::Terminated
            }
            None => {
                if c.status != ContractStatus::Executing {
                    return Err(Error::InvalidState(format!(
                        "contract {} is {}; only executing contracts can be finished",
                        c.code,
                        c.status.label_zh()
                    )));
                }
                ContractStatus::Finished
            }
        };
        let awaiting = self.payments_awaiting_approval(actor, id).await?;
        let awaiting_text = || awaiting_text(&awaiting);
        if target == ContractStatus::Finished && c.outstanding.minor > 0 {
            let pending = if awaiting.is_empty() {
                String::new()
            } else {
                format!("; payments awaiting approval: {}", awaiting_text())
            };
            return Err(Error::InvalidState(format!(
                "contract {} still has {} outstanding (received {} of {}){pending}; \
                 only a fully collected contract can be finished: record the missing \
                 payments, or terminate the contract with a reason if it will not be paid",
                c.code, c.outstanding, c.received, c.amount
            )));
        }
        if !awaiting.is_empty() {
            return Err(Error::InvalidState(format!(
                "contract {} has payments awaiting approval ({}); approve or reject them \
                 before closing the contract",
                c.code,
                awaiting_text()
            )));
        }
        let mut cs = ChangeSet::default();
        // A pending approval ends with the contract.
        if target == ContractStatus::Terminated
            && c.status == ContractStatus::PendingApproval
            && let Some(t) = self
                .document_withdrawal(
                    actor,
                    "contract",
                    id,
                    &format!(
                        "合同意外中止: {}",
                        terminate_reason.unwrap_or_default().trim()
                    ),
                )
                .await?
        {
            cs = t.changes;
        }
        let now = self.now();
        cs.ops.push(Op::Update {
            table: Table::Contracts,
            id,
            expected_version: row.version(),
            values: vec![
                ("status", Value::Text(target.name().into())),
                (
                    "terminated_reason",
                    terminate_reason.map_or(Value::Null, |r| Value::Text(r.trim().into())),
                ),
                ("updated_at", Value::Timestamp(now)),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Contracts,
            id,
            "status",
            vec![FieldChange {
                field: "status".into(),
                before: json!(c.status.name()),
                after: json!(target.name()),
            }],
        ));
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Contracts,
            id,
            format!("contract.{}", target.name()),
            json!({"code": c.code, "reason": terminate_reason,
                   "received": c.received.minor, "outstanding": c.outstanding.minor}),
        ));
        self.apply(cs).await?;
        self.contract(actor, id).await
    }

    /// Lists contracts the actor may see, newest first.
    pub async fn list_contracts(&self, actor: &Actor, q: &ContractQuery) -> Result<Page<Contract>> {
        let mut sel = self.contract_select(actor, q);
        sel.sort = vec![Sort {
            col: Col::Column("created_at"),
            desc: true,
        }];
        let per_page = if q.per_page == 0 {
            10
        } else {
            q.per_page.min(1000)
        };
        sel.paging = Paging::Offset {
            offset: (q.page.max(1) - 1).saturating_mul(per_page),
            limit: per_page,
        };
        sel.with_total = true;
        let got = self.store.select(&sel).await?;
        Ok(Page {
            items: got.rows.iter().map(contract_from_row).collect(),
            total: got.total,
            has_more: got.has_more,
            next_cursor: None,
        })
    }

    /// The contracts `q` finds among those the actor may read: the select
    /// of [`Crm::list_contracts`] without its sort and paging.
    pub(crate) fn contract_select(&self, actor: &Actor, q: &ContractQuery) -> Select {
        let mut filters = Vec::new();
        let eq = |c: &'static str, v: Value| Filter::Cmp(Col::Column(c), CmpOp::Eq, v);
        if let Some(s) = q.status {
            filters.push(eq("status", Value::Text(s.name().into())));
        }
        if let Some(t) = q.contract_type {
            filters.push(eq("contract_type", Value::Text(t.name().into())));
        }
        if let Some(c) = q.customer_id {
            filters.push(eq("customer_id", Value::Id(c)));
        }
        let today = self.today();
        if let Some(n) = q.ending_within_days {
            filters.push(eq(
                "status",
                Value::Text(ContractStatus::Executing.name().into()),
            ));
            filters.push(Filter::Cmp(
                Col::Column("end_on"),
                CmpOp::Ge,
                Value::Date(today),
            ));
            filters.push(Filter::Cmp(
                Col::Column("end_on"),
                CmpOp::Le,
                Value::Date(ending_by(today, n)),
            ));
        }
        if q.expired {
            filters.push(eq(
                "status",
                Value::Text(ContractStatus::Executing.name().into()),
            ));
            filters.push(Filter::Cmp(
                Col::Column("end_on"),
                CmpOp::Lt,
                Value::Date(today),
            ));
        }
        if q.not_fully_received {
            // Contracts still collected (see `collected_on`); a terminated
            // one will not be paid.
            filters.push(Filter::In(
                Col::Column("status"),
                super::payment::collected_statuses(),
            ));
            filters.push(Filter::Cmp(
                Col::Column("outstanding"),
                CmpOp::Gt,
                Value::Int(0),
            ));
        }
        filters.extend(super::search_filter(q.search.as_deref(), "title"));
        let mut sel = Select::all(Table::Contracts, actor.company_id.0, self.now());
        sel.scope = actor.store_scope(Entity::Contract, Action::Read).unwrap_or(
            crate::store::Scope::Restricted {
                owners: Vec::new(),
                departments: Vec::new(),
                shared_with: Some(actor.user_id.0),
            },
        );
        sel.filter = Filter::And(filters);
        sel
    }
}

/// "its contract HT-1 is", "its contracts HT-1, HT-2 and 1 of others' are",
/// "1 of its contracts (another user's) is" … still owed money: the
/// contracts the reader may read by code, the others counted.
fn owed_contracts_text(named: &[String], unnamed: usize) -> String {
    format!(
        "{} still owed money or awaiting a payment's approval",
        contracts_subject(named, unnamed)
    )
}

/// "its contract HT-1 is", "its contracts HT-1, HT-2 and 1 of others' are",
/// "2 of its contracts (other users') are": a customer's contracts named by
/// code where the reader may read them and counted otherwise, with the verb.
fn contracts_subject(named: &[String], unnamed: usize) -> String {
    let verb = if named.len() + unnamed == 1 {
        "is"
    } else {
        "are"
    };
    let subject = match (named.len(), unnamed) {
        (0, 1) => "1 of its contracts (another user's)".to_string(),
        (0, n) => format!("{n} of its contracts (other users')"),
        (1, 0) => format!("its contract {}", named[0]),
        (_, 0) => format!("its contracts {}", named.join(", ")),
        (_, n) => format!("its contracts {} and {n} of others'", named.join(", ")),
    };
    format!("{subject} {verb}")
}

#[cfg(test)]
mod owed_text_tests {
    use super::owed_contracts_text;

    #[test]
    fn owed_contracts_read_as_sentences() {
        let hts = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            owed_contracts_text(&hts(&["HT-1"]), 0),
            "its contract HT-1 is still owed money or awaiting a payment's approval"
        );
        assert_eq!(
            owed_contracts_text(&hts(&["HT-1", "HT-2"]), 1),
            "its contracts HT-1, HT-2 and 1 of others' are still owed money or awaiting a payment's approval"
        );
        assert_eq!(
            owed_contracts_text(&[], 1),
            "1 of its contracts (another user's) is still owed money or awaiting a payment's approval"
        );
        assert_eq!(
            owed_contracts_text(&[], 3),
            "3 of its contracts (other users') are still owed money or awaiting a payment's approval"
        );
    }
}

/// Why a customer's sales keep it with its owner (see
/// [`Crm::customers_kept_by_sales`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeptBySales {
    /// Money is still owed on its contracts.
    OwedMoney,
    /// A quote or contract of it awaits approval.
    PendingApproval,
}
