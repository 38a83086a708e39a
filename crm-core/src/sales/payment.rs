//! Payment collection (回款) and invoices (开票) of contracts, and the
//! receivables lists.
//!
//! A contract's `received` and `outstanding` columns change only in the
//! change set that confirms a payment, with the contract's expected version,
//! so they always equal the sum of its confirmed payments; a payment that
//! would exceed what is outstanding (counting payments awaiting approval) is
//! refused. Plans are allocated in due-date order ([`allocate`]) to tell
//! what is overdue and for how long.

use super::contract::{ContractStatus, contract_from_row};
use super::opt_text;
use crate::approval::{ApprovalInfo, Facts, Status, SubmitRequest};
use crate::auth::{Action, Actor};
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::{Error, Result, ValidationErrors};
use crate::money::Money;
use crate::schema::Table;
use crate::store::{ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, Op, Row, Select, Sort};
use crate::value::Value;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One instalment of a payment plan, as entered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInput {
    /// When it is due.
    pub due_on: NaiveDate,
    /// How much.
    pub amount: Money,
    /// Notes.
    pub notes: Option<String>,
}

/// One instalment with what has been received against it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStatus {
    /// The plan row.
    pub id: Uuid,
    /// Its number, from 1, in due-date order.
    pub instalment: i64,
    /// When it is due.
    pub due_on: NaiveDate,
    /// How much.
    pub amount: Money,
    /// Received against it (payments allocated oldest due first).
    pub received: Money,
    /// amount − received.
    pub outstanding: Money,
    /// Days past due of the outstanding part (0 when not due or paid).
    pub days_overdue: i64,
}

/// A recorded payment (回款记录).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The id.
    pub id: Uuid,
    /// The contract.
    pub contract_id: Uuid,
    /// How much.
    pub amount: Money,
    /// When received.
    pub received_on: NaiveDate,
    /// How (bank transfer, cash, acceptance bill …).
    pub method: String,
    /// `confirmed`, `pending_approval`, `rejected`, `withdrawn` (its
    /// approval withdrawn) or `voided`.
    pub status: String,
    /// The bank receipt number (回款单号), in the form it is compared in
    /// ([`receipt_number_key`]; as typed when recorded before that).
    pub receipt_no: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Why a voided payment was voided (作废原因), as its history records
    /// it; `None` for other payments (and where a list leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void_reason: Option<String>,
}

/// The status of a payment whose approval was withdrawn (已撤回): like a
/// rejected one, it never counts as received.
pub const WITHDRAWN: &str = "withdrawn";

/// The status of a payment voided after it was confirmed (作废): it no
/// longer counts as received.
pub const VOIDED: &str = "voided";

/// A payment status (`confirmed`, `pending_approval`, `rejected`,
/// `withdrawn`, `voided`) in
/// English and Chinese, as people read it; an unknown one as it is.
pub fn payment_status_label(status: &str) -> (&str, &str) {
    match status {
        "confirmed" => ("confirmed", "已确认"),
        "pending_approval" => ("pending approval", "审批中"),
        "rejected" => ("rejected", "已驳回"),
        WITHDRAWN => ("withdrawn", "已撤回"),
        VOIDED => ("voided", "已作废"),
        other => (other, other),
    }
}

impl Payment {
    /// The status's Chinese label (已确认, 审批中, 已驳回, 已撤回, 已作废).
    pub fn status_label_zh(&self) -> &str {
        payment_status_label(&self.status).1
    }

    /// The status in both languages, e.g. `pending approval (审批中)`.
    pub fn status_label(&self) -> String {
        let (en, zh) = payment_status_label(&self.status);
        format!("{en} ({zh})")
    }
}

/// A payment as entered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentInput {
    /// How much (positive).
    pub amount: Money,
    /// When received.
    pub received_on: NaiveDate,
    /// How (default 银行转账).
    pub method: Option<String>,
    /// The bank receipt number (回款单号): recorded once in the company
    /// among live payments, compared and kept by [`receipt_number_key`].
    pub receipt_no: Option<String>,
    /// Notes.
    pub notes: Option<String>,
}

/// A contract's collection status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// The contract amount.
    pub amount: Money,
    /// Confirmed payments.
    pub received: Money,
    /// Payments awaiting approval.
    pub pending: Money,
    /// amount − received.
    pub outstanding: Money,
    /// Outstanding amounts past due: of instalments, and of the part no
    /// instalment schedules once the contract's end date has passed.
    pub overdue: Money,
    /// The instalments.
    pub plans: Vec<PlanStatus>,
    /// The part of the amount no instalment schedules (all of it without
    /// plans), due on the contract's end date: what of it is outstanding.
    pub unplanned: Money,
    /// Days the unplanned part is past the contract's end date (0 while
    /// not due, or when the contract has no end date).
    pub unplanned_days_overdue: i64,
    /// The payments, oldest first.
    pub payments: Vec<Payment>,
}

/// Invoice types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceType {
    /// 增值税专用发票.
    VatSpecial,
    /// 增值税普通发票.
    VatNormal,
}

impl InvoiceType {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            InvoiceType::VatSpecial => "vat_special",
            InvoiceType::VatNormal => "vat_normal",
        }
    }

    /// Parses an API name or the Chinese name (专票/普票 too).
    pub fn parse(s: &str) -> Option<InvoiceType> {
        match s.trim() {
            "vat_special" | "增值税专用发票" | "专票" => Some(InvoiceType::VatSpecial),
            "vat_normal" | "增值税普通发票" | "普票" => Some(InvoiceType::VatNormal),
            _ => None,
        }
    }
}

/// An invoice plan or an issued invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The id.
    pub id: Uuid,
    /// The contract.
    pub contract_id: Uuid,
    /// `plan` (开票计划) or `issued` (开票记录).
    pub kind: String,
    /// The type.
    pub invoice_type: InvoiceType,
    /// The amount.
    pub amount: Money,
    /// The invoice number (issued only).
    pub number: Option<String>,
    /// The planned or issue date.
    pub invoice_date: Option<NaiveDate>,
    /// `planned` (an open plan), `fulfilled` (a plan issued invoices have
    /// fulfilled), `issued`, or `voided` (作废: an issued invoice voided
    /// afterwards, which no longer counts as invoiced).
    #[serde(default)]
    pub status: String,
    /// Why it was voided.
    #[serde(default)]
    pub void_reason: Option<String>,
    /// When it was voided.
    #[serde(default)]
    pub voided_at: Option<DateTime<Utc>>,
    /// Who voided it.
    #[serde(default)]
    pub voided_by: Option<Uuid>,
}

/// The status of an invoice plan.
pub const INVOICE_PLANNED: &str = "planned";
/// The status of an issued invoice that counts as invoiced.
pub const INVOICE_ISSUED: &str = "issued";
/// The status of an invoice plan that issued invoices have fulfilled
/// (计划已开票): no longer open, kept for the record (see
/// [`Crm::add_invoice`]).
pub const INVOICE_PLAN_FULFILLED: &str = "fulfilled";

/// How many times a write given no expected version (a payment, an
/// invoice, an invoice plan) is tried on a contract that others keep
/// changing meanwhile before the conflict is reported: each try reads the
/// contract again and makes every check again, so clerks recording at once
/// all get an answer on the merits (saved, or refused as overpayment).
const CONTRACT_TRIES: u32 = crate::crm::WRITE_TRIES;

/// Whether an invoice row is an open invoice plan: a plan neither
/// fulfilled by issued invoices nor otherwise closed (a plan an older build
/// wrote holds no status, and is open).
fn is_open_plan(r: &Row) -> bool {
    r.get("kind").as_text() == Some("plan")
        && r.get("status")
            .as_text()
            .is_none_or(|s| s == INVOICE_PLANNED)
}

/// The open invoice plans among a contract's invoice rows in the order
/// issued invoices fulfil them: earliest planned date first, undated plans
/// last, then oldest first (the rows come oldest first).
fn open_plans_in_order(rows: &[Row]) -> Vec<&Row> {
    let mut open: Vec<&Row> = rows.iter().filter(|r| is_open_plan(r)).collect();
    open.sort_by_key(|r| {
        let d = r.get("invoice_date").as_date();
        (d.is_none(), d)
    });
    open
}

/// How an issued invoice of `amount` fen fulfils the open plans `plans`
/// (their amounts, earliest invoice date first, undated ones last): for each plan, what
/// of it the invoice takes. Plans are taken whole while the invoice lasts;
/// the plan it reaches last may be taken in part; the rest take nothing.
pub fn fulfil_plans(plans: &[i64], amount: i64) -> Vec<i64> {
    allocate(plans, amount)
}

/// An invoice status (`planned`, `fulfilled`, `issued`, `voided`) in English and
/// Chinese, as people read it; an unknown one as it is.
pub fn invoice_status_label(status: &str) -> (&str, &str) {
    match status {
        INVOICE_PLANNED => ("planned", "开票计划"),
        INVOICE_ISSUED => ("issued", "已开票"),
        INVOICE_PLAN_FULFILLED => ("fulfilled", "计划已开票"),
        VOIDED => ("voided", "已作废"),
        other => (other, other),
    }
}

impl Invoice {
    /// The status's Chinese label (开票计划, 已开票, 已作废).
    pub fn status_label_zh(&self) -> &str {
        invoice_status_label(&self.status).1
    }

    /// The status in both languages, e.g. `voided (已作废)`.
    pub fn status_label(&self) -> String {
        let (en, zh) = invoice_status_label(&self.status);
        format!("{en} ({zh})")
    }

    /// Whether it is voided (作废).
    pub fn is_voided(&self) -> bool {
        self.status == VOIDED
    }
}

/// An invoice number as typed, as it is kept and compared: full-width
/// letters and digits as their ASCII twins, letters in upper case, trimmed
/// (`０４４００１２３` and `04400123` are one number, `r4-x` and `R4-X` too);
/// refused when it holds white space or control characters inside, or is
/// longer than 40 characters (a VAT invoice's number has 8 or 20 digits,
/// with its 发票代码 12).
pub fn invoice_number(typed: &str) -> std::result::Result<String, String> {
    // Invisible format characters (a zero-width space pasted along) are
    // no part of a number: `INV\u{200B}1` is INV1, and meets it.
    let visible = crate::validate::strip_invisible(typed);
    let t = visible.trim();
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "'{t}' holds a space or a control character; an invoice number has none"
        ));
    }
    // Without white space, the form numbers are compared in.
    let n = invoice_number_key(t);
    if n.chars().count() > 40 {
        return Err(format!(
            "'{}…' is longer than 40 characters",
            n.chars().take(20).collect::<String>()
        ));
    }
    Ok(n)
}

/// The form an invoice number is compared in, whatever form it is stored
/// in: as [`invoice_number`] keeps it (full-width letters and digits as
/// their ASCII twins, letters in upper case), and without any white space
/// or invisible format character.
/// Numbers recorded before they were kept so are stored as they were typed
/// (`ｒ4-x`, `0440 0123`); they meet a number typed now through this key.
pub fn invoice_number_key(stored: &str) -> String {
    crate::validate::strip_invisible(&stored.replace('\0', ""))
        .chars()
        .map(crate::validate::halfwidth)
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// A filter that finds every invoice whose stored number has the key `n`
/// (see [`invoice_number_key`]), and a few more, which the caller leaves
/// out by comparing keys: a stored number differs from its key only by
/// the ASCII case of its letters (found by a case-insensitive match of
/// `n`), by a full-width twin or a lower-case form of one of `n`'s
/// characters, or by white space (each found by that character).
fn invoice_number_candidates(n: &str) -> Filter {
    number_candidates("number", n)
}

/// A bank receipt number (回款单号) as it is kept and compared, whatever
/// form it was typed or stored in: as an invoice number
/// ([`invoice_number_key`]: full-width letters and digits as their ASCII
/// twins, letters in upper case, no white space), invisible format
/// characters dropped — `SJ-001`, `sj-001`, `ＳＪ-001` and `SJ -001` are one
/// receipt. Receipts recorded before are stored as typed; they meet a
/// number typed now through this key.
pub fn receipt_number_key(stored: &str) -> String {
    invoice_number_key(stored)
}

/// [`invoice_number_candidates`] over any column of numbers (`number`,
/// `receipt_no`).
fn number_candidates(column: &'static str, n: &str) -> Filter {
    let col = || Col::Column(column);
    // Spaces, and the invisible characters numbers pasted from elsewhere
    // were stored with before they were dropped.
    let mut marks: std::collections::BTreeSet<char> = [
        ' ', '\t', '\u{3000}', '\u{a0}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}',
        '\u{200f}', '\u{2060}', '\u{feff}', '\u{ad}', '\u{202a}', '\u{202b}', '\u{202c}',
        '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
    ]
    .into_iter()
    .collect();
    for c in n.chars() {
        for form in c.to_lowercase().chain(std::iter::once(c)) {
            if !form.is_ascii() {
                // (A character of `n` itself is no mark of another form.)
                if form != c {
                    marks.insert(form);
                }
            } else {
                let wide = crate::validate::fullwidth(form);
                if wide != form && form != ' ' {
                    marks.insert(wide);
                }
            }
        }
    }
    let mut any = vec![Filter::Contains(col(), n.to_string())];
    any.extend(
        marks
            .into_iter()
            .map(|m| Filter::Contains(col(), m.to_string())),
    );
    Filter::Or(any)
}

/// The longest reason a payment or invoice is voided with, in characters.
pub const MAX_VOID_REASON_CHARS: usize = 500;

/// The reason a payment or an invoice (`what`) is voided with, trimmed:
/// required, without NUL, at most [`MAX_VOID_REASON_CHARS`] characters.
fn void_reason<'a>(reason: &'a str, what: &str) -> Result<&'a str> {
    let reason = reason.trim();
    let problem = if reason.is_empty() {
        format!("say why the {what} is voided")
    } else if reason.contains('\0') {
        "holds a NUL character (\\0)".to_string()
    } else if reason.chars().count() > MAX_VOID_REASON_CHARS {
        format!("is longer than {MAX_VOID_REASON_CHARS} characters")
    } else {
        return Ok(reason);
    };
    Err(Error::invalid("reason (作废原因)", problem))
}

/// One line of the receivables list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivableRow {
    /// The customer.
    pub customer_id: Uuid,
    /// The owner.
    pub owner_id: Option<Uuid>,
    /// Contracts with something outstanding.
    pub contracts: u64,
    /// Outstanding.
    pub outstanding: Money,
    /// Not yet due (outstanding − overdue).
    pub current: Money,
    /// Overdue.
    pub overdue: Money,
    /// Overdue by age: 0–30, 31–60, 61–90, over 90 days.
    pub aging: [Money; 4],
}

/// Allocates `received` to instalments in order (they must be sorted by due
/// date): each instalment takes what it can, the rest goes to the next.
/// Returns the amount received against each.
pub fn allocate(plans: &[i64], received: i64) -> Vec<i64> {
    let mut left = received.max(0);
    plans
        .iter()
        .map(|amount| {
            let take = left.min((*amount).max(0));
            left -= take;
            take
        })
        .collect()
}

/// What is overdue on `today` on a contract of `amount` (fen) that has
/// `received`: of its instalments (due date and amount, sorted by due
/// date; payments fill the earliest first, see [`allocate`]) what is past
/// due and not received, and what no instalment schedules once `end_on`
/// has passed ([`Crm::collection`] in one figure).
pub(crate) fn overdue_minor(
    amount: i64,
    end_on: Option<NaiveDate>,
    received: i64,
    plans: &[(NaiveDate, i64)],
    today: NaiveDate,
) -> i64 {
    let amounts: Vec<i64> = plans.iter().map(|(_, a)| *a).collect();
    let got = allocate(&amounts, received);
    let mut overdue: i64 = plans
        .iter()
        .zip(got)
        .filter(|((due, a), g)| *due < today && a - g > 0)
        .map(|((_, a), g)| a - g)
        .sum();
    let planned: i64 = amounts.iter().map(|a| (*a).max(0)).sum();
    let beyond = (received - planned).max(0);
    let unplanned = (amount - planned - beyond).max(0);
    if unplanned > 0 && end_on.is_some_and(|e| e < today) {
        overdue += unplanned;
    }
    overdue
}

/// Instalment rows as (due date, amount) pairs sorted by due date, as
/// [`overdue_minor`] takes them (a row without a date as due `today`).
pub(crate) fn dated_plans(rows: &[Row], today: NaiveDate) -> Vec<(NaiveDate, i64)> {
    let mut plans: Vec<(NaiveDate, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.get("due_on").as_date().unwrap_or(today),
                r.get("amount").as_int().unwrap_or(0),
            )
        })
        .collect();
    plans.sort_by_key(|(due, _)| *due);
    plans
}

/// Refuses a change of a contract's terms (its payment plan, its end date)
/// that would put off money already overdue (`before` fen overdue today,
/// `after` under the change), unless an administrator makes it: the aging
/// a finance clerk relies on is not the salesperson's to clear. Only a
/// contract being collected has anything overdue.
pub(crate) fn overdue_not_put_off(
    actor: &Actor,
    c: &super::contract::Contract,
    before: i64,
    after: i64,
) -> Result<()> {
    if after >= before || actor.is_admin() || !collected_on(c) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "contract {} has {} overdue today; the change would leave {} of it overdue, putting \
         off {}: what is overdue stays due (collect it, or terminate the contract with a \
         reason); only an administrator may reschedule it",
        c.code,
        Money::cny(before),
        Money::cny(after),
        Money::cny(before - after)
    )))
}

/// The aging bucket (0–3) of an amount `days` past due (≥ 1).
pub fn aging_bucket(days: i64) -> usize {
    match days {
        ..=30 => 0,
        31..=60 => 1,
        61..=90 => 2,
        _ => 3,
    }
}

/// A payment from its stored row.
pub(crate) fn payment_from_row(r: &Row) -> Payment {
    Payment {
        id: r.id(),
        contract_id: r.get("contract_id").as_id().unwrap_or_default(),
        amount: Money::cny(r.get("amount").as_int().unwrap_or(0)),
        received_on: r.get("received_on").as_date().unwrap_or_default(),
        method: r.get("method").as_text().unwrap_or_default().to_string(),
        status: r.get("status").as_text().unwrap_or_default().to_string(),
        receipt_no: r.get("receipt_no").as_text().map(str::to_string),
        notes: r.get("notes").as_text().map(str::to_string),
        void_reason: None,
    }
}

/// An invoice plan or issued invoice from its stored row.
pub(crate) fn invoice_from_row(r: &Row) -> Invoice {
    Invoice {
        id: r.id(),
        contract_id: r.get("contract_id").as_id().unwrap_or_default(),
        kind: r.get("kind").as_text().unwrap_or_default().to_string(),
        invoice_type: r
            .get("invoice_type")
            .as_text()
            .and_then(InvoiceType::parse)
            .unwrap_or(InvoiceType::VatNormal),
        amount: Money::cny(r.get("amount").as_int().unwrap_or(0)),
        number: r.get("number").as_text().map(str::to_string),
        invoice_date: r.get("invoice_date").as_date(),
        status: r.get("status").as_text().map_or_else(
            || {
                if r.get("kind").as_text() == Some("plan") {
                    INVOICE_PLANNED.to_string()
                } else {
                    INVOICE_ISSUED.to_string()
                }
            },
            str::to_string,
        ),
        void_reason: r.get("void_reason").as_text().map(str::to_string),
        voided_at: r.get("voided_at").as_timestamp(),
        voided_by: r.get("voided_by").as_id(),
    }
}

/// Whether payments are still collected on a contract: an executing one,
/// or one an older build finished with money still owed (finishing now
/// needs full collection). Terminated contracts are not paid.
pub(crate) fn collected_on(c: &super::contract::Contract) -> bool {
    c.status == ContractStatus::Executing
        || (c.status == ContractStatus::Finished && c.outstanding.minor > 0)
}

/// The statuses of contracts that can still owe money (with
/// `outstanding > 0`: see [`collected_on`]).
pub(crate) fn collected_statuses() -> Vec<Value> {
    [ContractStatus::Executing, ContractStatus::Finished]
        .iter()
        .map(|s| Value::Text(s.name().into()))
        .collect()
}

/// `, recorded as '…'` when an invoice row holds its number `n` in
/// another form (as typed before numbers were kept normalised), else
/// nothing.
fn recorded_as(row: &Row, n: &str) -> String {
    match row.get("number").as_text() {
        Some(stored) if stored != n => format!(", recorded as '{stored}'"),
        _ => String::new(),
    }
}

/// Refuses the date of something that has already happened — a payment
/// received, an invoice issued, goods delivered — when it lies after
/// `today` (the company's local date): such a record states a fact, and
/// is entered once the fact is there. (Plans — instalments, invoice plans —
/// may of course lie ahead.) `field` names the date, `what` the record.
pub(crate) fn not_after_today(
    today: NaiveDate,
    field: &str,
    what: &str,
    date: NaiveDate,
) -> Result<()> {
    if date > today {
        return Err(Error::invalid(
            field,
            format!(
                "{date} is in the future (today is {today}): {what} is recorded once it has \
                 happened ({date} 晚于今天)"
            ),
        ));
    }
    Ok(())
}

/// Refuses a date on a contract — a payment received, an invoice issued
/// or planned, a delivery — that lies before the contract began: its signing date,
/// or, for a contract without one, the day it was created (the company's
/// local date). The message names both dates. `field` names the date,
/// `what` the record.
pub(crate) fn not_before_contract(
    crm: &Crm,
    contract: &Row,
    field: &str,
    what: &str,
    date: NaiveDate,
) -> Result<()> {
    let code = contract.get("code").as_text().unwrap_or_default();
    let (first, since) = match contract.get("signed_on").as_date() {
        Some(signed) => (signed, format!("signed on {signed} (签约日期)")),
        None => {
            let Some(created) = contract.get("created_at").as_timestamp() else {
                return Ok(());
            };
            let day = created.with_timezone(&crm.config.utc_offset).date_naive();
            (
                day,
                format!("created on {day} and has no signing date (无签约日期，按创建日期)"),
            )
        }
    };
    if date < first {
        return Err(Error::invalid(
            field,
            format!(
                "{date} is before contract {code} began: it was {since}; {what} is dated on \
                 or after that day ({date} 早于合同开始日期 {first})"
            ),
        ));
    }
    Ok(())
}

/// Refuses a new payment plan (`new`, sorted by due date) that would take
/// money already received away from the instalments it paid. Payments fill
/// the instalments oldest due first ([`allocate`]); every instalment of
/// the current plan (`old`, sorted likewise) that has something received
/// against it stays: the new plan has instalments due that day adding up
/// to at least what was received against it, and no instalment of the new
/// plan due earlier takes that money instead. Each instalment in the way is
/// named, with its due date, its amount and what was received against it.
fn kept_paid_instalments(
    c: &super::contract::Contract,
    old: &[Row],
    new: &[PlanInput],
) -> Result<()> {
    // (first instalment number, amount, received) per due date.
    let mut paid: BTreeMap<NaiveDate, (i64, i64, i64)> = BTreeMap::new();
    let amounts: Vec<i64> = old
        .iter()
        .map(|r| r.get("amount").as_int().unwrap_or(0))
        .collect();
    for ((r, amount), got) in old
        .iter()
        .zip(&amounts)
        .zip(allocate(&amounts, c.received.minor))
    {
        let Some(due) = r.get("due_on").as_date() else {
            continue;
        };
        let n = r.get("instalment").as_int().unwrap_or(0);
        let e = paid.entry(due).or_insert((n, 0, 0));
        e.1 += amount;
        e.2 += got;
    }
    let new_amounts: Vec<i64> = new.iter().map(|p| p.amount.minor).collect();
    // (amount, received) per due date under the new plan.
    let mut after: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    for (p, got) in new.iter().zip(allocate(&new_amounts, c.received.minor)) {
        let e = after.entry(p.due_on).or_default();
        e.0 += p.amount.minor;
        e.1 += got;
    }
    let mut errors = ValidationErrors::default();
    for (due, (n, amount, got)) in paid.into_iter().filter(|(_, (_, _, got))| *got > 0) {
        let which = format!(
            "instalment {n} of contract {} due {due} ({}) has {} received against it",
            c.code,
            Money::cny(amount),
            Money::cny(got)
        );
        let problem = match after.get(&due) {
            None => format!(
                "{which}; the new plan drops it (已回款的分期不能删除): keep an instalment due \
                 {due} of at least {}",
                Money::cny(got)
            ),
            Some((a, _)) if *a < got => format!(
                "{which}; the new plan makes it {}, less than what was received (已回款的分期\
                 不能少于已回款金额)",
                Money::cny(*a)
            ),
            Some((_, g)) if *g < got => format!(
                "{which}; under the new plan the payments would fill instalments due earlier \
                 first and leave it {}: money already received does not move to another \
                 instalment (已回款不能挪到其他分期)",
                Money::cny(*g)
            ),
            Some(_) => continue,
        };
        errors.push("plans", problem);
    }
    errors.into_result()
}

fn base(crm: &Crm, actor: &Actor, id: Uuid) -> Vec<(&'static str, Value)> {
    let now = crm.now();
    vec![
        ("id", Value::Id(id)),
        ("company_id", Value::Id(actor.company_id.0)),
        ("version", Value::Int(1)),
        ("created_at", Value::Timestamp(now)),
        ("updated_at", Value::Timestamp(now)),
    ]
}

impl Crm {
    /// The live rows of a table that belong to a contract, oldest first.
    pub(crate) async fn rows_of_contract(
        &self,
        actor: &Actor,
        table: Table,
        contract: Uuid,
    ) -> Result<Vec<Row>> {
        let mut sel = Select::all(table, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(Col::Column("contract_id"), CmpOp::Eq, Value::Id(contract));
        sel.sort = vec![Sort {
            col: Col::Column("created_at"),
            desc: false,
        }];
        Ok(self.store.select(&sel).await?.rows)
    }

    /// Replaces a contract's payment plan. The instalments must be positive
    /// and add up to at most the contract amount, and an instalment that
    /// has money received against it (payments fill the instalments oldest
    /// due first) is kept: due the same day, of at least what was received,
    /// with no new instalment due earlier taking that money (each one in
    /// the way is named). The contract's version is bumped in the same
    /// change set, so a concurrent plan, change of the amount or payment
    /// makes one of the writers fail with a conflict. The plan as it is
    /// (same instalments, due dates, amounts and notes) changes nothing and
    /// writes nothing.
    pub async fn set_payment_plan(
        &self,
        actor: &Actor,
        contract: Uuid,
        plans: Vec<PlanInput>,
    ) -> Result<Collection> {
        let cs = self.payment_plan_changes(actor, contract, plans).await?;
        // The plan as it is: nothing written, announced or recorded.
        if !cs.ops.is_empty() {
            self.apply(cs).await?;
        }
        self.collection(actor, contract).await
    }

    /// Builds the change set of [`set_payment_plan`](Crm::set_payment_plan)
    /// without applying it: the plan checked against the contract as read
    /// now, and the contract's version bump that makes the write fail if
    /// the contract changed in between; an empty change set for the plan
    /// as it is.
    pub(crate) async fn payment_plan_changes(
        &self,
        actor: &Actor,
        contract: Uuid,
        plans: Vec<PlanInput>,
    ) -> Result<ChangeSet> {
        let row = self
            .contract_for_records(actor, contract, "a payment plan")
            .await?;
        let c = contract_from_row(&row);
        if matches!(
            c.status,
            ContractStatus::Finished | ContractStatus::Terminated
        ) {
            return Err(Error::InvalidState(format!(
                "contract {} is {}; its payment plan can no longer change",
                c.code,
                c.status.label_zh()
            )));
        }
        let mut errors = ValidationErrors::default();
        // Exact: instalments each within the limit may add up beyond it.
        let mut total = 0i128;
        for (i, p) in plans.iter().enumerate() {
            if let Err(e) = super::require_cny("amount", &p.amount) {
                errors.push(format!("plans[{}].amount", i + 1), e.to_string());
            }
            if p.amount.minor <= 0 {
                errors.push(
                    format!("plans[{}].amount", i + 1),
                    format!("{} is not positive", p.amount),
                );
            }
            total += i128::from(p.amount.minor);
            if let Err(Error::Validation(v)) = not_before_contract(
                self,
                &row,
                &format!("plans[{}].due_on", i + 1),
                "an instalment",
                p.due_on,
            ) {
                errors.0.extend(v.0);
            }
        }
        errors.into_result()?;
        if total > i128::from(c.amount.minor) {
            let total = i64::try_from(total)
                .map_or_else(|_| format!("{total} fen"), |t| Money::cny(t).to_string());
            return Err(Error::invalid(
                "plans",
                format!(
                    "the instalments add up to {total}, more than the contract amount {}",
                    c.amount
                ),
            ));
        }
        let mut sorted = plans.clone();
        sorted.sort_by_key(|p| p.due_on);
        let mut old_plans = self
            .rows_of_contract(actor, Table::PaymentPlans, contract)
            .await?;
        old_plans.sort_by_key(|r| (r.get("due_on").as_date(), r.get("instalment").as_int()));
        kept_paid_instalments(&c, &old_plans, &sorted)?;
        let today = self.today();
        let old = dated_plans(&old_plans, today);
        let new: Vec<(NaiveDate, i64)> =
            sorted.iter().map(|p| (p.due_on, p.amount.minor)).collect();
        let overdue = |plans: &[(NaiveDate, i64)]| {
            overdue_minor(c.amount.minor, c.end_on, c.received.minor, plans, today)
        };
        overdue_not_put_off(actor, &c, overdue(&old), overdue(&new))?;
        // The plan as it is changes nothing: an empty change set.
        let unchanged = old_plans.len() == sorted.len()
            && old_plans.iter().zip(&sorted).all(|(r, p)| {
                r.get("due_on").as_date() == Some(p.due_on)
                    && r.get("amount").as_int() == Some(p.amount.minor)
                    && *r.get("notes") == opt_text(p.notes.clone())
            });
        if unchanged {
            return Ok(ChangeSet::default());
        }
        let mut cs = ChangeSet::default();
        // Serialises plan changes with each other and with changes of the
        // contract amount: the plan was checked against this version.
        cs.ops.push(Op::Update {
            table: Table::Contracts,
            id: contract,
            expected_version: row.version(),
            values: vec![("updated_at", Value::Timestamp(self.now()))],
        });
        for old in &old_plans {
            cs.ops.push(Op::Delete {
                table: Table::PaymentPlans,
                id: old.id(),
            });
        }
        for (i, p) in sorted.iter().enumerate() {
            let mut values = base(self, actor, self.new_id());
            values.extend([
                ("contract_id", Value::Id(contract)),
                ("instalment", Value::Int(i as i64 + 1)),
                ("due_on", Value::Date(p.due_on)),
                ("amount", Value::Int(p.amount.minor)),
                ("notes", opt_text(p.notes.clone())),
            ]);
            cs.ops.push(Op::Insert {
                table: Table::PaymentPlans,
                values,
            });
        }
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Contracts,
            contract,
            "contract.payment_plan_set".into(),
            json!({"code": c.code,
                   "plans": sorted
                       .iter()
                       .enumerate()
                       .map(|(i, p)| json!({"instalment": i + 1, "due_on": p.due_on,
                                            "amount": p.amount.minor}))
                       .collect::<Vec<_>>()}),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Contracts,
            contract,
            "payment_plan",
            vec![FieldChange {
                field: "payment_plan".into(),
                before: json!(old_plans
                    .iter()
                    .map(|r| json!({"due_on": r.get("due_on").as_date(),
                                    "amount": r.get("amount").as_int().unwrap_or(0)}))
                    .collect::<Vec<_>>()),
                after: json!(sorted
                    .iter()
                    .map(|p| json!({"due_on": p.due_on, "amount": p.amount.minor}))
                    .collect::<Vec<_>>()),
            }],
        ));
        Ok(cs)
    }

    /// Refuses a number (an invoice's, a bank receipt's) that `same` finds
    /// already recorded, and returns the guard that refuses it inside the
    /// write too: two records of one number written at once cannot both
    /// land.
    async fn number_free(
        &self,
        same: Select,
        entity: &str,
        key: String,
        message: String,
    ) -> Result<Guard> {
        if !self.store.select(&same).await?.rows.is_empty() {
            return Err(Error::Duplicate {
                entity: entity.into(),
                message,
            });
        }
        Ok(Guard {
            kind: crate::store::GuardKind::Duplicate,
            keys: vec![key],
            select: same,
            message,
        })
    }

    /// A contract's plans, payments, received, outstanding and overdue
    /// amounts as of today (only a contract being collected has anything
    /// overdue: not a draft, one awaiting approval, nor a terminated one).
    pub async fn collection(&self, actor: &Actor, contract: Uuid) -> Result<Collection> {
        let row = self.contract_row(actor, contract).await?;
        let c = contract_from_row(&row);
        let plans = self
            .rows_of_contract(actor, Table::PaymentPlans, contract)
            .await?;
        let mut payments = Vec::new();
        for r in self
            .rows_of_contract(actor, Table::Payments, contract)
            .await?
        {
            payments.push(self.with_void_reason(payment_from_row(&r)).await?);
        }
        let pending: i64 = payments
            .iter()
            .filter(|p| p.status == "pending_approval")
            .map(|p| p.amount.minor)
            .sum();
        let mut col = self.collection_of(
            &c.amount,
            c.end_on,
            c.received,
            Money::cny(pending),
            &plans,
            payments,
        );
        // Only a contract being collected has anything overdue, as the
        // receivables count it: a terminated one will not be paid, and a
        // draft or one awaiting approval is owed nothing yet (its
        // outstanding stays, as what it will be owed).
        if !collected_on(&c) {
            col.overdue = Money::cny(0);
            for p in &mut col.plans {
                p.days_overdue = 0;
            }
            col.unplanned_days_overdue = 0;
        }
        Ok(col)
    }

    fn collection_of(
        &self,
        amount: &Money,
        end_on: Option<NaiveDate>,
        received: Money,
        pending: Money,
        plan_rows: &[Row],
        payments: Vec<Payment>,
    ) -> Collection {
        let today = self.today();
        let mut plans: Vec<&Row> = plan_rows.iter().collect();
        plans.sort_by_key(|r| (r.get("due_on").as_date(), r.get("instalment").as_int()));
        let amounts: Vec<i64> = plans
            .iter()
            .map(|r| r.get("amount").as_int().unwrap_or(0))
            .collect();
        let got = allocate(&amounts, received.minor);
        let statuses: Vec<PlanStatus> = plans
            .iter()
            .zip(amounts.iter().zip(got))
            .map(|(r, (a, g))| {
                let due_on = r.get("due_on").as_date().unwrap_or(today);
                let outstanding = a - g;
                let days = if outstanding > 0 && due_on < today {
                    (today - due_on).num_days()
                } else {
                    0
                };
                PlanStatus {
                    id: r.id(),
                    instalment: r.get("instalment").as_int().unwrap_or(0),
                    due_on,
                    amount: Money::cny(*a),
                    received: Money::cny(g),
                    outstanding: Money::cny(outstanding),
                    days_overdue: days,
                }
            })
            .collect();
        // What no instalment schedules is due on the end date; payments go
        // to the instalments first.
        let planned: i64 = amounts.iter().map(|a| (*a).max(0)).sum();
        let beyond = (received.minor - planned).max(0);
        let unplanned = (amount.minor - planned - beyond).max(0);
        let unplanned_days = match end_on {
            Some(e) if unplanned > 0 && e < today => (today - e).num_days(),
            _ => 0,
        };
        let dated: Vec<(NaiveDate, i64)> = statuses
            .iter()
            .map(|p| (p.due_on, p.amount.minor))
            .collect();
        let overdue = overdue_minor(amount.minor, end_on, received.minor, &dated, today);
        Collection {
            amount: *amount,
            received,
            pending,
            outstanding: Money::cny(amount.minor - received.minor),
            overdue: Money::cny(overdue),
            plans: statuses,
            payments,
            unplanned: Money::cny(unplanned),
            unplanned_days_overdue: unplanned_days,
        }
    }

    /// Records a payment received on an executing contract. Refused when it
    /// would exceed the outstanding amount (payments awaiting approval
    /// count), when it is dated after today (the company's local date), or
    /// before the contract's signing date (without one, the day the
    /// contract was created).
    /// With a `payment` approval flow the payment waits for approval and
    /// counts as received only once approved. The payment is written with
    /// the contract's version as read, and the caller gives none: a
    /// contract changed meanwhile (another clerk's payment, say) is read
    /// again and every check made again (up to `WRITE_TRIES` tries), so payments
    /// recorded at once are each saved or refused on the merits (as
    /// overpayment) rather than reported as a conflict.
    pub async fn record_payment(
        &self,
        actor: &Actor,
        contract: Uuid,
        input: PaymentInput,
    ) -> Result<(Payment, Option<ApprovalInfo>)> {
        let mut tries = 1;
        loop {
            match self
                .record_payment_once(actor, contract, input.clone())
                .await
            {
                Err(Error::Conflict { .. }) if tries < CONTRACT_TRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// One try of [`record_payment`](Crm::record_payment), on the contract
    /// as read now.
    async fn record_payment_once(
        &self,
        actor: &Actor,
        contract: Uuid,
        input: PaymentInput,
    ) -> Result<(Payment, Option<ApprovalInfo>)> {
        let row = self
            .contract_for_records(actor, contract, "payments")
            .await?;
        let c = contract_from_row(&row);
        if !collected_on(&c) {
            return Err(Error::InvalidState(format!(
                "contract {} is {}; payments are recorded on executing contracts",
                c.code,
                c.status.label_zh()
            )));
        }
        if input.amount.minor <= 0 || input.amount.currency.code() != "CNY" {
            return Err(Error::invalid(
                "amount (回款金额)",
                format!("{} is not a positive CNY amount", input.amount),
            ));
        }
        not_after_today(
            self.today(),
            "received_on (回款日期)",
            "a payment",
            input.received_on,
        )?;
        not_before_contract(
            self,
            &row,
            "received_on (回款日期)",
            "a payment",
            input.received_on,
        )?;
        let pending: i64 = self
            .rows_of_contract(actor, Table::Payments, contract)
            .await?
            .iter()
            .filter(|r| r.get("status").as_text() == Some("pending_approval"))
            .map(|r| r.get("amount").as_int().unwrap_or(0))
            .sum();
        let open = c.outstanding.minor - pending;
        if input.amount.minor > open {
            return Err(Error::InvalidState(format!(
                "payment {} exceeds what is outstanding on contract {}: {} of {} (received {}, awaiting approval {}); overpayment is refused",
                input.amount,
                c.code,
                Money::cny(open.max(0)),
                c.amount,
                c.received,
                Money::cny(pending)
            )));
        }
        let needs_approval = self.approval_flow(actor, "payment").await?.is_some();
        let id = self.new_id();
        let method = input
            .method
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| "银行转账".into());
        let mut values = base(self, actor, id);
        values.extend([
            ("contract_id", Value::Id(contract)),
            ("customer_id", Value::Id(c.customer_id)),
            ("plan_id", Value::Null),
            ("amount", Value::Int(input.amount.minor)),
            ("received_on", Value::Date(input.received_on)),
            ("method", Value::Text(method)),
            (
                "status",
                Value::Text(
                    if needs_approval {
                        "pending_approval"
                    } else {
                        "confirmed"
                    }
                    .into(),
                ),
            ),
            (
                "receipt_no",
                opt_text(input.receipt_no.as_deref().map(receipt_number_key)),
            ),
            ("notes", opt_text(input.notes.clone())),
            ("recorded_by", Value::Id(actor.user_id.0)),
        ]);
        let mut cs = ChangeSet::default();
        // A bank receipt is recorded once: entered twice (a retry, a double
        // click), the money would be counted twice. A rejected or voided
        // payment's receipt may be entered again (e.g. on the right
        // contract), and so may one whose approval was withdrawn.
        // Numbers are compared by their key (`sj-001` is `SJ-001`).
        if let Some(n) = input
            .receipt_no
            .as_deref()
            .map(receipt_number_key)
            .filter(|n| !n.is_empty())
        {
            let live = || {
                Filter::Not(Box::new(Filter::In(
                    Col::Column("status"),
                    vec![
                        Value::Text("rejected".into()),
                        Value::Text(WITHDRAWN.into()),
                        Value::Text(VOIDED.into()),
                    ],
                )))
            };
            // Receipts recorded before numbers were kept by their key are
            // stored as typed: found among the candidates, compared by key.
            let mut candidates = Select::all(Table::Payments, actor.company_id.0, self.now());
            candidates.filter = Filter::And(vec![number_candidates("receipt_no", &n), live()]);
            if let Some(stored) = self
                .store
                .select(&candidates)
                .await?
                .rows
                .iter()
                .filter_map(|r| r.get("receipt_no").as_text())
                .find(|stored| receipt_number_key(stored) == n)
            {
                let as_typed = if stored == n {
                    String::new()
                } else {
                    format!(" (recorded as '{stored}')")
                };
                return Err(Error::Duplicate {
                    entity: "payment".into(),
                    message: format!(
                        "receipt number {n} is already recorded on a payment{as_typed} \
                         (回款单号重复)"
                    ),
                });
            }
            // Written now, a number is kept by its key: the guard compares
            // it as stored.
            let mut same = Select::all(Table::Payments, actor.company_id.0, self.now());
            same.filter = Filter::And(vec![
                Filter::Cmp(Col::Column("receipt_no"), CmpOp::Eq, Value::Text(n.clone())),
                live(),
            ]);
            cs.guards.push(
                self.number_free(
                    same,
                    "payment",
                    format!("{}:payments:receipt:{n}", actor.company_id.0),
                    format!("receipt number {n} is already recorded on a payment (回款单号重复)"),
                )
                .await?,
            );
        }
        cs.ops.push(Op::Insert {
            table: Table::Payments,
            values,
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Payments,
            id,
            "create",
            vec![FieldChange {
                field: "amount".into(),
                before: serde_json::Value::Null,
                after: json!(input.amount.minor),
            }],
        ));
        if !needs_approval {
            self.add_received(actor, &row, input.amount.minor, id, None, &mut cs);
            self.apply(cs).await?;
            let p = self.payment(id).await?;
            return Ok((p, None));
        }
        // The payment row and its approval are written together.
        let t = self
            .document_submission(
                actor,
                &SubmitRequest {
                    doc_type: "payment".into(),
                    document_id: id,
                    document_code: Some(c.code.clone()),
                    title: Some(format!("{} 回款 {}", c.title, input.amount)),
                    facts: Facts {
                        amount_minor: Some(input.amount.minor),
                        kind: None,
                        discount_bp: None,
                    },
                    picked: Vec::new(),
                    comment: input.notes.clone(),
                },
            )
            .await?;
        // The approval resolved in the submission may already be approved.
        let approved = t.info.status == Status::Approved;
        cs.ops.extend(t.changes.ops);
        cs.audit.extend(t.changes.audit);
        cs.events.extend(t.changes.events);
        if !approved {
            // Serialises pending receipts of the same contract, so two of
            // them cannot both pass the overpayment check.
            cs.ops.push(Op::Update {
                table: Table::Contracts,
                id: contract,
                expected_version: row.version(),
                values: vec![("updated_at", Value::Timestamp(self.now()))],
            });
        }
        if approved {
            cs.ops.retain(|op| {
                !matches!(op, Op::Update { table: Table::Payments, id: pid, .. } if *pid == id)
            });
            if let Some(Op::Insert { values, .. }) = cs.ops.first_mut() {
                for (k, v) in values.iter_mut() {
                    if *k == "status" {
                        *v = Value::Text("confirmed".into());
                    }
                }
            }
            self.add_received(actor, &row, input.amount.minor, id, None, &mut cs);
        }
        self.apply(cs).await?;
        Ok((self.payment(id).await?, Some(t.info)))
    }

    /// Voids a confirmed payment recorded by mistake (作废): it stays on
    /// the contract, marked voided, and no longer counts as received (the
    /// contract's received and outstanding amounts change with it, in the
    /// same write); the reason goes into the payment's and the contract's
    /// history and the `payment.voided` event. Needs the right to change
    /// the contract (not archived), whatever its status: a finished one is
    /// owed money again and executes again, a terminated one stays
    /// terminated. A payment awaiting approval is withdrawn or rejected
    /// instead; a rejected or voided one is refused.
    pub async fn void_payment(
        &self,
        actor: &Actor,
        payment: Uuid,
        reason: &str,
    ) -> Result<Payment> {
        let reason = void_reason(reason, "payment")?;
        let prow = self
            .store
            .get(Table::Payments, payment)
            .await?
            .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
            .ok_or_else(|| Error::not_found("payment", payment))?;
        let contract = prow.get("contract_id").as_id().unwrap_or_default();
        // Not found alike when the contract is not the actor's to read.
        let row = self
            .contract_for_records(actor, contract, "payments")
            .await
            .map_err(|e| e.not_found_as("payment", payment))?;
        let p = payment_from_row(&prow);
        let c = contract_from_row(&row);
        let what = format!(
            "payment of {} received {} on contract {}",
            p.amount, p.received_on, c.code
        );
        match p.status.as_str() {
            "confirmed" => {}
            "pending_approval" => {
                return Err(Error::InvalidState(format!(
                    "the {what} is awaiting approval (审批中): withdraw or reject its approval \
                     instead"
                )));
            }
            _ => {
                return Err(Error::InvalidState(format!(
                    "the {what} is {}; only a confirmed payment is voided",
                    p.status_label()
                )));
            }
        }
        // Voided, the money is owed again: by a customer someone holds,
        // live and in the working set — checked again as the void commits,
        // under the key deleting, archiving and releasing the customer take
        // (each guarding that none of its contracts is owed then).
        let customer_guard = self
            .document_customer_guard(
                actor,
                &format!("contract {}", c.code),
                "voiding a payment",
                c.customer_id,
            )
            .await?;
        let received = row.get("received").as_int().unwrap_or(0);
        let total = row.get("amount").as_int().unwrap_or(0);
        let after = received - p.amount.minor;
        let now = self.now();
        let mut cs = ChangeSet::default();
        cs.guards.push(customer_guard);
        cs.ops.push(Op::Update {
            table: Table::Payments,
            id: payment,
            expected_version: prow.version(),
            values: vec![
                ("status", Value::Text(VOIDED.into())),
                ("updated_at", Value::Timestamp(now)),
            ],
        });
        let mut values = vec![
            ("received", Value::Int(after)),
            ("outstanding", Value::Int(total - after)),
            ("updated_at", Value::Timestamp(now)),
        ];
        let mut contract_changes = vec![
            FieldChange {
                field: "received".into(),
                before: json!(received),
                after: json!(after),
            },
            FieldChange {
                field: "reason".into(),
                before: serde_json::Value::Null,
                after: json!(reason),
            },
        ];
        // A finished contract is owed money again: it is executing again,
        // among the receivables.
        if c.status == ContractStatus::Finished {
            values.push((
                "status",
                Value::Text(ContractStatus::Executing.name().into()),
            ));
            contract_changes.push(FieldChange {
                field: "status".into(),
                before: json!(ContractStatus::Finished.name()),
                after: json!(ContractStatus::Executing.name()),
            });
        }
        cs.ops.push(Op::Update {
            table: Table::Contracts,
            id: contract,
            expected_version: row.version(),
            values,
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Payments,
            payment,
            "void",
            vec![
                FieldChange {
                    field: "status".into(),
                    before: json!("confirmed"),
                    after: json!(VOIDED),
                },
                FieldChange {
                    field: "reason".into(),
                    before: serde_json::Value::Null,
                    after: json!(reason),
                },
            ],
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Contracts,
            contract,
            "payment_voided",
            contract_changes,
        ));
        let reopened = c.status == ContractStatus::Finished;
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Payments,
            payment,
            "payment.voided".into(),
            json!({"contract_id": contract, "contract_code": c.code, "amount": p.amount.minor,
            "reason": reason, "received": after, "outstanding": total - after,
            "contract_status": if reopened {
                ContractStatus::Executing.name()
            } else {
                c.status.name()
            }}),
        ));
        // A host that closed its order on `contract.finished` hears that
        // the contract runs again.
        if reopened {
            cs.events.push(self.event(
                actor.company_id.0,
                Table::Contracts,
                contract,
                "contract.reopened".into(),
                json!({"code": c.code, "status": ContractStatus::Executing.name(),
                       "why": "payment_voided", "payment_id": payment,
                       "outstanding": total - after}),
            ));
        }
        self.apply(cs).await?;
        self.payment(payment).await
    }

    async fn payment(&self, id: Uuid) -> Result<Payment> {
        let p = self
            .store
            .get(Table::Payments, id)
            .await?
            .map(|r| payment_from_row(&r))
            .ok_or_else(|| Error::not_found("payment", id))?;
        self.with_void_reason(p).await
    }

    /// A payment with the reason it was voided, when it was: the reason
    /// its history's void entry records (the payment row keeps none).
    async fn with_void_reason(&self, mut p: Payment) -> Result<Payment> {
        if p.status != VOIDED {
            return Ok(p);
        }
        p.void_reason = self
            .store
            .history(Table::Payments, p.id)
            .await?
            .iter()
            .rev()
            .filter(|e| e.action == "void")
            .flat_map(|e| e.changes.iter())
            .find(|c| c.field == "reason")
            .and_then(|c| c.after.as_str().map(str::to_string));
        Ok(p)
    }

    /// Adds a confirmed payment to the contract's received amount. The
    /// payment's row is `stored` when it was written before, else its
    /// insert in `cs`: the event names its receipt number, date and method.
    fn add_received(
        &self,
        actor: &Actor,
        contract: &Row,
        amount: i64,
        payment: Uuid,
        stored: Option<&Row>,
        cs: &mut ChangeSet,
    ) {
        let fact = |col: &str| -> serde_json::Value {
            if let Some(r) = stored {
                return r.get(col).to_json();
            }
            cs.ops
                .iter()
                .find_map(|op| match op {
                    Op::Insert {
                        table: Table::Payments,
                        values,
                    } if values
                        .iter()
                        .any(|(k, v)| *k == "id" && v.as_id() == Some(payment)) =>
                    {
                        values
                            .iter()
                            .find(|(k, _)| *k == col)
                            .map(|(_, v)| v.to_json())
                    }
                    _ => None,
                })
                .unwrap_or(serde_json::Value::Null)
        };
        let (receipt_no, received_on, method) =
            (fact("receipt_no"), fact("received_on"), fact("method"));
        let received = contract.get("received").as_int().unwrap_or(0);
        let total = contract.get("amount").as_int().unwrap_or(0);
        let after = received + amount;
        cs.ops.push(Op::Update {
            table: Table::Contracts,
            id: contract.id(),
            expected_version: contract.version(),
            values: vec![
                ("received", Value::Int(after)),
                ("outstanding", Value::Int(total - after)),
                ("updated_at", Value::Timestamp(self.now())),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Contracts,
            contract.id(),
            "payment",
            vec![FieldChange {
                field: "received".into(),
                before: json!(received),
                after: json!(after),
            }],
        ));
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Contracts,
            contract.id(),
            "contract.payment_received".into(),
            json!({"code": contract.get("code").to_json(), "payment_id": payment,
                   "amount": amount, "received": after, "outstanding": total - after,
                   "receipt_no": receipt_no, "received_on": received_on, "method": method,
                   "version": contract.version() + 1}),
        ));
    }

    /// Applies an approval's outcome to its payment (same change set):
    /// approved payments count as received, rejected ones (and those whose
    /// approval was withdrawn) never do.
    pub(crate) async fn payment_approval_effect(
        &self,
        actor: &Actor,
        info: &ApprovalInfo,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let Some(p) = self
            .approval_document_row(actor, Table::Payments, info)
            .await?
        else {
            return Ok(());
        };
        let status = match info.status {
            Status::Approved => "confirmed",
            Status::Rejected => "rejected",
            Status::Withdrawn => WITHDRAWN,
            Status::Pending => "pending_approval",
        };
        let current = p.get("status").as_text().unwrap_or_default();
        if current == status {
            return Ok(());
        }
        // A confirmed payment already counts as received and a rejected one
        // is final: only a payment awaiting approval follows its approval.
        if current != "pending_approval" {
            let (now_en, now_zh) = payment_status_label(current);
            let (to_en, to_zh) = payment_status_label(status);
            let received = p
                .get("received_on")
                .as_date()
                .map(|d| format!(" received {d}"))
                .unwrap_or_default();
            let contract = match p.get("contract_id").as_id() {
                Some(c) => self
                    .store
                    .get(Table::Contracts, c)
                    .await?
                    .and_then(|r| r.get("code").as_text().map(|c| format!(" on contract {c}")))
                    .unwrap_or_default(),
                None => String::new(),
            };
            return Err(Error::InvalidState(format!(
                "payment {}{received}{contract} is {now_en} ({now_zh}) already; its approval \
                 cannot make it {to_en} ({to_zh})",
                Money::cny(p.get("amount").as_int().unwrap_or(0))
            )));
        }
        cs.ops.push(Op::Update {
            table: Table::Payments,
            id: p.id(),
            expected_version: p.version(),
            values: vec![
                ("status", Value::Text(status.into())),
                ("updated_at", Value::Timestamp(self.now())),
            ],
        });
        if info.status == Status::Approved {
            let contract = p.get("contract_id").as_id().unwrap_or_default();
            let row = self
                .store
                .get(Table::Contracts, contract)
                .await?
                .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
                .ok_or_else(|| Error::not_found(Entity::Contract, contract))?;
            let amount = p.get("amount").as_int().unwrap_or(0);
            let c = contract_from_row(&row);
            if !row.get("deleted_at").is_null() {
                return Err(Error::InvalidState(format!(
                    "contract {} is in the recycle bin; payment {} cannot be confirmed on it \
                     (restore the contract first, or reject the payment)",
                    c.code,
                    Money::cny(amount)
                )));
            }
            if !row.get("archived_at").is_null() {
                return Err(Error::InvalidState(format!(
                    "contract {} is archived; payment {} cannot be confirmed on it \
                     (unarchive it first, or reject the payment)",
                    c.code,
                    Money::cny(amount)
                )));
            }
            if !collected_on(&c) {
                return Err(Error::InvalidState(format!(
                    "contract {} is {}; payment {} can no longer be confirmed on it, \
                     reject it instead",
                    c.code,
                    c.status.label_zh(),
                    Money::cny(amount)
                )));
            }
            if amount > c.outstanding.minor {
                return Err(Error::InvalidState(format!(
                    "payment {} exceeds what is outstanding on contract {} ({}); overpayment is refused",
                    Money::cny(amount),
                    c.code,
                    c.outstanding
                )));
            }
            self.add_received(actor, &row, amount, p.id(), Some(&p), cs);
        }
        Ok(())
    }

    /// Adds an invoice plan (`number` none) or records an issued invoice on
    /// an executing or finished contract (not a terminated one). Issued
    /// invoices add up to at most the contract amount (a voided one no
    /// longer counts), and so do the plans; an issued invoice's number is
    /// unique in the company (a voided invoice's number stays taken; numbers
    /// are compared in their normalised form on both sides, so one stored
    /// as typed by an older build counts), and its date (`date`, today when
    /// none is given) is not after today, while a plan's date may lie ahead
    /// or be left open. Neither is dated before the contract's signing date
    /// (without one, the day the contract was created). Both bump the
    /// contract's version and are audited, so concurrent invoices cannot
    /// both pass the checks; the caller gives no version, so a contract
    /// changed meanwhile is read again and every check made again (up to
    /// five tries) before the conflict is reported.
    ///
    /// Invoice plans and issued invoices together stay within the contract
    /// amount: a new plan is at most what is left to plan (the contract
    /// amount less what is invoiced and less the open plans), and is
    /// refused naming it. An issued invoice fulfils the open plans in turn
    /// (开票冲减计划): earliest planned date first, undated plans last, then
    /// the oldest plan first ([`fulfil_plans`]). A plan it covers whole is
    /// marked fulfilled (`fulfilled`, 计划已开票) and kept for the record;
    /// the one it covers in part is reduced by what it covers and stays
    /// open for the rest (¥40 planned, ¥30 invoiced: ¥10 stays planned).
    /// So once everything is invoiced no plan is open. Each plan so changed
    /// is written at the version read, and the contract's history and the
    /// `contract.invoiced` event name them. Voiding an invoice
    /// ([`void_invoice`](Crm::void_invoice)) does not reopen the plans it
    /// fulfilled: what it voids is to invoice again, unplanned, and may be
    /// planned anew or issued directly.
    pub async fn add_invoice(
        &self,
        actor: &Actor,
        contract: Uuid,
        invoice_type: InvoiceType,
        amount: Money,
        issued_number: Option<String>,
        date: Option<NaiveDate>,
    ) -> Result<Invoice> {
        let mut tries = 1;
        loop {
            match self
                .add_invoice_once(
                    actor,
                    contract,
                    invoice_type,
                    amount,
                    issued_number.clone(),
                    date,
                )
                .await
            {
                Err(Error::Conflict { .. }) if tries < CONTRACT_TRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// One try of [`add_invoice`](Crm::add_invoice), on the contract as
    /// read now.
    async fn add_invoice_once(
        &self,
        actor: &Actor,
        contract: Uuid,
        invoice_type: InvoiceType,
        amount: Money,
        issued_number: Option<String>,
        date: Option<NaiveDate>,
    ) -> Result<Invoice> {
        let row = self
            .contract_for_records(actor, contract, "invoices")
            .await?;
        let c = contract_from_row(&row);
        super::require_cny("amount (开票金额)", &amount)?;
        if amount.minor <= 0 {
            return Err(Error::invalid(
                "amount (开票金额)",
                format!("{amount} is not positive"),
            ));
        }
        match c.status {
            ContractStatus::Draft | ContractStatus::PendingApproval => {
                return Err(Error::InvalidState(format!(
                    "contract {} is {}; invoices follow approval",
                    c.code,
                    c.status.label_zh()
                )));
            }
            ContractStatus::Terminated => {
                return Err(Error::InvalidState(format!(
                    "contract {} is {}; no invoice is planned or issued on it any more",
                    c.code,
                    c.status.label_zh()
                )));
            }
            ContractStatus::Executing | ContractStatus::Finished => {}
        }
        // A number given blank is a mistake, not a plan.
        if issued_number
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(Error::invalid(
                "number (发票号码)",
                "is blank: give the invoice's number, or none to record an invoice plan",
            ));
        }
        let number = match issued_number.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => {
                Some(invoice_number(n).map_err(|m| Error::invalid("number (发票号码)", m))?)
            }
            _ => None,
        };
        let issued = number.is_some();
        // An issued invoice is dated: its issue date is today unless given,
        // and it cannot lie ahead (an invoice plan's date may).
        let date = if issued {
            let today = self.today();
            let on = date.unwrap_or(today);
            not_after_today(today, "invoice_date (开票日期)", "an issued invoice", on)?;
            Some(on)
        } else {
            date
        };
        if let Some(on) = date {
            not_before_contract(
                self,
                &row,
                "invoice_date (开票日期)",
                if issued {
                    "an issued invoice"
                } else {
                    "an invoice plan"
                },
                on,
            )?;
        }
        let company = actor.company_id.0;
        let mut cs = ChangeSet::default();
        let invoice_rows = self
            .rows_of_contract(actor, Table::Invoices, contract)
            .await?;
        let open_plans = open_plans_in_order(&invoice_rows);
        // What the open plans take of each (issued invoices only), and
        // what they leave open.
        let mut fulfilled: Vec<(&Row, i64)> = Vec::new();
        if let Some(n) = &number {
            if amount.minor > c.not_invoiced.minor {
                return Err(Error::InvalidState(format!(
                    "invoice {amount} exceeds what is not yet invoiced on contract {} ({})",
                    c.code, c.not_invoiced
                )));
            }
            let mut same = Select::all(Table::Invoices, company, self.now());
            same.filter = Filter::Cmp(Col::Column("number"), CmpOp::Eq, Value::Text(n.clone()));
            // Numbers recorded before they were kept normalised are stored
            // as typed: they are found among the candidates and compared by
            // their key, so `r4-x` stored then meets `R4-X` typed now.
            let mut candidates = Select::all(Table::Invoices, company, self.now());
            candidates.filter = invoice_number_candidates(n);
            let taken: Vec<Row> = self
                .store
                .select(&candidates)
                .await?
                .rows
                .into_iter()
                .filter(|r| {
                    r.get("number")
                        .as_text()
                        .is_some_and(|stored| invoice_number_key(stored) == *n)
                })
                .collect();
            // A voided invoice keeps its number: the tax invoice it names
            // is voided paper, and the number is never issued again.
            if let Some(v) = taken
                .iter()
                .find(|r| r.get("status").as_text() == Some(VOIDED))
            {
                // (Its contract named to who may read it only.)
                let on = match v.get("contract_id").as_id() {
                    Some(id) => match self.store.get(Table::Contracts, id).await? {
                        Some(r)
                            if self
                                .can_on_row(actor, Entity::Contract, Action::Read, &r)
                                .await? =>
                        {
                            r.get("code")
                                .as_text()
                                .map(|c| format!(" on contract {c}"))
                                .unwrap_or_default()
                        }
                        _ => String::new(),
                    },
                    None => String::new(),
                };
                return Err(Error::Duplicate {
                    entity: "invoice".into(),
                    message: format!(
                        "invoice number {n} belongs to an invoice voided{on}{} (已作废); a \
                         voided invoice's number is not issued again (发票号码已作废，不能再次使用)",
                        recorded_as(v, n)
                    ),
                });
            }
            if let Some(t) = taken.first() {
                return Err(Error::Duplicate {
                    entity: "invoice".into(),
                    message: format!(
                        "invoice number {n} is already recorded in this company{}",
                        recorded_as(t, n)
                    ),
                });
            }
            // Written now, a number is normalised: the guard compares it
            // as stored.
            cs.guards.push(
                self.number_free(
                    same,
                    "invoice",
                    format!("{company}:invoices:number:{n}"),
                    format!("invoice number {n} is already recorded in this company"),
                )
                .await?,
            );
            // The invoice fulfils the open plans, earliest first.
            let amounts: Vec<i64> = open_plans
                .iter()
                .map(|r| r.get("amount").as_int().unwrap_or(0))
                .collect();
            for (r, took) in open_plans.iter().zip(fulfil_plans(&amounts, amount.minor)) {
                if took > 0 {
                    fulfilled.push((r, took));
                }
            }
        } else {
            // What is invoiced or planned already needs no plan: a plan is
            // for what is still to invoice and not yet planned.
            let open: i128 = open_plans
                .iter()
                .map(|r| i128::from(r.get("amount").as_int().unwrap_or(0).max(0)))
                .sum();
            let left = (i128::from(c.not_invoiced.minor) - open).max(0);
            if i128::from(amount.minor) > left {
                let open = i64::try_from(open)
                    .map_or_else(|_| format!("{open} fen"), |o| Money::cny(o).to_string());
                return Err(Error::InvalidState(format!(
                    "invoice plan {amount} is more than is left to plan on contract {}: {} \
                     (contract amount {}, invoiced {}, not yet invoiced {}, open invoice plans \
                     {open}): an invoice plan is for what remains to invoice and is not planned \
                     yet (开票计划加已开票不能超过合同金额)",
                    c.code,
                    Money::cny(i64::try_from(left).unwrap_or(0)),
                    c.amount,
                    c.invoiced,
                    c.not_invoiced
                )));
            }
        }
        let id = self.new_id();
        let mut values = base(self, actor, id);
        values.extend([
            ("contract_id", Value::Id(contract)),
            ("customer_id", Value::Id(c.customer_id)),
            (
                "kind",
                Value::Text(if issued { "issued" } else { "plan" }.into()),
            ),
            ("invoice_type", Value::Text(invoice_type.name().into())),
            ("amount", Value::Int(amount.minor)),
            ("number", number.clone().map_or(Value::Null, Value::Text)),
            ("invoice_date", date.map_or(Value::Null, Value::Date)),
            (
                "status",
                Value::Text(
                    if issued {
                        INVOICE_ISSUED
                    } else {
                        INVOICE_PLANNED
                    }
                    .into(),
                ),
            ),
        ]);
        cs.ops.push(Op::Insert {
            table: Table::Invoices,
            values,
        });
        if issued {
            let before = c.invoiced.minor;
            cs.ops.push(Op::Update {
                table: Table::Contracts,
                id: contract,
                expected_version: row.version(),
                values: vec![
                    ("invoiced", Value::Int(before + amount.minor)),
                    ("updated_at", Value::Timestamp(self.now())),
                ],
            });
            // The plans it fulfils: each at the version read.
            let mut plans_before = Vec::new();
            let mut plans_after = Vec::new();
            for (plan, took) in &fulfilled {
                let planned = plan.get("amount").as_int().unwrap_or(0);
                let rest = planned - took;
                let mut values = vec![("updated_at", Value::Timestamp(self.now()))];
                if rest > 0 {
                    values.push(("amount", Value::Int(rest)));
                } else {
                    values.push(("status", Value::Text(INVOICE_PLAN_FULFILLED.into())));
                }
                cs.ops.push(Op::Update {
                    table: Table::Invoices,
                    id: plan.id(),
                    expected_version: plan.version(),
                    values,
                });
                plans_before.push(json!({"invoice_id": plan.id(), "amount": planned,
                                         "invoice_date": plan.get("invoice_date").as_date(),
                                         "status": INVOICE_PLANNED}));
                // A fulfilled plan keeps its amount; a part taken leaves the rest.
                plans_after.push(json!({"invoice_id": plan.id(),
                                        "amount": if rest > 0 { rest } else { planned },
                                        "remaining": rest.max(0),
                                        "invoice_date": plan.get("invoice_date").as_date(),
                                        "invoiced": took,
                                        "status": if rest > 0 { INVOICE_PLANNED }
                                                  else { INVOICE_PLAN_FULFILLED }}));
            }
            let mut changes = vec![FieldChange {
                field: "invoiced".into(),
                before: json!(before),
                after: json!(before + amount.minor),
            }];
            if !fulfilled.is_empty() {
                changes.push(FieldChange {
                    field: "invoice_plans".into(),
                    before: json!(plans_before),
                    after: json!(plans_after),
                });
            }
            cs.audit.push(self.audit(
                Some(actor),
                company,
                Table::Contracts,
                contract,
                "invoice",
                changes,
            ));
            cs.events.push(self.event(
                company,
                Table::Contracts,
                contract,
                "contract.invoiced".into(),
                json!({"code": c.code, "invoice_id": id, "number": number,
                       "amount": amount.minor, "invoice_type": invoice_type.name(),
                       "invoice_date": date, "plans_fulfilled": plans_after,
                       "version": row.version() + 1}),
            ));
        } else {
            // Serialises plans of the same contract (the total was checked
            // against this version).
            cs.ops.push(Op::Update {
                table: Table::Contracts,
                id: contract,
                expected_version: row.version(),
                values: vec![("updated_at", Value::Timestamp(self.now()))],
            });
            cs.events.push(self.event(
                company,
                Table::Contracts,
                contract,
                "contract.invoice_planned".into(),
                json!({"code": c.code, "invoice_id": id, "amount": amount.minor,
                       "invoice_type": invoice_type.name(), "invoice_date": date}),
            ));
            cs.audit.push(self.audit(
                Some(actor),
                company,
                Table::Contracts,
                contract,
                "invoice_plan",
                vec![FieldChange {
                    field: "invoice_plan".into(),
                    before: serde_json::Value::Null,
                    after: json!({"invoice_id": id, "amount": amount.minor,
                                  "invoice_type": invoice_type.name(),
                                  "invoice_date": date}),
                }],
            ));
        }
        self.apply(cs).await?;
        Ok(invoice_from_row(
            &self
                .store
                .get(Table::Invoices, id)
                .await?
                .ok_or_else(|| Error::not_found("invoice", id))?,
        ))
    }

    /// Voids an issued invoice recorded by mistake (发票作废): it stays on
    /// the contract, marked voided with the reason, when and by whom, and
    /// no longer counts as invoiced (the contract's invoiced amount drops
    /// by it in the same write), so a corrected invoice can be issued. Its
    /// number stays taken: a voided tax invoice's number is never issued
    /// again. The reason goes into the invoice's and the contract's history
    /// and the `invoice.voided` event. Needs the right to change the
    /// contract, which is executing, finished or terminated (not archived):
    /// voiding corrects a mistake, so it stays possible once the contract is
    /// closed, and leaves the contract's status as it is. An invoice plan,
    /// or an invoice voided already, is refused. The invoice and the
    /// contract are written with their expected versions, so two voids of
    /// one invoice, or a void and an invoice added at once, cannot both
    /// pass. The invoice plans it fulfilled stay fulfilled (see
    /// [`add_invoice`](Crm::add_invoice)): what it voids is to invoice
    /// again, and open plans and issued invoices still add up to at most
    /// the contract amount.
    pub async fn void_invoice(
        &self,
        actor: &Actor,
        invoice: Uuid,
        reason: &str,
    ) -> Result<Invoice> {
        let reason = void_reason(reason, "invoice")?;
        let irow = self
            .store
            .get(Table::Invoices, invoice)
            .await?
            .filter(|r| {
                r.get("company_id").as_id() == Some(actor.company_id.0)
                    && r.get("deleted_at").is_null()
            })
            .ok_or_else(|| Error::not_found("invoice", invoice))?;
        let contract = irow.get("contract_id").as_id().unwrap_or_default();
        // Not found alike when the contract is not the actor's to read.
        let row = self
            .contract_for_records(actor, contract, "invoices")
            .await
            .map_err(|e| e.not_found_as("invoice", invoice))?;
        let i = invoice_from_row(&irow);
        let c = contract_from_row(&row);
        let what = match &i.number {
            Some(n) => format!("invoice {n} of {} on contract {}", i.amount, c.code),
            None => format!("invoice plan of {} on contract {}", i.amount, c.code),
        };
        if i.kind != "issued" {
            return Err(Error::InvalidState(format!(
                "the {what} is a plan (开票计划), not an issued invoice; only an issued \
                 invoice is voided"
            )));
        }
        if i.status != INVOICE_ISSUED {
            return Err(Error::InvalidState(format!(
                "the {what} is {} already; only an issued invoice is voided",
                i.status_label()
            )));
        }
        // Voiding corrects a mistake: it stays possible once the contract
        // is finished or terminated (and changes only the invoiced amount,
        // never the contract's status).
        match c.status {
            ContractStatus::Executing | ContractStatus::Finished | ContractStatus::Terminated => {}
            ContractStatus::Draft | ContractStatus::PendingApproval => {
                return Err(Error::InvalidState(format!(
                    "contract {} is {}; it holds no issued invoice, so the {what} is not voided",
                    c.code,
                    c.status.label_zh()
                )));
            }
        }
        let before = c.invoiced.minor;
        let after = before - i.amount.minor;
        let now = self.now();
        let company = actor.company_id.0;
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Invoices,
            id: invoice,
            expected_version: irow.version(),
            values: vec![
                ("status", Value::Text(VOIDED.into())),
                ("void_reason", Value::Text(reason.into())),
                ("voided_at", Value::Timestamp(now)),
                ("voided_by", Value::Id(actor.user_id.0)),
                ("updated_at", Value::Timestamp(now)),
            ],
        });
        // The invoiced amount was checked and changes against this
        // version: an invoice issued meanwhile makes one writer fail.
        cs.ops.push(Op::Update {
            table: Table::Contracts,
            id: contract,
            expected_version: row.version(),
            values: vec![
                ("invoiced", Value::Int(after)),
                ("updated_at", Value::Timestamp(now)),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Invoices,
            invoice,
            "void",
            vec![
                FieldChange {
                    field: "status".into(),
                    before: json!(INVOICE_ISSUED),
                    after: json!(VOIDED),
                },
                FieldChange {
                    field: "reason".into(),
                    before: serde_json::Value::Null,
                    after: json!(reason),
                },
            ],
        ));
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Contracts,
            contract,
            "invoice_voided",
            vec![
                FieldChange {
                    field: "invoiced".into(),
                    before: json!(before),
                    after: json!(after),
                },
                FieldChange {
                    field: "invoice_number".into(),
                    before: serde_json::Value::Null,
                    after: json!(i.number),
                },
                FieldChange {
                    field: "reason".into(),
                    before: serde_json::Value::Null,
                    after: json!(reason),
                },
            ],
        ));
        cs.events.push(self.event(
            company,
            Table::Invoices,
            invoice,
            "invoice.voided".into(),
            json!({"contract_id": contract, "contract_code": c.code, "number": i.number,
                   "amount": i.amount.minor, "invoice_type": i.invoice_type.name(),
                   "reason": reason, "invoiced": after}),
        ));
        self.apply(cs).await?;
        Ok(invoice_from_row(
            &self
                .store
                .get(Table::Invoices, invoice)
                .await?
                .ok_or_else(|| Error::not_found("invoice", invoice))?,
        ))
    }

    /// A contract's invoice plans and issued invoices, oldest first.
    pub async fn invoices(&self, actor: &Actor, contract: Uuid) -> Result<Vec<Invoice>> {
        self.contract_row(actor, contract).await?;
        Ok(self
            .rows_of_contract(actor, Table::Invoices, contract)
            .await?
            .iter()
            .map(invoice_from_row)
            .collect())
    }

    /// Receivables (应收款) of the executing contracts the actor may see, as
    /// of today: outstanding, overdue and overdue by age, per customer and
    /// owner. Contracts still collected are listed (executing ones, and one
    /// an older build finished with money owed); terminated ones will not
    /// be paid.
    pub async fn receivables(&self, actor: &Actor) -> Result<Vec<ReceivableRow>> {
        let mut sel = Select::all(Table::Contracts, actor.company_id.0, self.now());
        sel.scope = actor.store_scope(Entity::Contract, Action::Read).unwrap_or(
            crate::store::Scope::Restricted {
                owners: Vec::new(),
                departments: Vec::new(),
                shared_with: Some(actor.user_id.0),
            },
        );
        // Contracts still collected (see `collected_on`): a terminated one
        // will not be paid.
        sel.filter = Filter::And(vec![
            Filter::In(Col::Column("status"), collected_statuses()),
            Filter::Cmp(Col::Column("outstanding"), CmpOp::Gt, Value::Int(0)),
        ]);
        let contracts = self.store.select(&sel).await?.rows;
        let ids: Vec<Value> = contracts.iter().map(|r| Value::Id(r.id())).collect();
        let mut plan_sel = Select::all(Table::PaymentPlans, actor.company_id.0, self.now());
        plan_sel.filter = Filter::In(Col::Column("contract_id"), ids);
        let mut plans_by: BTreeMap<Uuid, Vec<Row>> = BTreeMap::new();
        for p in self.store.select(&plan_sel).await?.rows {
            plans_by
                .entry(p.get("contract_id").as_id().unwrap_or_default())
                .or_default()
                .push(p);
        }
        // Each row's sums, exact (see `ExactSum`): outstanding, overdue,
        // current and the four aging buckets.
        let mut out: BTreeMap<(Uuid, Option<Uuid>), (ReceivableRow, [super::ExactSum; 7])> =
            BTreeMap::new();
        for r in &contracts {
            let c = contract_from_row(r);
            let col = self.collection_of(
                &c.amount,
                c.end_on,
                c.received,
                Money::cny(0),
                plans_by.get(&c.id).map(Vec::as_slice).unwrap_or_default(),
                Vec::new(),
            );
            let (e, sums) = out.entry((c.customer_id, c.owner_id)).or_insert_with(|| {
                (
                    ReceivableRow {
                        customer_id: c.customer_id,
                        owner_id: c.owner_id,
                        contracts: 0,
                        outstanding: Money::cny(0),
                        current: Money::cny(0),
                        overdue: Money::cny(0),
                        aging: [Money::cny(0); 4],
                    },
                    [super::ExactSum::default(); 7],
                )
            });
            e.contracts += 1;
            // Exact: a company's totals neither wrap nor clamp on huge
            // contract amounts.
            sums[0].add(col.outstanding.minor);
            sums[1].add(col.overdue.minor);
            sums[2].add(col.outstanding.minor);
            sums[2].add(-col.overdue.minor);
            for p in &col.plans {
                if p.days_overdue > 0 {
                    sums[3 + aging_bucket(p.days_overdue)].add(p.outstanding.minor);
                }
            }
            if col.unplanned_days_overdue > 0 {
                sums[3 + aging_bucket(col.unplanned_days_overdue)].add(col.unplanned.minor);
            }
        }
        out.into_values()
            .map(|(mut e, sums)| {
                let what =
                    |of: &str| format!("the receivables' {of} of customer {}", e.customer_id);
                e.outstanding = sums[0].money(&what("outstanding amounts"))?;
                e.overdue = sums[1].money(&what("overdue amounts"))?;
                e.current = sums[2].money(&what("amounts not yet due"))?;
                for (i, bucket) in e.aging.iter_mut().enumerate() {
                    *bucket = sums[3 + i].money(&what("overdue amounts by age"))?;
                }
                Ok(e)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn allocation_fills_oldest_first() {
        assert_eq!(allocate(&[100, 200, 300], 250), vec![100, 150, 0]);
        assert_eq!(allocate(&[100, 200], 1000), vec![100, 200]);
        assert_eq!(allocate(&[], 5), Vec::<i64>::new());
        assert_eq!(aging_bucket(1), 0);
        assert_eq!(aging_bucket(30), 0);
        assert_eq!(aging_bucket(31), 1);
        assert_eq!(aging_bucket(90), 2);
        assert_eq!(aging_bucket(91), 3);
    }

    /// Whether a stored number matches a candidate filter as both stores
    /// run it: `Contains` folds ASCII letters only.
    fn matches(f: &Filter, stored: &str) -> bool {
        match f {
            Filter::Or(any) => any.iter().any(|f| matches(f, stored)),
            Filter::Contains(_, needle) => stored
                .to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase()),
            other => panic!("unexpected filter {other:?}"),
        }
    }

    #[test]
    fn receipt_number_keys_fold_width_case_spaces_and_invisibles() {
        for typed in [
            "SJ-001",
            "sj-001",
            "ＳＪ-001",
            "ｓｊ－００１",
            " SJ -001 ",
            "SJ\u{200B}-001",
        ] {
            assert_eq!(receipt_number_key(typed), "SJ-001", "{typed}");
        }
        assert_ne!(receipt_number_key("SJ-0012"), "SJ-001");
        // Every stored form is among the candidates of its key.
        let f = number_candidates("receipt_no", "SJ-001");
        for stored in ["SJ-001", "sj-001", "ＳＪ-001", "SJ -001"] {
            assert!(matches(&f, stored), "{stored}");
        }
    }

    #[test]
    fn invoice_number_keys_fold_width_case_and_spaces() {
        assert_eq!(invoice_number_key("r4-x"), "R4-X");
        assert_eq!(invoice_number_key("０４４０　０１２３"), "04400123");
        assert_eq!(invoice_number_key(" ab１２ "), "AB12");
        for hidden in ['\u{200b}', '\u{ad}', '\u{feff}', '\u{202e}'] {
            let typed = format!("INV{hidden}1");
            assert_eq!(invoice_number(&typed).as_deref(), Ok("INV1"), "{typed:?}");
            assert_eq!(invoice_number_key(&typed), "INV1", "{typed:?}");
        }
        assert_eq!(
            invoice_number_key("R4-X"),
            invoice_number("r4-x").expect("a number")
        );
        let f = invoice_number_candidates("R4-X");
        assert!(matches(&f, "R4-X") && matches(&f, "r4-x") && matches(&f, "ｒ4-X"));
        assert!(!matches(&f, "04400123"));
    }

    proptest! {
        /// Every form an invoice number may have been stored in (each
        /// character as typed: half- or full-width, either case; spaces
        /// between) is found by the candidate filter of its key.
        #[test]
        fn stored_forms_are_candidates_of_their_key(
            chars in proptest::collection::vec(
                (proptest::sample::select(b"0123456789ABCXYZ-/".to_vec()), 0u8..4, 0u8..8),
                1..20,
            ),
        ) {
            let mut stored = String::new();
            let mut key = String::new();
            for (c, form, space) in chars {
                let c = char::from(c);
                key.push(c);
                let typed = if form % 2 == 1 { c.to_ascii_lowercase() } else { c };
                let typed = if form >= 2 {
                    char::from_u32(typed as u32 + 0xFEE0).unwrap_or(typed)
                } else {
                    typed
                };
                stored.push(typed);
                match space {
                    0 => stored.push(' '),
                    1 => stored.push('\u{3000}'),
                    _ => {}
                }
            }
            let stored = stored.trim().to_string();
            prop_assert_eq!(invoice_number_key(&stored), key.clone());
            prop_assert!(matches(&invoice_number_candidates(&key), &stored), "{}", stored);
        }

        /// Allocation never drifts: what is allocated is the received amount
        /// up to the plans' total, and no instalment gets more than it asks.
        #[test]
        fn allocation_reconciles(
            plans in proptest::collection::vec(1i64..1_000_000_000, 0..12),
            received in 0i64..20_000_000_000,
        ) {
            let got = allocate(&plans, received);
            let total: i64 = plans.iter().sum();
            prop_assert_eq!(got.iter().sum::<i64>(), received.min(total));
            for (g, p) in got.iter().zip(&plans) {
                prop_assert!(*g >= 0 && g <= p);
            }
            // Filled in order: an instalment is partly paid only if all
            // later ones are unpaid.
            if let Some(first_open) = got.iter().zip(&plans).position(|(g, p)| g < p) {
                prop_assert!(got[first_open + 1..].iter().all(|g| *g == 0));
            }
        }
    }
}
