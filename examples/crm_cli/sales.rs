//! Sales subcommands of the example CLI: products, opportunities, quotes,
//! contracts with payments and invoices, receivables and approvals.
//!
//! ```text
//! crm product add --code SV-2288 --name 机架式服务器 --price 35000 --unit 台
//! crm --as zhangwei opportunity add --customer KH-20261127-0001 --name 数据中心扩容 --amount 100000 --product SV-2288:3
//! crm --as zhangwei quote add --customer KH-20261127-0001 --title 服务器报价 --line SV-2288:3:15 --line =Onsite-Setup:1:5000
//! crm --as zhangwei quote submit BJ-20261127-0001
//! crm approval pending
//! crm --as zhangwei quote contract BJ-20261127-0001 --end 2027-06-30
//! crm --as zhangwei contract submit HT-20261127-0001
//! crm --as zhangwei contract pay HT-20261127-0001 --amount 30000 --date 2026-11-27
//! crm --as chenjing approval approve HT-20261127-0001   # a pending payment approval too
//! crm receivables
//! crm --as zhangwei contract list --status executing --customer KH-20261127-0001 --page 2
//! crm --as zhangwei quote share BJ-20261127-0001 --with wangfang
//! crm --as zhangwei contract history HT-20261127-0001
//! ```

use super::{CliResult, Ctx, err, find_record};
use chrono::NaiveDate;
use clap::Subcommand;
use crm::Actor;
use crm::Uuid;
use crm::approval::{
    ApprovalInfo, ApproverRule, Condition, Facts, Fallback, FlowDef, RejectTo, Restart, SignMode,
    Status, StepDef, SubmitRequest,
};
use crm::ids::{RecordId, UserId};
use crm::money::Money;
use crm::sales::{
    ContractQuery, ContractType, InvoiceType, LineInput, NewContract, NewOpportunity, NewQuote,
    OppStatus, OpportunityQuery, PaymentInput, PlanInput, ProductInput, ProductQuery,
    ProductStatus, StageCommand,
};
use crm::store::Lifecycle;
use crm::{Cond, Entity, ListQuery, ShareAccess};
use serde_json::json;
use std::collections::HashMap;

/// Rows per page of the sales lists.
const PER_PAGE: u64 = 100;

/// Products (产品) and categories.
#[derive(Subcommand)]
pub(crate) enum ProductCmd {
    /// Adds a category (two levels; codes are generated).
    CategoryAdd {
        /// Name.
        name: String,
        /// Parent category code.
        #[arg(long)]
        parent: Option<String>,
    },
    /// Lists categories.
    Categories,
    /// Adds a product.
    Add {
        /// Code (generated when absent).
        #[arg(long)]
        code: Option<String>,
        /// Name.
        #[arg(long)]
        name: String,
        /// List price, tax included (e.g. 35000 or ¥35,000.00).
        #[arg(long)]
        price: String,
        /// Cost.
        #[arg(long)]
        cost: Option<String>,
        /// Unit.
        #[arg(long)]
        unit: Option<String>,
        /// VAT rate in percent: 13, 9, 6, 5, 3, 1 or 0.
        #[arg(long, default_value_t = 13)]
        tax: i64,
        /// Category code.
        #[arg(long)]
        category: Option<String>,
        /// Specification (规格型号).
        #[arg(long)]
        spec: Option<String>,
    },
    /// Lists or searches products (code, name, pinyin initials).
    List {
        /// Search text.
        #[arg(long)]
        search: Option<String>,
        /// Category code (includes sub-categories).
        #[arg(long)]
        category: Option<String>,
        /// Page, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
        /// The recycle bin instead of the working set.
        #[arg(long)]
        deleted: bool,
    },
    /// Changes a product; only the given fields change.
    Edit {
        /// Product code.
        code: String,
        /// Name.
        #[arg(long)]
        name: Option<String>,
        /// List price, tax included.
        #[arg(long)]
        price: Option<String>,
        /// Cost.
        #[arg(long)]
        cost: Option<String>,
        /// Unit.
        #[arg(long)]
        unit: Option<String>,
        /// VAT rate in percent: 13, 9, 6, 5, 3, 1 or 0.
        #[arg(long)]
        tax: Option<i64>,
        /// Category code.
        #[arg(long)]
        category: Option<String>,
        /// Specification (规格型号).
        #[arg(long)]
        spec: Option<String>,
        /// Status: on_sale (在售) or discontinued (停售).
        #[arg(long)]
        status: Option<String>,
        /// The version you read (`show --json`); refused if someone
        /// changed it since. Without it the change applies to the product as
        /// it is now.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Shows a product by its code (letter case aside): price, cost (as
    /// the field rules allow), tax, unit, spec, status, version.
    Show {
        /// Product code.
        code: String,
    },
    /// Stops selling a product (停售).
    Discontinue {
        /// Product code.
        code: String,
    },
    /// Moves a product to the recycle bin.
    Delete {
        /// Product code.
        code: String,
    },
    /// Brings a product back from the recycle bin.
    Restore {
        /// Product code.
        code: String,
    },
}

/// Lifecycle of a sales document, by code: owner, shares, recycle bin and
/// history.
#[derive(Subcommand)]
pub(crate) enum DocCmd {
    /// Hands the document to another owner.
    Transfer {
        /// Code.
        code: String,
        /// New owner (username).
        #[arg(long)]
        to: String,
    },
    /// Shares the document with a user.
    Share {
        /// Code.
        code: String,
        /// User (username).
        #[arg(long)]
        with: String,
        /// read (只读) or write (读写).
        #[arg(long, default_value = "read")]
        access: String,
        /// Share until this time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Stops sharing the document with a user.
    Unshare {
        /// Code.
        code: String,
        /// User (username).
        #[arg(long)]
        with: String,
    },
    /// Lists whom the document is shared with.
    Shares {
        /// Code.
        code: String,
    },
    /// Moves the document to the recycle bin.
    Delete {
        /// Code.
        code: String,
    },
    /// Brings the document back from the recycle bin.
    Restore {
        /// Code.
        code: String,
    },
    /// Deletes the document for good (彻底删除), from the recycle bin.
    Purge {
        /// Code.
        code: String,
    },
    /// Shows who changed what on the document.
    History {
        /// Code.
        code: String,
    },
}

/// Opportunities (销售机会).
#[derive(Subcommand)]
pub(crate) enum OpportunityCmd {
    /// Adds an opportunity for a customer.
    Add {
        /// Customer code or name.
        #[arg(long)]
        customer: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Expected amount.
        #[arg(long)]
        amount: Option<String>,
        /// Expected close date.
        #[arg(long)]
        close: Option<String>,
        /// Source (来源).
        #[arg(long)]
        source: Option<String>,
        /// Notes.
        #[arg(long)]
        notes: Option<String>,
        /// A product line `CODE:QTY[:PRICE]` (the list price when none is
        /// given) or `=NAME:QTY:PRICE` (a free-text line; the `=` may be
        /// left out where NAME cannot be a product code); repeatable.
        #[arg(long = "product")]
        products: Vec<String>,
    },
    /// Changes an opportunity; only the given fields change.
    Edit {
        /// Code.
        code: String,
        /// Name.
        #[arg(long)]
        name: Option<String>,
        /// Expected amount.
        #[arg(long)]
        amount: Option<String>,
        /// Expected close date; an empty value (`--close ""`) clears it
        /// (refused where the opportunity's stage requires it).
        #[arg(long)]
        close: Option<String>,
        /// Source (来源).
        #[arg(long)]
        source: Option<String>,
        /// Notes.
        #[arg(long)]
        notes: Option<String>,
        /// Product lines `CODE:QTY[:PRICE]` or `=NAME:QTY:PRICE` (a
        /// free-text line; the `=` may be left out where NAME cannot be a
        /// product code), replacing the current ones; repeatable.
        #[arg(long = "product")]
        products: Vec<String>,
        /// The version you read (`show --json`); refused if someone
        /// changed it since. Without it the change applies to the opportunity as
        /// it is now.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Lists opportunities the actor may see, 100 a page.
    List {
        /// Only this status (tracking, won, lost, on_hold, expired).
        #[arg(long)]
        status: Option<String>,
        /// Only this stage key (see `opportunity pipeline-show`).
        #[arg(long)]
        stage: Option<String>,
        /// Only this customer's (code or name).
        #[arg(long)]
        customer: Option<String>,
        /// Search text.
        #[arg(long)]
        search: Option<String>,
        /// Page, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
    },
    /// Shows an opportunity with its stage history.
    Show {
        /// Code.
        code: String,
    },
    /// Moves an opportunity (--to STAGE) or changes its status.
    Stage {
        /// Code.
        code: String,
        /// Target stage key (initial, assessment, needs, proposal, bidding, negotiation, signing).
        #[arg(long)]
        to: Option<String>,
        /// Mark won.
        #[arg(long)]
        win: bool,
        /// Mark lost, with this reason.
        #[arg(long)]
        lose: Option<String>,
        /// Put on hold.
        #[arg(long)]
        hold: bool,
        /// Resume one on hold.
        #[arg(long)]
        resume: bool,
        /// Mark expired.
        #[arg(long)]
        expire: bool,
        /// Reopen a lost or expired one (重新打开): back to tracking in the
        /// stage it was closed in, its loss reason cleared.
        #[arg(long)]
        reopen: bool,
    },
    /// Weighted forecast by owner, department and month.
    Forecast {
        /// From this close month (YYYY-MM).
        #[arg(long)]
        from: Option<String>,
        /// Up to this close month, inclusive (YYYY-MM).
        #[arg(long)]
        to: Option<String>,
    },
    /// Shows the pipeline new opportunities of a department get: stage
    /// keys, names, probabilities and the stages each may move to.
    PipelineShow {
        /// Department (name or id); the company's pipeline when absent.
        #[arg(long)]
        dept: Option<String>,
    },
    /// Defines the pipeline of the company or of a department. Stages:
    /// KEY:NAME:PROBABILITY[:FIELD+FIELD] in order; each may move one
    /// forward or back to any earlier stage.
    Pipeline {
        /// Pipeline name.
        #[arg(long)]
        name: String,
        /// Department (name or id); the company's pipeline when absent.
        #[arg(long)]
        dept: Option<String>,
        /// Stages, in order.
        #[arg(long = "stage", required = true)]
        stages: Vec<String>,
    },
    #[command(flatten)]
    Doc(DocCmd),
}

/// Quotes (报价).
#[derive(Subcommand)]
pub(crate) enum QuoteCmd {
    /// Adds a quote. Lines: `CODE:QTY[:DISCOUNT%]` for a catalogue product
    /// (at its list price, less the discount), `=NAME:QTY:PRICE[:TAX%[:DISCOUNT%]]`
    /// for a free-text line (the `=` may be left out where NAME cannot be a
    /// product code, e.g. `实施服务:1:5000`). An unknown code is refused,
    /// and a free-text line named as a catalogue product counts a price
    /// below the product's list price as discount (for the approval).
    Add {
        /// Customer code or name.
        #[arg(long)]
        customer: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Opportunity code.
        #[arg(long)]
        opportunity: Option<String>,
        /// A line, repeatable: `CODE:QTY[:DISCOUNT%]` (a catalogue product) or
        /// `=NAME:QTY:PRICE[:TAX%[:DISCOUNT%]]` (a free-text line).
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// Valid until (有效期).
        #[arg(long)]
        valid_until: Option<String>,
    },
    /// Lists current quote versions, 100 a page.
    List {
        /// Only this customer's (code or name).
        #[arg(long)]
        customer: Option<String>,
        /// Page, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
    },
    /// Lists the versions of a quote, oldest first.
    Versions {
        /// Code.
        code: String,
    },
    /// Shows a quote (latest version).
    Show {
        /// Code.
        code: String,
    },
    /// Revises a quote: a new version with these lines.
    Revise {
        /// Code.
        code: String,
        /// A line, repeatable: `CODE:QTY[:DISCOUNT%]` (a catalogue product) or
        /// `=NAME:QTY:PRICE[:TAX%[:DISCOUNT%]]` (a free-text line).
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// Valid until (有效期).
        #[arg(long)]
        valid_until: Option<String>,
        /// The quote version you revise (`v2` in `quote show`): refused when
        /// a colleague revised the quote since.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Submits a quote (approval when a discount is above the flow's threshold).
    Submit {
        /// Code.
        code: String,
    },
    /// Turns an approved quote into a draft contract.
    Contract {
        /// Code.
        code: String,
        /// Contract type (sales, service, cooperation, purchase).
        #[arg(long)]
        r#type: Option<String>,
        /// Signing date.
        #[arg(long)]
        signed: Option<String>,
        /// Start date.
        #[arg(long)]
        start: Option<String>,
        /// End date.
        #[arg(long)]
        end: Option<String>,
    },
    #[command(flatten)]
    Doc(DocCmd),
}

/// Contracts (合同), payments (回款) and invoices (开票).
#[derive(Subcommand)]
pub(crate) enum ContractCmd {
    /// Adds a draft contract without lines.
    Add {
        /// Customer code or name.
        #[arg(long)]
        customer: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Amount.
        #[arg(long)]
        amount: String,
        /// Type (sales, service, cooperation, purchase).
        #[arg(long)]
        r#type: Option<String>,
        /// Signing date (签约日期).
        #[arg(long)]
        signed: Option<String>,
        /// Start date.
        #[arg(long)]
        start: Option<String>,
        /// End date.
        #[arg(long)]
        end: Option<String>,
        /// Notes.
        #[arg(long)]
        notes: Option<String>,
    },
    /// Changes a contract. A draft: title, amount, signing, start and end
    /// dates and notes. An approved (executing) one: only its start and end
    /// dates and notes; its title, amount and signing date are what was
    /// approved (terminate it and make a new contract for other terms). A
    /// contract pending approval is changed after withdrawing its approval.
    /// The end date is neither before the start date nor before the
    /// signing date.
    Edit {
        /// Code.
        code: String,
        /// Title.
        #[arg(long)]
        title: Option<String>,
        /// Amount (drafts without lines).
        #[arg(long)]
        amount: Option<String>,
        /// Signing date (签约日期).
        #[arg(long)]
        signed: Option<String>,
        /// Start date.
        #[arg(long)]
        start: Option<String>,
        /// End date.
        #[arg(long)]
        end: Option<String>,
        /// Notes.
        #[arg(long)]
        notes: Option<String>,
        /// The version you read (`show --json`); refused if someone
        /// changed it since. Without it the change applies to the contract as
        /// it is now.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Lists contracts, 100 a page.
    List {
        /// Only this status (draft, pending_approval, executing, finished, terminated).
        #[arg(long)]
        status: Option<String>,
        /// Only this type (sales, service, cooperation, purchase).
        #[arg(long)]
        r#type: Option<String>,
        /// Only this customer's (code or name).
        #[arg(long)]
        customer: Option<String>,
        /// Search text (code, title, pinyin initials).
        #[arg(long)]
        search: Option<String>,
        /// Page, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
        /// Only executing contracts ending within N days.
        #[arg(long)]
        ending: Option<u32>,
        /// Only executing contracts past their end date.
        #[arg(long)]
        expired: bool,
        /// Only contracts not fully collected.
        #[arg(long)]
        unpaid: bool,
    },
    /// Shows a contract with its collection status.
    Show {
        /// Code.
        code: String,
    },
    /// Submits a draft contract for approval.
    Submit {
        /// Code.
        code: String,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
        /// Approvers for a step where the applicant picks (username), repeated.
        #[arg(long = "pick")]
        pick: Vec<String>,
    },
    /// Sets the payment plan: --instalment DATE:AMOUNT, repeated.
    Plan {
        /// Code.
        code: String,
        /// Instalments.
        #[arg(long = "instalment", required = true)]
        instalments: Vec<String>,
    },
    /// Records a payment received.
    Pay {
        /// Code.
        code: String,
        /// Amount.
        #[arg(long)]
        amount: String,
        /// Date received (default today).
        #[arg(long)]
        date: Option<String>,
        /// Method.
        #[arg(long)]
        method: Option<String>,
        /// Receipt number.
        #[arg(long)]
        receipt: Option<String>,
        /// Notes.
        #[arg(long)]
        notes: Option<String>,
    },
    /// Voids a confirmed payment recorded by mistake (作废): it no longer
    /// counts as received. Name it by its number in `contract show` (1, 2
    /// …, or #1, #2 … when a receipt number could be meant), its receipt
    /// number or its id.
    VoidPayment {
        /// Code.
        code: String,
        /// The payment: its number in `contract show` (or #N), receipt
        /// number or id.
        payment: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Voids an issued invoice recorded by mistake (发票作废): it no longer
    /// counts as invoiced, so a corrected invoice can be issued; its number
    /// is never issued again. Name it by its number or id.
    VoidInvoice {
        /// Code.
        code: String,
        /// The invoice: its number (发票号码) or id.
        invoice: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Lists a contract's invoice plans and issued invoices.
    Invoices {
        /// Code.
        code: String,
    },
    /// Lists a contract's deliveries and what remains to deliver per line.
    Deliveries {
        /// Code.
        code: String,
    },
    /// Adds an invoice plan, or an issued invoice with --number.
    Invoice {
        /// Code.
        code: String,
        /// Amount.
        #[arg(long)]
        amount: String,
        /// 专票 / 普票 (vat_special / vat_normal).
        #[arg(long, default_value = "vat_special")]
        r#type: String,
        /// Invoice number (issued invoices).
        #[arg(long)]
        number: Option<String>,
        /// Date.
        #[arg(long)]
        date: Option<String>,
    },
    /// Records a delivery: --line LINE:QTY, repeated (lines count from 1).
    Deliver {
        /// Code.
        code: String,
        /// Lines.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// Date (default today).
        #[arg(long)]
        date: Option<String>,
        /// Notes (carrier, waybill).
        #[arg(long)]
        notes: Option<String>,
    },
    /// Finishes an executing contract.
    Finish {
        /// Code.
        code: String,
    },
    /// Terminates a contract with a reason.
    Terminate {
        /// Code.
        code: String,
        /// Reason.
        #[arg(long)]
        reason: String,
    },
    #[command(flatten)]
    Doc(DocCmd),
}

/// Approval flows (审批流) and approvals.
#[derive(Subcommand)]
pub(crate) enum ApprovalCmd {
    /// Defines the flow of a document type (contract, quote, payment …).
    /// Steps: NAME=RULE[/all][@COND], RULE one of superior:N, superiors:N,
    /// users:a,b, role:NAME, pick; COND amount>=YUAN, discount>PERCENT or
    /// type=a,b.
    Flow {
        /// Document type.
        doc_type: String,
        /// Flow name.
        #[arg(long)]
        name: String,
        /// Steps, in order.
        #[arg(long = "step", required = true)]
        steps: Vec<String>,
        /// After a rejection, resubmissions restart at the rejecting step.
        #[arg(long)]
        restart_at_rejecting: bool,
    },
    /// Submits a document of another type (e.g. a leave request 请假条)
    /// under its flow; contracts, quotes and payments have their own
    /// commands (contract submit, quote submit, contract pay).
    Submit {
        /// Document type, as given to `approval flow`.
        doc_type: String,
        /// The document: an id, or a code (submitting the same code again
        /// resubmits it after a rejection or a withdrawal; a code another
        /// user's request of the type holds is refused).
        #[arg(long)]
        document: String,
        /// Title shown in the pending lists.
        #[arg(long)]
        title: Option<String>,
        /// Amount in 元, for `amount>=` conditions.
        #[arg(long)]
        amount: Option<String>,
        /// The document's kind, for `type=` conditions.
        #[arg(long = "type")]
        kind: Option<String>,
        /// Approvers for a step where the applicant picks (username), repeated.
        #[arg(long = "pick")]
        pick: Vec<String>,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Approvals waiting for me (待我审批).
    Pending,
    /// Approvals I submitted.
    Mine,
    /// Shows an approval (id or document code) with every action.
    Show {
        /// Approval id, or a document code (a contract's pending payment approval too).
        key: String,
    },
    /// Approves the current step.
    Approve {
        /// Approval id, or a document code (a contract's pending payment approval too).
        key: String,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Rejects, to the applicant or back to an earlier step.
    Reject {
        /// Approval id, or a document code (a contract's pending payment approval too).
        key: String,
        /// Return to this earlier step (from 1, as `approval show` numbers
        /// the steps) instead of the applicant.
        #[arg(long)]
        to_step: Option<usize>,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Withdraws a pending approval: mine, or that of a contract or quote I own.
    Withdraw {
        /// Approval id, or a document code (a contract's pending payment approval too).
        key: String,
    },
    /// Brings a pending approval in line with the organisation: approvers
    /// who left are dropped, and a step left with nobody falls back.
    Refresh {
        /// Approval id, or a document code.
        key: String,
    },
}

fn money(s: &str) -> CliResult<Money> {
    use crm::money::MoneyError;
    Money::parse(s).map_err(|e| match e {
        // These name the amount already.
        MoneyError::Empty
        | MoneyError::Malformed { .. }
        | MoneyError::Precision { .. }
        | MoneyError::TooLarge { .. } => e.to_string(),
        e => format!("amount {s}: {e}"),
    })
}

fn date(s: &str) -> CliResult<NaiveDate> {
    crm::records::parse_date(s).map_err(|e| format!("date {s}: {e}"))
}

fn opt_date(s: &Option<String>) -> CliResult<Option<NaiveDate>> {
    s.as_deref().map(date).transpose()
}

/// A month `YYYY-MM` as its first day, or its last with `last`.
fn month(s: &str, last: bool) -> CliResult<NaiveDate> {
    let first = NaiveDate::parse_from_str(&format!("{}-01", s.trim()), "%Y-%m-%d")
        .map_err(|_| format!("month {s}: expected YYYY-MM"))?;
    if !last {
        return Ok(first);
    }
    first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .ok_or_else(|| format!("month {s} is out of range"))
}

fn product_status_zh(s: ProductStatus) -> &'static str {
    match s {
        ProductStatus::OnSale => "在售",
        ProductStatus::Discontinued => "停售",
    }
}

/// The names of these customers (said hidden when unreadable, as the
/// customer lists say it).
async fn customer_names(
    ctx: &Ctx,
    actor: &Actor,
    ids: impl IntoIterator<Item = Uuid>,
) -> HashMap<Uuid, String> {
    let mut names = HashMap::new();
    for id in ids {
        if names.contains_key(&id) {
            continue;
        }
        let name = ctx
            .crm
            .get_record(actor, Entity::Customer, RecordId(id))
            .await
            .map(|c| c.text("name").unwrap_or_default().to_string())
            .unwrap_or_else(|_| crate::hidden(Entity::Customer));
        names.insert(id, name);
    }
    names
}

/// The line under a list page: how many match and whether more follow.
fn footer(ctx: &Ctx, page: u64, shown: usize, total: Option<u64>, has_more: bool) {
    if ctx.json {
        return;
    }
    let total = total.map_or_else(|| "?".to_string(), |t| t.to_string());
    if has_more {
        out!(
            "total {total}; page {page} shows {shown}; more follow: --page {}",
            page + 1
        );
    } else {
        out!("total {total}; page {page} shows {shown}; no more pages");
    }
}

fn page_json(
    page: u64,
    items: serde_json::Value,
    total: Option<u64>,
    has_more: bool,
) -> serde_json::Value {
    json!({"items": items, "total": total, "page": page, "has_more": has_more})
}

pub(crate) async fn customer_id(ctx: &Ctx, actor: &Actor, key: &str) -> CliResult<Uuid> {
    if let Ok(r) = find_record(ctx, actor, Entity::Customer, key, Lifecycle::Active).await {
        return Ok(r.id.0);
    }
    let page = ctx
        .crm
        .list_records(actor, Entity::Customer, &ListQuery::default().search(key))
        .await
        .map_err(err)?;
    match page.items.as_slice() {
        [one] => Ok(one.id.0),
        [] => Err(format!("no customer {key}")),
        _ => Err(format!("several customers match {key}; give the code")),
    }
}

async fn category_id(ctx: &Ctx, actor: &Actor, code: &str) -> CliResult<Uuid> {
    ctx.crm
        .list_product_categories(actor)
        .await
        .map_err(err)?
        .into_iter()
        .find(|c| c.code == code || c.name == code)
        .map(|c| c.id)
        .ok_or_else(|| format!("no product category {code}"))
}

/// `s` with full-width letters, digits and punctuation (`３`, `．`, `％`)
/// and the ideographic space as their ASCII twins, as Chinese input
/// methods type them: quantities and percentages read so, as amounts do.
fn narrow(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

/// A line's quantity: a whole number, full-width digits too (`３`).
fn quantity(s: &str) -> Result<i64, String> {
    let narrowed = narrow(s);
    let t = narrowed.trim();
    t.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            format!("{s} is too large for a quantity")
        }
        _ => format!("{s} is not a whole number"),
    })
}

/// A percentage (`12.5`, `12.5%`, full-width `１２．５％` too) in basis
/// points: 0 to 100, at most two decimals.
fn percent_bp(s: &str) -> CliResult<i64> {
    let narrowed = narrow(s);
    let t = narrowed.trim().trim_end_matches('%').trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) {
        return Err(format!("{s} is not a percentage like 12.5 or 12.5%"));
    }
    if frac.trim_end_matches('0').len() > 2 {
        return Err(format!(
            "{s}: a percentage has at most two decimals (e.g. 12.25%)"
        ));
    }
    let frac = format!("{:0<2}", &frac[..frac.len().min(2)]);
    let bp = whole
        .parse::<i64>()
        .ok()
        .and_then(|w| w.checked_mul(100))
        .and_then(|w| w.checked_add(frac.parse::<i64>().unwrap_or(0)))
        .filter(|bp| *bp <= 10_000)
        .ok_or_else(|| format!("{s}: a percentage is between 0 and 100"))?;
    Ok(bp)
}

/// An opportunity's product lines from `CODE:QTY[:PRICE]` (a catalogue
/// product, at its list price unless one is given) or `=NAME:QTY:PRICE`
/// (a free-text line; the `=` may be left out where NAME cannot be a
/// product code, see [`looks_like_code`]: a mistyped code is refused, not
/// read as a free-text line).
async fn opp_lines(
    ctx: &Ctx,
    actor: &Actor,
    specs: &[String],
) -> CliResult<Vec<crm::sales::OppLine>> {
    let mut out = Vec::new();
    for spec in specs {
        let (marked, body) = marked_free_text(spec);
        let parts: Vec<&str> = body.split(':').collect();
        let (key, q, price) = match parts.as_slice() {
            [key, q] if !marked => (key.trim(), *q, None),
            [key, q, price] if !key.trim().is_empty() => (key.trim(), *q, Some(money(price)?)),
            _ => {
                return Err(format!(
                    "product line {spec}: write CODE:QTY[:PRICE] or =NAME:QTY:PRICE"
                ));
            }
        };
        let quantity = quantity(q).map_err(|why| format!("product line {spec}: quantity {why}"))?;
        let found = catalogue_product(ctx, actor, key).await?.ok_or(());
        match &found {
            Ok(p) if marked => {
                return Err(format!(
                    "product line {spec}: {key} is the code of product {}: write \
                     {key}:QTY[:PRICE] for it, or name the free-text line otherwise",
                    p.name
                ));
            }
            Err(()) if !marked && looks_like_code(key) => {
                return Err(format!(
                    "product line {spec}: no product coded {key}; a free-text line starts with = \
                     (={key}:QTY:PRICE)"
                ));
            }
            _ => {}
        }
        let line = match (found, price) {
            (Ok(p), price) => crm::sales::OppLine {
                product_id: Some(p.id),
                name: p.name.clone(),
                quantity,
                unit_price: price.unwrap_or(p.list_price),
            },
            (Err(_), Some(unit_price)) => crm::sales::OppLine {
                product_id: None,
                name: key.to_string(),
                quantity,
                unit_price,
            },
            (Err(_), None) => {
                return Err(format!(
                    "product line {spec}: no product coded {key}; a line without a product needs a price (=NAME:QTY:PRICE)"
                ));
            }
        };
        out.push(line);
    }
    Ok(out)
}

/// The stage key a list's or an export's `--stage` names: a stage of the pipeline new
/// opportunities of the company or of a department get, or one some
/// opportunity the actor sees is in (a stage of a pipeline since
/// replaced). Anything else is refused with the stages there are, instead
/// of listing or exporting nothing.
pub(crate) async fn stage_key(ctx: &Ctx, actor: &Actor, stage: &str) -> CliResult<String> {
    let mut stages: Vec<(String, String)> = Vec::new();
    let mut add = |def: crm::sales::PipelineDef| {
        for s in def.stages {
            if !stages.iter().any(|(k, _)| *k == s.key) {
                stages.push((s.key, s.name));
            }
        }
    };
    // The company's pipeline (the standard one when it has none).
    add(ctx.crm.pipeline_for(actor, None).await.map_err(err)?.1);
    for d in ctx.crm.list_departments(actor).await.map_err(err)? {
        add(ctx
            .crm
            .pipeline_for(actor, Some(d.id.0))
            .await
            .map_err(err)?
            .1);
    }
    if stages.iter().any(|(k, _)| k == stage) {
        return Ok(stage.to_string());
    }
    let held = ctx
        .crm
        .list_opportunities(
            actor,
            &crm::sales::OpportunityQuery {
                stage: Some(stage.to_string()),
                page: 1,
                per_page: 1,
                ..Default::default()
            },
        )
        .await
        .map_err(err)?;
    if !held.items.is_empty() {
        return Ok(stage.to_string());
    }
    Err(format!(
        "unknown opportunity stage '{stage}'; stages: {}",
        stages
            .iter()
            .map(|(k, n)| format!("{k} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// A line spec with its leading `=` (a free-text line) taken off: whether
/// it had one, and the rest.
fn marked_free_text(spec: &str) -> (bool, &str) {
    match spec.trim_start().strip_prefix('=') {
        Some(rest) => (true, rest),
        None => (false, spec),
    }
}

/// The catalogue product coded `code`, `None` when there is none.
async fn catalogue_product(
    ctx: &Ctx,
    actor: &Actor,
    code: &str,
) -> CliResult<Option<crm::sales::Product>> {
    match ctx.crm.product_by_code(actor, code).await {
        Ok(p) => Ok(Some(p)),
        Err(crm::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// A quote's or contract's lines as `show` prints them, one text each.
fn document_lines(lines: &[crm::sales::Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            // Priced below the catalogue's list price: how far in all.
            let below_list = match l.list_price {
                Some(list) if l.effective_discount_bp() != l.discount_bp => format!(
                    " [list price {list}: {}% off in all]",
                    l.effective_discount_bp() as f64 / 100.0
                ),
                _ => String::new(),
            };
            format!(
                "  {} × {} @ {} −{}% = {} (tax {}%: {}){below_list}",
                l.name,
                l.quantity,
                l.unit_price,
                l.discount_bp as f64 / 100.0,
                l.amount,
                l.tax_rate / 100,
                l.tax
            )
        })
        .collect()
}

/// How document lines are written, for help and errors.
const LINE_SYNTAX: &str = "CODE:QTY[:DISCOUNT%] for a catalogue product, \
     =NAME:QTY:PRICE[:TAX%[:DISCOUNT%]] for a free-text line";

/// Whether `s` has the shape of a product code (ASCII letters and digits,
/// `-`, `_`, `.`, full-width ones too): typed as a line's first part, it is
/// taken for a code, and a free-text line so named needs its leading `=`.
fn looks_like_code(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.chars().all(|c| {
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                c => c,
            };
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
        })
}

/// Document lines (quotes, contracts) from `CODE:QTY[:DISCOUNT%]` (a
/// catalogue product at its list price, less the discount) or
/// `=NAME:QTY:PRICE[:TAX%[:DISCOUNT%]]` (a free-text line). A name that
/// cannot be a code (Chinese, spaces …) may leave out the `=`; one shaped
/// like a code may not, so that a mistyped code (`P11:2:5` for `P1`) is
/// refused rather than read as a ¥5 line. A free-text line named as a
/// product's code is refused (the product is written by its code); one
/// named as a product counts a price below that product's list price as
/// discount (the core's pricing).
async fn parse_lines(ctx: &Ctx, actor: &Actor, specs: &[String]) -> CliResult<Vec<LineInput>> {
    let mut out = Vec::new();
    for spec in specs {
        let (marked, body) = marked_free_text(spec);
        let parts: Vec<&str> = body.split(':').collect();
        let qty = |s: &str| quantity(s).map_err(|why| format!("line {spec}: quantity {why}"));
        let first = parts[0].trim();
        let product = if first.is_empty() {
            None
        } else {
            catalogue_product(ctx, actor, first).await?
        };
        if !marked {
            match (&product, parts.as_slice()) {
                (Some(p), [_, q] | [_, q, _]) => {
                    out.push(LineInput {
                        product_id: Some(p.id),
                        name: String::new(),
                        unit: None,
                        quantity: qty(q)?,
                        unit_price: None,
                        discount_bp: parts
                            .get(2)
                            .map(|d| percent_bp(d))
                            .transpose()?
                            .unwrap_or(0),
                        tax_rate: None,
                    });
                    continue;
                }
                (Some(p), _) => {
                    return Err(format!(
                        "line {spec}: {first} is product {} ({}): write {first}:QTY[:DISCOUNT%] \
                         (its price is the list price {}, less the discount)",
                        p.code, p.name, p.list_price
                    ));
                }
                (None, _) if looks_like_code(first) => {
                    return Err(format!(
                        "line {spec}: no product coded {first}; a free-text line starts with = \
                         (={first}:QTY:PRICE[:TAX%[:DISCOUNT%]])"
                    ));
                }
                (None, [_, _]) => {
                    return Err(format!(
                        "line {spec}: no product coded {first}; a free-text line needs a price \
                         ({LINE_SYNTAX})"
                    ));
                }
                (None, _) => {}
            }
        } else if let Some(p) = &product {
            return Err(format!(
                "line {spec}: {first} is the code of product {}: write {first}:QTY[:DISCOUNT%] \
                 for it, or name the free-text line otherwise",
                p.name
            ));
        }
        let line = match parts.as_slice() {
            [name, q, price, rest @ ..] if rest.len() <= 2 && !name.trim().is_empty() => {
                LineInput {
                    product_id: None,
                    name: name.trim().to_string(),
                    unit: None,
                    quantity: qty(q)?,
                    unit_price: Some(money(price)?),
                    tax_rate: rest.first().map(|t| percent_bp(t)).transpose()?,
                    discount_bp: rest.get(1).map(|d| percent_bp(d)).transpose()?.unwrap_or(0),
                }
            }
            _ => return Err(format!("line {spec}: expected {LINE_SYNTAX}")),
        };
        out.push(line);
    }
    Ok(out)
}

pub(crate) async fn product_cmd(ctx: &Ctx, actor: &Actor, cmd: ProductCmd) -> CliResult {
    match cmd {
        ProductCmd::CategoryAdd { name, parent } => {
            let parent = match parent {
                Some(p) => Some(category_id(ctx, actor, &p).await?),
                None => None,
            };
            let c = ctx
                .crm
                .create_product_category(actor, &name, parent)
                .await
                .map_err(err)?;
            ctx.print(json!(c), || format!("category {} {}", c.code, c.name));
        }
        ProductCmd::Categories => {
            let list = ctx.crm.list_product_categories(actor).await.map_err(err)?;
            ctx.table(
                json!(list),
                &["code", "name"],
                list.iter()
                    .map(|c| vec![c.code.clone(), c.name.clone()])
                    .collect(),
            );
        }
        ProductCmd::Add {
            code,
            name,
            price,
            cost,
            unit,
            tax,
            category,
            spec,
        } => {
            let category_id = match category {
                Some(c) => Some(category_id(ctx, actor, &c).await?),
                None => None,
            };
            let p = ctx
                .crm
                .create_product(
                    actor,
                    ProductInput {
                        code,
                        name: Some(name),
                        category_id,
                        unit,
                        list_price: Some(money(&price)?),
                        cost: cost.as_deref().map(money).transpose()?,
                        tax_rate: Some(tax * 100),
                        spec,
                        ..ProductInput::default()
                    },
                )
                .await
                .map_err(err)?;
            ctx.print(json!(p), || {
                format!(
                    "product {} {} {} / {}",
                    p.code, p.name, p.list_price, p.unit
                )
            });
        }
        ProductCmd::List {
            search,
            category,
            page,
            deleted,
        } => {
            let category_id = match category {
                Some(c) => Some(category_id(ctx, actor, &c).await?),
                None => None,
            };
            let listed = ctx
                .crm
                .list_products(
                    actor,
                    &ProductQuery {
                        search,
                        category_id,
                        deleted,
                        page,
                        ..ProductQuery::default()
                    },
                )
                .await
                .map_err(err)?;
            ctx.table(
                page_json(page, json!(listed.items), listed.total, listed.has_more),
                &["code", "name", "unit", "price", "tax", "status"],
                listed
                    .items
                    .iter()
                    .map(|p| {
                        vec![
                            p.code.clone(),
                            p.name.clone(),
                            p.unit.clone(),
                            p.list_price.to_string(),
                            format!("{}%", p.tax_rate / 100),
                            product_status_zh(p.status).to_string(),
                        ]
                    })
                    .collect(),
            );
            footer(ctx, page, listed.items.len(), listed.total, listed.has_more);
        }
        ProductCmd::Edit {
            code,
            name,
            price,
            cost,
            unit,
            tax,
            category,
            spec,
            status,
            version,
        } => {
            let p = ctx.crm.product_by_code(actor, &code).await.map_err(err)?;
            let category_id = match category {
                Some(c) => Some(category_id(ctx, actor, &c).await?),
                None => None,
            };
            let status = match status {
                Some(s) => Some(ProductStatus::parse(&s).ok_or_else(|| {
                    format!("unknown product status {s}; expected on_sale or discontinued")
                })?),
                None => None,
            };
            let input = ProductInput {
                name,
                category_id,
                unit,
                list_price: price.as_deref().map(money).transpose()?,
                cost: cost.as_deref().map(money).transpose()?,
                tax_rate: tax.map(|t| t * 100),
                spec,
                status,
                ..ProductInput::default()
            };
            // Without --version, a product changed by someone else meanwhile
            // is read again and the change applied to it as it is now.
            let mut p = p;
            let mut tries = 0;
            let p = loop {
                match ctx
                    .crm
                    .update_product(actor, p.id, version.unwrap_or(p.version), input.clone())
                    .await
                {
                    Err(crm::Error::Conflict { .. })
                        if version.is_none() && tries < super::EDIT_TRIES =>
                    {
                        tries += 1;
                        super::back_off(tries);
                        p = ctx.crm.product_by_code(actor, &code).await.map_err(err)?;
                    }
                    other => break other.map_err(err)?,
                }
            };
            ctx.print(json!(p), || {
                format!(
                    "product {} {} {} / {}, tax {}%, {}",
                    p.code,
                    p.name,
                    p.list_price,
                    p.unit,
                    p.tax_rate / 100,
                    product_status_zh(p.status)
                )
            });
        }
        ProductCmd::Delete { code } => {
            let p = ctx.crm.product_by_code(actor, &code).await.map_err(err)?;
            let p = ctx
                .crm
                .set_product_deleted(actor, p.id, true)
                .await
                .map_err(err)?;
            ctx.print(json!(p), || {
                format!("product {} moved to the recycle bin", p.code)
            });
        }
        ProductCmd::Restore { code } => {
            let bin = ctx
                .crm
                .list_products(
                    actor,
                    &ProductQuery {
                        search: Some(code.clone()),
                        deleted: true,
                        per_page: 1000,
                        ..ProductQuery::default()
                    },
                )
                .await
                .map_err(err)?;
            // Codes are unique letter case aside: the one spelled so, else
            // the one equal but for case.
            let p = bin
                .items
                .iter()
                .find(|p| p.code == code.trim())
                .or_else(|| {
                    bin.items
                        .iter()
                        .find(|p| p.code.to_lowercase() == code.trim().to_lowercase())
                })
                .ok_or_else(|| format!("product {code} is not in the recycle bin"))?;
            let p = ctx
                .crm
                .set_product_deleted(actor, p.id, false)
                .await
                .map_err(err)?;
            ctx.print(json!(p), || format!("product {} restored", p.code));
        }
        ProductCmd::Show { code } => {
            let p = ctx.crm.product_by_code(actor, &code).await.map_err(err)?;
            ctx.print(json!(p), || {
                let mut lines = vec![format!(
                    "{} {} — {} / {}, tax {}%, {}, version {}",
                    p.code,
                    p.name,
                    p.list_price,
                    p.unit,
                    p.tax_rate as f64 / 100.0,
                    product_status_zh(p.status),
                    p.version
                )];
                if let Some(c) = p.cost {
                    lines.push(format!("  cost (成本) {c}"));
                }
                if let Some(s) = &p.spec {
                    lines.push(format!("  spec (规格) {s}"));
                }
                if let Some(d) = &p.description {
                    lines.push(format!("  {d}"));
                }
                lines.join("\n")
            });
        }
        ProductCmd::Discontinue { code } => {
            let input = ProductInput {
                status: Some(ProductStatus::Discontinued),
                ..ProductInput::default()
            };
            let mut tries = 0;
            let p = loop {
                let p = ctx.crm.product_by_code(actor, &code).await.map_err(err)?;
                match ctx
                    .crm
                    .update_product(actor, p.id, p.version, input.clone())
                    .await
                {
                    Err(crm::Error::Conflict { .. }) if tries < super::EDIT_TRIES => {
                        tries += 1;
                        super::back_off(tries);
                    }
                    other => break other.map_err(err)?,
                }
            };
            ctx.print(json!(p), || format!("product {} discontinued", p.code));
        }
    }
    Ok(())
}

pub(crate) async fn opportunity_cmd(ctx: &Ctx, actor: &Actor, cmd: OpportunityCmd) -> CliResult {
    match cmd {
        OpportunityCmd::Add {
            customer,
            name,
            amount,
            close,
            source,
            notes,
            products,
        } => {
            let customer_id = customer_id(ctx, actor, &customer).await?;
            let products = opp_lines(ctx, actor, &products).await?;
            let o = ctx
                .crm
                .create_opportunity(
                    actor,
                    NewOpportunity {
                        name,
                        customer_id,
                        amount: amount.as_deref().map(money).transpose()?,
                        expected_close: opt_date(&close)?,
                        source,
                        notes,
                        products,
                        ..NewOpportunity::default()
                    },
                )
                .await
                .map_err(err)?;
            ctx.print(json!(o), || {
                format!(
                    "opportunity {} {} at {} ({}%)",
                    o.code, o.name, o.stage_name, o.probability
                )
            });
        }
        OpportunityCmd::Edit {
            code,
            name,
            amount,
            close,
            source,
            notes,
            products,
            version,
        } => {
            let products = if products.is_empty() {
                None
            } else {
                Some(opp_lines(ctx, actor, &products).await?)
            };
            let o = ctx
                .crm
                .opportunity_by_code(actor, &code)
                .await
                .map_err(err)?;
            let patch = crm::sales::OpportunityPatch {
                name,
                amount: amount.as_deref().map(money).transpose()?,
                expected_close: opt_date(&close.clone().filter(|c| !c.trim().is_empty()))?,
                clear_expected_close: close.as_deref().is_some_and(|c| c.trim().is_empty()),
                source,
                notes,
                products,
                ..crm::sales::OpportunityPatch::default()
            };
            // Without --version, an opportunity changed by someone else
            // meanwhile is read again and the change applied to it as it is
            // now, every check made again.
            let mut o = o;
            let mut tries = 0;
            let o = loop {
                match ctx
                    .crm
                    .update_opportunity(actor, o.id, version.unwrap_or(o.version), patch.clone())
                    .await
                {
                    Err(crm::Error::Conflict { .. })
                        if version.is_none() && tries < super::EDIT_TRIES =>
                    {
                        tries += 1;
                        super::back_off(tries);
                        o = ctx
                            .crm
                            .opportunity_by_code(actor, &code)
                            .await
                            .map_err(err)?;
                    }
                    other => break other.map_err(err)?,
                }
            };
            ctx.print(json!(o), || {
                format!("{} {} {} weighted {}", o.code, o.name, o.amount, o.weighted)
            });
        }
        OpportunityCmd::List {
            status,
            stage,
            customer,
            search,
            page,
        } => {
            let status = match status {
                Some(s) => Some(OppStatus::parse(&s).ok_or_else(|| format!("unknown status {s}"))?),
                None => None,
            };
            let customer_id = match customer {
                Some(c) => Some(customer_id(ctx, actor, &c).await?),
                None => None,
            };
            let stage = match stage {
                Some(s) => Some(stage_key(ctx, actor, &s).await?),
                None => None,
            };
            let listed = ctx
                .crm
                .list_opportunities(
                    actor,
                    &OpportunityQuery {
                        status,
                        stage,
                        customer_id,
                        search,
                        page,
                        per_page: PER_PAGE,
                    },
                )
                .await
                .map_err(err)?;
            let names =
                customer_names(ctx, actor, listed.items.iter().map(|o| o.customer_id)).await;
            ctx.table(
                page_json(page, json!(listed.items), listed.total, listed.has_more),
                &[
                    "code", "name", "customer", "stage", "status", "amount", "weighted", "close",
                ],
                listed
                    .items
                    .iter()
                    .map(|o| {
                        vec![
                            o.code.clone(),
                            o.name.clone(),
                            names.get(&o.customer_id).cloned().unwrap_or_default(),
                            o.stage_name.clone(),
                            o.status.label_zh().to_string(),
                            o.amount.to_string(),
                            o.weighted.to_string(),
                            o.expected_close.map(|d| d.to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect(),
            );
            footer(ctx, page, listed.items.len(), listed.total, listed.has_more);
        }
        OpportunityCmd::Show { code } => {
            let o = ctx
                .crm
                .opportunity_by_code(actor, &code)
                .await
                .map_err(err)?;
            // Who moved it into each stage: the audit entry that set the
            // stage then (the creation for the first); unknown without the
            // right to read the history.
            let audit = ctx
                .crm
                .history(actor, Entity::Opportunity, o.id)
                .await
                .unwrap_or_default();
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = super::users_by_id(&users);
            let movers: Vec<String> = o
                .history
                .iter()
                .enumerate()
                .map(|(n, v)| {
                    let near = |e: &&crm::store::AuditEntry| {
                        (e.at - v.entered_at).num_milliseconds().abs() <= 2000
                    };
                    let entry = if n == 0 {
                        audit.iter().filter(near).find(|e| e.action == "create")
                    } else {
                        audit.iter().filter(near).find(|e| {
                            e.changes
                                .iter()
                                .any(|c| c.field == "stage" && c.after == json!(v.stage))
                        })
                    };
                    entry.map_or_else(String::new, |e| name(e.actor_id.map(UserId)))
                })
                .collect();
            // Stage names, when the opportunity's pipeline is still the one
            // its department gets; the keys otherwise.
            let mut stage_names: HashMap<String, String> = HashMap::new();
            if let Ok((pipeline, def)) = ctx.crm.pipeline_for(actor, o.department_id).await
                && pipeline == o.pipeline_id
            {
                stage_names.extend(def.stages.into_iter().map(|s| (s.key, s.name)));
            }
            let stage = |key: &str| match stage_names.get(key) {
                Some(name) => format!("{name} ({key})"),
                None => key.to_string(),
            };
            ctx.print(json!(o), || {
                let mut lines = vec![format!(
                    "{} {} — {} {} ({}%), {} weighted {}",
                    o.code,
                    o.name,
                    o.stage_name,
                    o.status.label_zh(),
                    o.probability,
                    o.amount,
                    o.weighted
                )];
                for l in &o.products {
                    let total = l
                        .unit_price
                        .checked_mul(l.quantity)
                        .map_or_else(|_| "—".to_string(), |m| m.to_string());
                    lines.push(format!(
                        "  {} × {} @ {} = {total}",
                        l.name, l.quantity, l.unit_price
                    ));
                }
                lines.push("stage history:".into());
                for (v, who) in o.history.iter().zip(&movers) {
                    let mut line =
                        format!("  {} {}", super::local(ctx, v.entered_at), stage(&v.stage));
                    if !who.is_empty() {
                        line.push_str(&format!(" by {who}"));
                    }
                    if let Some(left) = v.left_at {
                        line.push_str(&format!(", left {}", super::local(ctx, left)));
                    }
                    lines.push(line);
                }
                lines.push("time per stage:".into());
                for (key, secs) in &o.time_per_stage {
                    lines.push(format!("  {}: {:.1} h", stage(key), *secs as f64 / 3600.0));
                }
                lines.join("\n")
            });
        }
        OpportunityCmd::Stage {
            code,
            to,
            win,
            lose,
            hold,
            resume,
            expire,
            reopen,
        } => {
            let chosen = [
                to.is_some(),
                win,
                lose.is_some(),
                hold,
                resume,
                expire,
                reopen,
            ];
            if chosen.iter().filter(|c| **c).count() != 1 {
                return Err(
                    "give exactly one of --to, --win, --lose, --hold, --resume, --expire, --reopen"
                        .into(),
                );
            }
            let command = if let Some(t) = to {
                StageCommand::MoveTo(t)
            } else if let Some(r) = lose {
                StageCommand::Lose(r)
            } else if win {
                StageCommand::Win
            } else if hold {
                StageCommand::Hold
            } else if resume {
                StageCommand::Resume
            } else if expire {
                StageCommand::Expire
            } else {
                StageCommand::Reopen
            };
            let o = ctx
                .crm
                .opportunity_by_code(actor, &code)
                .await
                .map_err(err)?;
            let o = ctx
                .crm
                .change_opportunity_stage(actor, o.id, o.version, command)
                .await
                .map_err(err)?;
            ctx.print(json!(o), || {
                format!(
                    "{} is at {} ({}), {}%",
                    o.code,
                    o.stage_name,
                    o.status.label_zh(),
                    o.probability
                )
            });
        }
        OpportunityCmd::Pipeline { name, dept, stages } => {
            let mut parsed: Vec<crm::sales::StageDef> = Vec::new();
            for spec in &stages {
                let parts: Vec<&str> = spec.split(':').collect();
                let (key, label, p) = match parts.as_slice() {
                    [k, n, p] | [k, n, p, _] => (*k, *n, *p),
                    _ => {
                        return Err(format!(
                            "stage {spec}: expected KEY:NAME:PROBABILITY[:FIELD+FIELD]"
                        ));
                    }
                };
                parsed.push(crm::sales::StageDef {
                    key: key.into(),
                    name: label.into(),
                    probability: p
                        .parse()
                        .map_err(|_| format!("stage {spec}: probability {p} is not 0–100"))?,
                    required: parts
                        .get(3)
                        .map(|r| r.split('+').map(str::to_string).collect())
                        .unwrap_or_default(),
                    next: Vec::new(),
                });
            }
            let keys: Vec<String> = parsed.iter().map(|s| s.key.clone()).collect();
            for (i, s) in parsed.iter_mut().enumerate() {
                s.next = keys
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j < i || *j == i + 1)
                    .map(|(_, k)| k.clone())
                    .collect();
            }
            let department = match dept {
                Some(d) => Some(
                    ctx.crm
                        .resolve_department(actor, &d)
                        .await
                        .map_err(err)?
                        .id
                        .0,
                ),
                None => None,
            };
            let id = ctx
                .crm
                .define_pipeline(
                    actor,
                    &name,
                    department,
                    crm::sales::PipelineDef { stages: parsed },
                )
                .await
                .map_err(err)?;
            ctx.print(json!({"id": id}), || format!("pipeline {name} defined"));
        }
        OpportunityCmd::PipelineShow { dept } => {
            let department = match dept {
                Some(d) => Some(
                    ctx.crm
                        .resolve_department(actor, &d)
                        .await
                        .map_err(err)?
                        .id
                        .0,
                ),
                None => None,
            };
            let (id, def) = ctx.crm.pipeline_for(actor, department).await.map_err(err)?;
            ctx.table(
                json!({"id": id, "stages": def.stages}),
                &["key", "name", "probability", "required", "next"],
                def.stages
                    .iter()
                    .map(|s| {
                        vec![
                            s.key.clone(),
                            s.name.clone(),
                            format!("{}%", s.probability),
                            s.required.join(", "),
                            s.next.join(", "),
                        ]
                    })
                    .collect(),
            );
        }
        OpportunityCmd::Doc(cmd) => doc_cmd(ctx, actor, Entity::Opportunity, cmd).await?,
        OpportunityCmd::Forecast { from, to } => {
            let from = from.as_deref().map(|m| month(m, false)).transpose()?;
            let to = to.as_deref().map(|m| month(m, true)).transpose()?;
            let rows = ctx
                .crm
                .opportunity_forecast(actor, from, to)
                .await
                .map_err(err)?;
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = super::users_by_id(&users);
            let depts = ctx.crm.list_departments(actor).await.map_err(err)?;
            let dept = |id: Option<Uuid>| match id {
                Some(id) => depts
                    .iter()
                    .find(|d| d.id.0 == id)
                    .map(|d| d.name.clone())
                    .unwrap_or_else(|| id.to_string()),
                None => String::new(),
            };
            ctx.table(
                json!(rows),
                &[
                    "owner",
                    "department",
                    "month",
                    "count",
                    "amount",
                    "weighted",
                ],
                rows.iter()
                    .map(|r| {
                        vec![
                            name(r.owner_id.map(crm::ids::UserId)),
                            dept(r.department_id),
                            r.month.clone(),
                            r.count.to_string(),
                            r.amount.to_string(),
                            r.weighted.to_string(),
                        ]
                    })
                    .collect(),
            );
        }
    }
    Ok(())
}

fn contract_details(
    r#type: &Option<String>,
    signed: &Option<String>,
    start: &Option<String>,
    end: &Option<String>,
) -> CliResult<NewContract> {
    Ok(NewContract {
        contract_type: match r#type {
            Some(t) => {
                Some(ContractType::parse(t).ok_or_else(|| format!("unknown contract type {t}"))?)
            }
            None => None,
        },
        signed_on: opt_date(signed)?,
        start_on: opt_date(start)?,
        end_on: opt_date(end)?,
        ..NewContract::default()
    })
}

pub(crate) async fn quote_cmd(ctx: &Ctx, actor: &Actor, cmd: QuoteCmd) -> CliResult {
    let show = |q: &crm::sales::Quote| {
        let mut lines = vec![format!(
            "{} v{} {} — {} ({}), tax {}, {}",
            q.code,
            q.quote_version,
            q.title,
            q.totals.amount,
            q.amount_capital,
            q.totals.tax,
            q.status.label_zh()
        )];
        if let Some(d) = q.valid_until {
            lines.push(format!("  valid until {d}"));
        }
        lines.extend(document_lines(&q.lines));
        lines.join("\n")
    };
    match cmd {
        QuoteCmd::Add {
            customer,
            title,
            opportunity,
            lines,
            valid_until,
        } => {
            let customer_id = customer_id(ctx, actor, &customer).await?;
            let opportunity_id = match opportunity {
                Some(o) => Some(
                    ctx.crm
                        .opportunity_by_code(actor, &o)
                        .await
                        .map_err(err)?
                        .id,
                ),
                None => None,
            };
            let lines = parse_lines(ctx, actor, &lines).await?;
            let q = ctx
                .crm
                .create_quote(
                    actor,
                    NewQuote {
                        title,
                        customer_id,
                        opportunity_id,
                        lines,
                        valid_until: opt_date(&valid_until)?,
                        ..NewQuote::default()
                    },
                )
                .await
                .map_err(err)?;
            ctx.print(json!(q), || show(&q));
        }
        QuoteCmd::List { customer, page } => {
            let customer = match customer {
                Some(c) => Some(customer_id(ctx, actor, &c).await?),
                None => None,
            };
            let listed = ctx
                .crm
                .list_quotes(actor, customer, page, PER_PAGE)
                .await
                .map_err(err)?;
            let names =
                customer_names(ctx, actor, listed.items.iter().map(|q| q.customer_id)).await;
            ctx.table(
                page_json(page, json!(listed.items), listed.total, listed.has_more),
                &[
                    "code",
                    "version",
                    "title",
                    "customer",
                    "amount",
                    "max discount",
                    "status",
                ],
                listed
                    .items
                    .iter()
                    .map(|q| {
                        vec![
                            q.code.clone(),
                            q.quote_version.to_string(),
                            q.title.clone(),
                            names.get(&q.customer_id).cloned().unwrap_or_default(),
                            q.totals.amount.to_string(),
                            format!("{}%", q.totals.max_discount_bp as f64 / 100.0),
                            q.status.label_zh().to_string(),
                        ]
                    })
                    .collect(),
            );
            footer(ctx, page, listed.items.len(), listed.total, listed.has_more);
        }
        QuoteCmd::Versions { code } => {
            let q = ctx.crm.quote_by_code(actor, &code).await.map_err(err)?;
            let versions = ctx.crm.quote_versions(actor, q.id).await.map_err(err)?;
            ctx.table(
                json!(versions),
                &["version", "amount", "max discount", "valid until", "status"],
                versions
                    .iter()
                    .map(|v| {
                        vec![
                            format!("v{}", v.quote_version),
                            v.totals.amount.to_string(),
                            format!("{}%", v.totals.max_discount_bp as f64 / 100.0),
                            v.valid_until.map(|d| d.to_string()).unwrap_or_default(),
                            v.status.label_zh().to_string(),
                        ]
                    })
                    .collect(),
            );
        }
        QuoteCmd::Show { code } => {
            let q = ctx.crm.quote_by_code(actor, &code).await.map_err(err)?;
            ctx.print(json!(q), || show(&q));
        }
        QuoteCmd::Revise {
            code,
            lines,
            valid_until,
            version,
        } => {
            let q = ctx.crm.quote_by_code(actor, &code).await.map_err(err)?;
            // The version found is the current one, and only it may be
            // revised (a version superseded meanwhile is refused inside the
            // write): one other than the version given was revised since.
            if let Some(v) = version
                && v != q.quote_version
            {
                return Err(format!(
                    "quote {code} was revised since v{v}: it is at v{} now (已被他人修改); \
                     look at `crm quote show {code}` and revise that version",
                    q.quote_version
                ));
            }
            let lines = parse_lines(ctx, actor, &lines).await?;
            let q = ctx
                .crm
                .revise_quote(actor, q.id, lines, opt_date(&valid_until)?)
                .await
                .map_err(err)?;
            ctx.print(json!(q), || show(&q));
        }
        QuoteCmd::Submit { code } => {
            let q = ctx.crm.quote_by_code(actor, &code).await.map_err(err)?;
            let (q, a) = ctx.crm.submit_quote(actor, q.id, None).await.map_err(err)?;
            ctx.print(json!({"quote": q, "approval": a}), || {
                format!(
                    "{} v{} is {}{}",
                    q.code,
                    q.quote_version,
                    q.status.label_zh(),
                    pending_note(&a)
                )
            });
        }
        QuoteCmd::Contract {
            code,
            r#type,
            signed,
            start,
            end,
        } => {
            let q = ctx.crm.quote_by_code(actor, &code).await.map_err(err)?;
            let details = contract_details(&r#type, &signed, &start, &end)?;
            let c = ctx
                .crm
                .quote_to_contract(actor, q.id, details)
                .await
                .map_err(err)?;
            ctx.print(json!(c), || {
                format!(
                    "contract {} {} {} ({}), draft",
                    c.code, c.title, c.amount, c.amount_capital
                )
            });
        }
        QuoteCmd::Doc(cmd) => doc_cmd(ctx, actor, Entity::Quote, cmd).await?,
    }
    Ok(())
}

fn pending_note(a: &Option<ApprovalInfo>) -> String {
    match a {
        Some(a) if !a.pending_with.is_empty() => format!(
            "; approval {} waits at {}",
            a.id,
            a.current_step.clone().unwrap_or_default()
        ),
        _ => String::new(),
    }
}

pub(crate) async fn contract_cmd(ctx: &Ctx, actor: &Actor, cmd: ContractCmd) -> CliResult {
    let find =
        |code: String| async move { ctx.crm.contract_by_code(actor, &code).await.map_err(err) };
    match cmd {
        ContractCmd::Add {
            customer,
            title,
            amount,
            r#type,
            signed,
            start,
            end,
            notes,
        } => {
            let customer_id = customer_id(ctx, actor, &customer).await?;
            let mut input = contract_details(&r#type, &signed, &start, &end)?;
            input.title = title;
            input.customer_id = customer_id;
            input.amount = Some(money(&amount)?);
            input.notes = notes;
            let c = ctx.crm.create_contract(actor, input).await.map_err(err)?;
            ctx.print(json!(c), || {
                format!("contract {} {} {}, draft", c.code, c.title, c.amount)
            });
        }
        ContractCmd::List {
            status,
            r#type,
            customer,
            search,
            page,
            ending,
            expired,
            unpaid,
        } => {
            let status = match status {
                Some(s) => Some(
                    crm::sales::ContractStatus::parse(&s)
                        .ok_or_else(|| format!("unknown contract status {s}"))?,
                ),
                None => None,
            };
            let contract_type = match r#type {
                Some(t) => Some(
                    ContractType::parse(&t).ok_or_else(|| format!("unknown contract type {t}"))?,
                ),
                None => None,
            };
            let customer_id = match customer {
                Some(c) => Some(customer_id(ctx, actor, &c).await?),
                None => None,
            };
            let listed = ctx
                .crm
                .list_contracts(
                    actor,
                    &ContractQuery {
                        status,
                        contract_type,
                        customer_id,
                        search,
                        ending_within_days: ending,
                        expired,
                        not_fully_received: unpaid,
                        page,
                        per_page: PER_PAGE,
                    },
                )
                .await
                .map_err(err)?;
            let names =
                customer_names(ctx, actor, listed.items.iter().map(|c| c.customer_id)).await;
            ctx.table(
                page_json(page, json!(listed.items), listed.total, listed.has_more),
                &[
                    "code",
                    "title",
                    "customer",
                    "status",
                    "amount",
                    "received",
                    "outstanding",
                    "end",
                ],
                listed
                    .items
                    .iter()
                    .map(|c| {
                        vec![
                            c.code.clone(),
                            c.title.clone(),
                            names.get(&c.customer_id).cloned().unwrap_or_default(),
                            c.status.label_zh().to_string(),
                            c.amount.to_string(),
                            c.received.to_string(),
                            c.outstanding.to_string(),
                            c.end_on.map(|d| d.to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect(),
            );
            footer(ctx, page, listed.items.len(), listed.total, listed.has_more);
        }
        ContractCmd::Edit {
            code,
            title,
            amount,
            signed,
            start,
            end,
            notes,
            version,
        } => {
            let patch = crm::sales::ContractPatch {
                title,
                amount: amount.as_deref().map(money).transpose()?,
                signed_on: opt_date(&signed)?,
                start_on: opt_date(&start)?,
                end_on: opt_date(&end)?,
                notes,
                ..crm::sales::ContractPatch::default()
            };
            // Without --version, a contract changed by someone else
            // meanwhile (another field edited, a payment recorded) is read
            // again and the change applied to it as it is now, every check
            // made again. With it, the change must meet that version: one
            // changed since is refused, naming both versions.
            let mut tries = 0;
            let c = loop {
                let c = find(code.clone()).await?;
                match ctx
                    .crm
                    .update_contract(actor, c.id, version.unwrap_or(c.version), patch.clone())
                    .await
                {
                    Err(crm::Error::Conflict { .. })
                        if version.is_none() && tries < super::EDIT_TRIES =>
                    {
                        tries += 1;
                        super::back_off(tries);
                    }
                    other => break other.map_err(err)?,
                }
            };
            ctx.print(json!(c), || {
                let until = c.end_on.map(|d| format!(" until {d}")).unwrap_or_default();
                format!("contract {} {} {}{until}", c.code, c.title, c.amount)
            });
        }
        ContractCmd::Show { code } => {
            let c = find(code).await?;
            let col = ctx.crm.collection(actor, c.id).await.map_err(err)?;
            ctx.print(json!({"contract": c, "collection": col}), || {
                let mut lines = vec![
                    format!(
                        "{} {} [{}] {}",
                        c.code,
                        c.title,
                        c.contract_type.label_zh(),
                        c.status.label_zh()
                    ),
                    format!("  金额 {} ({})", c.amount, c.amount_capital),
                    format!(
                        "  已回款 {}  未回款 {}  逾期 {}  已开票 {}",
                        col.received, col.outstanding, col.overdue, c.invoiced
                    ),
                ];
                lines.extend(document_lines(&c.lines));
                for p in &col.plans {
                    lines.push(format!(
                        "  第{}期 {} {} 已收 {}{}",
                        p.instalment,
                        p.due_on,
                        p.amount,
                        p.received,
                        if p.days_overdue > 0 {
                            format!(" 逾期 {} 天", p.days_overdue)
                        } else {
                            String::new()
                        }
                    ));
                }
                for (i, p) in col.payments.iter().enumerate() {
                    lines.push(format!(
                        "  回款 #{} {} {} {}{}",
                        i + 1,
                        p.received_on,
                        p.amount,
                        match &p.void_reason {
                            Some(why) => format!("{}: {why}", p.status_label_zh()),
                            None => p.status_label_zh().to_string(),
                        },
                        p.receipt_no
                            .as_deref()
                            .map(|r| format!(" 单号 {r}"))
                            .unwrap_or_default()
                    ));
                }
                // What no instalment schedules: due on the end date.
                if col.unplanned.minor > 0 {
                    lines.push(format!(
                        "  未排期 {} 到期 {}{}",
                        col.unplanned,
                        c.end_on
                            .map_or_else(|| "无结束日期".to_string(), |d| d.to_string()),
                        if col.unplanned_days_overdue > 0 {
                            format!(" 逾期 {} 天", col.unplanned_days_overdue)
                        } else {
                            String::new()
                        }
                    ));
                }
                lines.join("\n")
            });
        }
        ContractCmd::Submit {
            code,
            comment,
            pick,
        } => {
            let c = find(code).await?;
            let mut picked = Vec::new();
            for u in &pick {
                picked.push(super::resolve_user(ctx, actor, u).await?.id.0);
            }
            let (c, a) = ctx
                .crm
                .submit_contract(actor, c.id, picked, comment.as_deref())
                .await
                .map_err(err)?;
            ctx.print(json!({"contract": c, "approval": a}), || {
                format!(
                    "contract {} is {}{}",
                    c.code,
                    c.status.label_zh(),
                    pending_note(&a)
                )
            });
        }
        ContractCmd::Plan { code, instalments } => {
            let c = find(code).await?;
            let mut plans = Vec::new();
            for i in &instalments {
                let (d, a) = i
                    .split_once(':')
                    .ok_or_else(|| format!("instalment {i}: expected DATE:AMOUNT"))?;
                plans.push(PlanInput {
                    due_on: date(d)?,
                    amount: money(a)?,
                    notes: None,
                });
            }
            let col = ctx
                .crm
                .set_payment_plan(actor, c.id, plans)
                .await
                .map_err(err)?;
            ctx.print(json!(col), || {
                format!("{} instalments for {}", col.plans.len(), c.code)
            });
        }
        ContractCmd::Pay {
            code,
            amount,
            date: when,
            method,
            receipt,
            notes,
        } => {
            let c = find(code).await?;
            let received_on = match when {
                Some(d) => date(&d)?,
                None => ctx.crm.today(),
            };
            let (p, a) = ctx
                .crm
                .record_payment(
                    actor,
                    c.id,
                    PaymentInput {
                        amount: money(&amount)?,
                        received_on,
                        method,
                        receipt_no: receipt,
                        notes,
                    },
                )
                .await
                .map_err(err)?;
            let c = ctx.crm.contract(actor, c.id).await.map_err(err)?;
            ctx.print(json!({"payment": p, "contract": c, "approval": a}), || {
                format!(
                    "payment {} on {} {}; received {}, outstanding {}{}",
                    p.amount,
                    c.code,
                    p.status_label_zh(),
                    c.received,
                    c.outstanding,
                    pending_note(&a)
                )
            });
        }
        ContractCmd::VoidPayment {
            code,
            payment,
            reason,
        } => {
            let c = find(code).await?;
            let col = ctx.crm.collection(actor, c.id).await.map_err(err)?;
            let whole = payment.trim();
            // `#2` is the second payment in `contract show`; a bare number
            // is the position too. Either is asked about when it is also
            // another payment's receipt number as typed.
            let (forced, key) = match whole.strip_prefix('#') {
                Some(k) => (true, k.trim()),
                None => (false, whole),
            };
            let at = key
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=col.payments.len()).contains(n))
                .map(|n| &col.payments[n - 1]);
            // A receipt number as typed (compared by its key); a number
            // freed by a rejection or a void and recorded again names the
            // confirmed payment first.
            let wanted = crm::sales::payment::receipt_number_key(whole);
            let holding: Vec<_> = col
                .payments
                .iter()
                .filter(|p| {
                    p.id.to_string() == whole
                        || p.receipt_no
                            .as_deref()
                            .is_some_and(|r| crm::sales::payment::receipt_number_key(r) == wanted)
                })
                .collect();
            let by_receipt = holding
                .iter()
                .find(|p| p.status == "confirmed")
                .or_else(|| holding.last())
                .copied();
            let picked = match (forced, at, by_receipt) {
                (_, Some(a), Some(r)) if a.id != r.id => {
                    return Err(format!(
                        "payment {whole} of contract {} is ambiguous (有歧义): payment #{key} in \
                         `contract show` is {} of {}, while receipt number {whole} is {} of {}; \
                         give {} for the position, or the payment's id (`contract show --json`)",
                        c.code,
                        a.amount,
                        a.received_on,
                        r.amount,
                        r.received_on,
                        if forced {
                            "the position without #".to_string()
                        } else {
                            format!("#{key}")
                        }
                    ));
                }
                (true, at, _) => at,
                (false, Some(a), _) => Some(a),
                (false, None, r) => r,
            };
            let Some(p) = picked else {
                return Err(if col.payments.is_empty() {
                    format!("contract {} has no payments yet", c.code)
                } else {
                    format!(
                        "contract {} has no payment {key} (its payments are numbered 1 to {} \
                         in `contract show`, or give the receipt number)",
                        c.code,
                        col.payments.len()
                    )
                });
            };
            let p = ctx
                .crm
                .void_payment(actor, p.id, &reason)
                .await
                .map_err(err)?;
            let c = ctx.crm.contract(actor, c.id).await.map_err(err)?;
            ctx.print(json!({"payment": p, "contract": c}), || {
                format!(
                    "payment {} of {} on {} voided (已作废); received {}, outstanding {}",
                    p.amount, p.received_on, c.code, c.received, c.outstanding
                )
            });
        }
        ContractCmd::VoidInvoice {
            code,
            invoice,
            reason,
        } => {
            let c = find(code).await?;
            let list = ctx.crm.invoices(actor, c.id).await.map_err(err)?;
            let key = invoice.trim();
            // Numbers are compared folded on both sides (one recorded
            // before numbers were kept folded is stored as typed).
            let folded = crm::sales::payment::invoice_number_key(key);
            let Some(i) = list.iter().find(|i| {
                i.number.as_deref().is_some_and(|n| {
                    n == key || crm::sales::payment::invoice_number_key(n) == folded
                }) || i.id.to_string() == key
            }) else {
                let numbers: Vec<&str> = list.iter().filter_map(|i| i.number.as_deref()).collect();
                return Err(if numbers.is_empty() {
                    format!("contract {} has no issued invoice", c.code)
                } else {
                    format!(
                        "contract {} has no invoice {key} (its invoices: {})",
                        c.code,
                        numbers.join(", ")
                    )
                });
            };
            let i = ctx
                .crm
                .void_invoice(actor, i.id, &reason)
                .await
                .map_err(err)?;
            let c = ctx.crm.contract(actor, c.id).await.map_err(err)?;
            ctx.print(json!({"invoice": i, "contract": c}), || {
                format!(
                    "invoice {} of {} on {} voided (已作废); invoiced {} of {}",
                    i.number.as_deref().unwrap_or_default(),
                    i.amount,
                    c.code,
                    c.invoiced,
                    c.amount
                )
            });
        }
        ContractCmd::Invoice {
            code,
            amount,
            r#type,
            number,
            date: when,
        } => {
            let c = find(code).await?;
            let ty = InvoiceType::parse(&r#type)
                .ok_or_else(|| format!("unknown invoice type {}", r#type))?;
            let inv = ctx
                .crm
                .add_invoice(actor, c.id, ty, money(&amount)?, number, opt_date(&when)?)
                .await
                .map_err(err)?;
            ctx.print(json!(inv), || {
                format!(
                    "invoice {} {} {} on {}",
                    inv.kind,
                    inv.invoice_type.name(),
                    inv.amount,
                    c.code
                )
            });
        }
        ContractCmd::Deliver {
            code,
            lines,
            date: when,
            notes,
        } => {
            let c = find(code).await?;
            let mut parsed = Vec::new();
            for l in &lines {
                let (n, q) = l
                    .split_once(':')
                    .ok_or_else(|| format!("line {l}: expected LINE:QTY"))?;
                parsed.push(crm::sales::DeliveryLine {
                    line: narrow(n)
                        .trim()
                        .parse()
                        .map_err(|_| format!("line {l}: {n} is not a line number"))?,
                    quantity: quantity(q).map_err(|why| format!("line {l}: quantity {why}"))?,
                });
            }
            let on = match when {
                Some(d) => date(&d)?,
                None => ctx.crm.today(),
            };
            let progress = ctx
                .crm
                .record_delivery(actor, c.id, on, parsed, notes)
                .await
                .map_err(err)?;
            ctx.table(json!(progress), &PROGRESS_HEADER, progress_rows(&progress));
        }
        ContractCmd::Invoices { code } => {
            let c = find(code).await?;
            let list = ctx.crm.invoices(actor, c.id).await.map_err(err)?;
            ctx.table(
                json!(list),
                &["kind", "type", "amount", "number", "date", "status"],
                list.iter()
                    .map(|i| {
                        vec![
                            match i.kind.as_str() {
                                "plan" => "开票计划".to_string(),
                                "issued" => "已开票".to_string(),
                                other => other.to_string(),
                            },
                            match i.invoice_type {
                                InvoiceType::VatSpecial => "专票",
                                InvoiceType::VatNormal => "普票",
                            }
                            .to_string(),
                            i.amount.to_string(),
                            i.number.clone().unwrap_or_default(),
                            i.invoice_date.map(|d| d.to_string()).unwrap_or_default(),
                            match &i.void_reason {
                                Some(why) if i.is_voided() => {
                                    format!("{}: {why}", i.status_label_zh())
                                }
                                _ => i.status_label_zh().to_string(),
                            },
                        ]
                    })
                    .collect(),
            );
            if !ctx.json {
                out!("invoiced {} of {}", c.invoiced, c.amount);
            }
        }
        ContractCmd::Deliveries { code } => {
            let c = find(code).await?;
            let (deliveries, progress) = ctx.crm.deliveries(actor, c.id).await.map_err(err)?;
            if ctx.json {
                ctx.print(
                    json!({"deliveries": deliveries, "progress": progress}),
                    String::new,
                );
                return Ok(());
            }
            ctx.table(
                json!(null),
                &["date", "lines", "notes"],
                deliveries
                    .iter()
                    .map(|d| {
                        vec![
                            d.delivered_on.to_string(),
                            d.lines
                                .iter()
                                .map(|l| format!("{}×{}", l.line, l.quantity))
                                .collect::<Vec<_>>()
                                .join(", "),
                            d.notes.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            );
            ctx.table(json!(null), &PROGRESS_HEADER, progress_rows(&progress));
        }
        ContractCmd::Finish { code } => {
            let c = find(code).await?;
            let c = ctx
                .crm
                .close_contract(actor, c.id, None)
                .await
                .map_err(err)?;
            ctx.print(json!(c), || {
                format!("contract {} is {}", c.code, c.status.label_zh())
            });
        }
        ContractCmd::Terminate { code, reason } => {
            let c = find(code).await?;
            let c = ctx
                .crm
                .close_contract(actor, c.id, Some(&reason))
                .await
                .map_err(err)?;
            ctx.print(json!(c), || {
                format!("contract {} is {}", c.code, c.status.label_zh())
            });
        }
        ContractCmd::Doc(cmd) => doc_cmd(ctx, actor, Entity::Contract, cmd).await?,
    }
    Ok(())
}

const PROGRESS_HEADER: [&str; 5] = ["line", "product", "ordered", "delivered", "remaining"];

/// A contract's delivery progress, a row per line.
fn progress_rows(progress: &[crm::sales::LineProgress]) -> Vec<Vec<String>> {
    progress
        .iter()
        .map(|p| {
            vec![
                p.line.to_string(),
                p.name.clone(),
                p.ordered.to_string(),
                p.delivered.to_string(),
                p.remaining.to_string(),
            ]
        })
        .collect()
}

/// The rows of a sales document by code: the live opportunity or contract,
/// every version of a quote the actor may read; with `deleted`, those in
/// the recycle bin.
async fn doc_ids(
    ctx: &Ctx,
    actor: &Actor,
    entity: Entity,
    code: &str,
    deleted: bool,
) -> CliResult<Vec<RecordId>> {
    if deleted {
        let q = ListQuery::default()
            .filter(Cond::Eq(
                "code".into(),
                serde_json::Value::String(code.trim().to_string()),
            ))
            .lifecycle(Lifecycle::Deleted)
            .page(crm::query::PageRequest::Offset {
                page: 1,
                per_page: crm::query::MAX_PAGE_SIZE,
            });
        let ids: Vec<RecordId> = ctx
            .crm
            .list_records(actor, entity, &q)
            .await
            .map_err(err)?
            .items
            .into_iter()
            .map(|r| r.id)
            .collect();
        if ids.is_empty() {
            // Live, it is not in the recycle bin; else it is not found, as
            // one the actor may not read is not.
            let live = Box::pin(doc_ids(ctx, actor, entity, code, false)).await;
            return Err(match live {
                Ok(_) => format!("{entity} {} is not in the recycle bin", code.trim()),
                Err(e) => e,
            });
        }
        for id in &ids {
            ctx.name(*id, code);
        }
        return Ok(ids);
    }
    let ids = match entity {
        Entity::Opportunity => vec![RecordId(
            ctx.crm
                .opportunity_by_code(actor, code)
                .await
                .map_err(err)?
                .id,
        )],
        Entity::Contract => vec![RecordId(
            ctx.crm.contract_by_code(actor, code).await.map_err(err)?.id,
        )],
        Entity::Quote => {
            let q = ctx.crm.quote_by_code(actor, code).await.map_err(err)?;
            // The current version first (versions come oldest first).
            let mut ids: Vec<RecordId> = ctx
                .crm
                .quote_versions(actor, q.id)
                .await
                .map_err(err)?
                .into_iter()
                .map(|v| RecordId(v.id))
                .collect();
            ids.reverse();
            ids
        }
        other => return Err(format!("{other} is not a sales document")),
    };
    for id in &ids {
        ctx.name(*id, code);
    }
    Ok(ids)
}

/// Acts on a document's rows (a quote's versions, current first): the
/// first alone, and the others only when it was done, so that a refusal
/// (another owner, no right) leaves the document as it was; a refusal of
/// any row fails the command, after the report.
async fn on_document<F, Fut>(ctx: &Ctx, verb: &str, ids: &[RecordId], act: F) -> CliResult
where
    F: Fn(Vec<RecordId>) -> Fut,
    Fut: std::future::Future<Output = CliResult<crm::BatchReport>>,
{
    let Some((first, rest)) = ids.split_first() else {
        return Err(format!("nothing to be {verb}"));
    };
    let mut r = act(vec![*first]).await?;
    if !r.done.is_empty() && !rest.is_empty() {
        match act(rest.to_vec()).await {
            Ok(more) => {
                r.done.extend(more.done);
                r.refused.extend(more.refused);
            }
            Err(e) => {
                super::print_report(ctx, verb, &r);
                return Err(format!(
                    "the current version was {verb}, the {} older ones were not: {e}",
                    rest.len()
                ));
            }
        }
    }
    super::print_report(ctx, verb, &r);
    if r.done.is_empty() {
        return super::batch_outcome(verb, &r);
    }
    if !r.refused.is_empty() {
        return Err(format!(
            "{} of {} rows were not {verb}",
            r.refused.len(),
            r.refused.len() + r.done.len()
        ));
    }
    Ok(())
}

/// A value of a document's history as users read it: amounts in 元 (also
/// inside a payment plan or lines), instants in local time.
fn history_cell(ctx: &Ctx, field: &str, v: &serde_json::Value) -> String {
    const MONEY: [&str; 11] = [
        "amount",
        "received",
        "invoiced",
        "pending",
        "weighted",
        "tax",
        "outstanding",
        "gross",
        "discount",
        "net",
        "unit_price",
    ];
    fn yuan(v: &serde_json::Value) -> serde_json::Value {
        match v {
            // A serialised amount: {"minor": …, "currency": "CNY"}.
            serde_json::Value::Object(m)
                if m.contains_key("currency") && m.get("minor").is_some_and(|x| x.is_i64()) =>
            {
                let minor = m.get("minor").and_then(serde_json::Value::as_i64);
                serde_json::Value::String(Money::cny(minor.unwrap_or_default()).to_string())
            }
            serde_json::Value::Object(m) => m
                .iter()
                .map(|(k, x)| {
                    let x = match x.as_i64() {
                        Some(minor) if MONEY.contains(&k.as_str()) => {
                            serde_json::Value::String(Money::cny(minor).to_string())
                        }
                        _ => yuan(x),
                    };
                    (k.clone(), x)
                })
                .collect(),
            serde_json::Value::Array(a) => a.iter().map(yuan).collect(),
            other => other.clone(),
        }
    }
    match v {
        serde_json::Value::Number(n) if MONEY.contains(&field) => n
            .as_i64()
            .map_or_else(|| super::cell(Some(v)), |m| Money::cny(m).to_string()),
        serde_json::Value::String(t) => super::local_text(ctx, t),
        _ => super::cell(Some(&yuan(v))),
    }
}

async fn doc_cmd(ctx: &Ctx, actor: &Actor, entity: Entity, cmd: DocCmd) -> CliResult {
    match cmd {
        DocCmd::Transfer { code, to } => {
            let ids = doc_ids(ctx, actor, entity, &code, false).await?;
            let to = super::resolve_user(ctx, actor, &to).await?;
            on_document(ctx, "transferred", &ids, |ids| async move {
                ctx.crm
                    .transfer_records(actor, entity, &ids, to.id)
                    .await
                    .map_err(err)
            })
            .await?;
        }
        DocCmd::Share {
            code,
            with,
            access,
            until,
        } => {
            let ids = doc_ids(ctx, actor, entity, &code, false).await?;
            let u = super::resolve_user(ctx, actor, &with).await?;
            let access: ShareAccess = access.parse()?;
            // A day alone is through that day, as for customers.
            let until = match until {
                Some(t) => Some(ctx.crm.share_end(&t).map_err(|e| format!("--until: {e}"))?),
                None => None,
            };
            on_document(ctx, "shared", &ids, |ids| async move {
                Ok(ctx
                    .crm
                    .share_records(actor, entity, &ids, u.id, access, until)
                    .await)
            })
            .await?;
        }
        DocCmd::Unshare { code, with } => {
            let ids = doc_ids(ctx, actor, entity, &code, false).await?;
            let u = super::resolve_user(ctx, actor, &with).await?;
            // The current version answers; a quote's older versions follow
            // it (a share made before a revision is on them too).
            let (first, rest) = ids.split_first().ok_or("nothing to unshare")?;
            ctx.crm
                .unshare_record(actor, entity, *first, u.id)
                .await
                .map_err(err)?;
            for id in rest {
                let _ = ctx.crm.unshare_record(actor, entity, *id, u.id).await;
            }
            ctx.print(json!({"ok": true}), || {
                format!("{} no longer shared with {}", code.trim(), u.display_name)
            });
        }
        DocCmd::Shares { code } => {
            let ids = doc_ids(ctx, actor, entity, &code, false).await?;
            let first = *ids.first().ok_or("no such document")?;
            super::print_shares(ctx, actor, entity, first).await?;
        }
        DocCmd::Delete { code } => {
            let ids = doc_ids(ctx, actor, entity, &code, false).await?;
            on_document(ctx, "deleted", &ids, |ids| async move {
                Ok(ctx.crm.delete_records(actor, entity, &ids).await)
            })
            .await?;
        }
        DocCmd::Restore { code } => {
            let ids = doc_ids(ctx, actor, entity, &code, true).await?;
            on_document(ctx, "restored", &ids, |ids| async move {
                Ok(ctx.crm.restore_records(actor, entity, &ids).await)
            })
            .await?;
        }
        DocCmd::Purge { code } => {
            let ids = doc_ids(ctx, actor, entity, &code, true).await?;
            on_document(ctx, "purged", &ids, |ids| async move {
                Ok(ctx.crm.purge_records(actor, entity, &ids).await)
            })
            .await?;
        }
        DocCmd::History { code } => {
            // A document in the recycle bin has its history too.
            let ids = match doc_ids(ctx, actor, entity, &code, false).await {
                Ok(ids) => ids,
                Err(live) => doc_ids(ctx, actor, entity, &code, true)
                    .await
                    .map_err(|_| live)?,
            };
            let mut entries = Vec::new();
            for id in &ids {
                entries.extend(ctx.crm.history(actor, entity, id.0).await.map_err(err)?);
            }
            entries.sort_by_key(|e| e.at);
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = super::users_by_id(&users);
            // The customers the entries name, by code and name, or as
            // hidden to whoever may not read them (never by id).
            let mut customers: std::collections::BTreeMap<String, String> =
                std::collections::BTreeMap::new();
            for c in entries.iter().flat_map(|e| &e.changes) {
                if c.field != "customer_id" {
                    continue;
                }
                for v in [&c.before, &c.after] {
                    let Some(id) = v.as_str().and_then(|t| crm::Uuid::parse_str(t).ok()) else {
                        continue;
                    };
                    if customers.contains_key(&id.to_string()) {
                        continue;
                    }
                    let label = match ctx
                        .crm
                        .get_record(actor, Entity::Customer, crm::ids::RecordId(id))
                        .await
                    {
                        Ok(r) => format!(
                            "{} {}",
                            r.code.clone().unwrap_or_default(),
                            r.text("name").unwrap_or_default()
                        )
                        .trim()
                        .to_string(),
                        Err(_) => crm::export::hidden_record(Entity::Customer),
                    };
                    customers.insert(id.to_string(), label);
                }
            }
            let cell = |field: &str, v: &serde_json::Value| match v.as_str() {
                Some(t) if field == "customer_id" && customers.contains_key(t) => {
                    customers[t].clone()
                }
                _ => history_cell(ctx, field, v),
            };
            let rows = entries
                .iter()
                .map(|e| {
                    vec![
                        super::local_secs(ctx, e.at),
                        name(e.actor_id.map(UserId)),
                        e.action.clone(),
                        e.changes
                            .iter()
                            .map(|c| {
                                format!(
                                    "{}: {} → {}",
                                    c.field,
                                    cell(&c.field, &c.before),
                                    cell(&c.field, &c.after)
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ]
                })
                .collect();
            ctx.table(json!(entries), &["时间", "操作人", "操作", "变更"], rows);
        }
    }
    Ok(())
}

pub(crate) async fn receivables_cmd(ctx: &Ctx, actor: &Actor) -> CliResult {
    let rows = ctx.crm.receivables(actor).await.map_err(err)?;
    let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
    let name = super::users_by_id(&users);
    let mut table = Vec::new();
    let names = customer_names(ctx, actor, rows.iter().map(|r| r.customer_id)).await;
    for r in &rows {
        let customer = names.get(&r.customer_id).cloned().unwrap_or_default();
        table.push(vec![
            customer,
            name(r.owner_id.map(crm::ids::UserId)),
            r.outstanding.to_string(),
            r.current.to_string(),
            r.overdue.to_string(),
            r.aging[0].to_string(),
            r.aging[1].to_string(),
            r.aging[2].to_string(),
            r.aging[3].to_string(),
        ]);
    }
    ctx.table(
        json!(rows),
        &[
            "customer",
            "owner",
            "outstanding",
            "not due",
            "overdue",
            "0–30",
            "31–60",
            "61–90",
            ">90",
        ],
        table,
    );
    Ok(())
}

fn parse_step(spec: &str, roles: &[crm::Role], users: &[crm::org::User]) -> CliResult<StepDef> {
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("step {spec}: expected NAME=RULE[/all][@COND]"))?;
    let (rule, cond) = match rest.split_once('@') {
        Some((r, c)) => (r, Some(c)),
        None => (rest, None),
    };
    let (rule, mode) = match rule.strip_suffix("/all") {
        Some(r) => (r, SignMode::All),
        None => (rule.strip_suffix("/any").unwrap_or(rule), SignMode::Any),
    };
    // Usernames letter case aside (they are unique so), display names as
    // written.
    let user = |k: &str| {
        users
            .iter()
            .find(|u| u.username == k || u.display_name == k)
            .or_else(|| users.iter().find(|u| u.username.eq_ignore_ascii_case(k)))
            .map(|u| u.id.0)
            .ok_or_else(|| format!("step {spec}: no user {k}"))
    };
    let (kind, arg) = rule.split_once(':').unwrap_or((rule, ""));
    let level = |a: &str| {
        a.parse::<u32>()
            .map_err(|_| format!("step {spec}: level {a} is not a number"))
    };
    let approvers = match kind {
        "superior" => ApproverRule::Superior {
            level: level(if arg.is_empty() { "1" } else { arg })?,
        },
        "superiors" => ApproverRule::SuperiorsUpTo {
            levels: level(arg)?,
        },
        "users" => ApproverRule::Users {
            users: arg.split(',').map(user).collect::<CliResult<_>>()?,
        },
        "role" => ApproverRule::Role {
            role_id: roles
                .iter()
                .find(|r| r.name == arg)
                .map(|r| r.id.0)
                .ok_or_else(|| format!("step {spec}: no role {arg}"))?,
        },
        "pick" => ApproverRule::ApplicantPicks,
        other => return Err(format!("step {spec}: unknown rule {other}")),
    };
    let mut conditions = Vec::new();
    if let Some(c) = cond {
        if let Some(a) = c.strip_prefix("amount>=") {
            conditions.push(Condition::AmountAtLeast {
                minor: money(a)?.minor,
            });
        } else if let Some(d) = c.strip_prefix("discount>") {
            conditions.push(Condition::DiscountAbove { bp: percent_bp(d)? });
        } else if let Some(t) = c.strip_prefix("type=") {
            conditions.push(Condition::TypeIn {
                types: t.split(',').map(str::to_string).collect(),
            });
        } else {
            return Err(format!("step {spec}: unknown condition {c}"));
        }
    }
    Ok(StepDef {
        name: name.to_string(),
        conditions,
        approvers,
        mode,
        fallback: Fallback::Admins,
    })
}

/// What a command does with the approval it looks up by document code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ApprovalUse {
    /// Show it: a pending one first, else the latest.
    Show,
    /// Approve or reject it: one pending with the actor.
    Decide,
    /// Withdraw it: a pending one the actor submitted (or of a contract or
    /// quote, which its owner may withdraw).
    Withdraw,
}

/// An approval by id, or by the code of its document: a contract's code
/// finds the contract's approval and its payments' approvals, a quote's
/// code the quote's; and any code the approvals the actor may read with
/// it (`Crm::approvals_with_code`: an approver who may not read the
/// contract still finds a payment's approval by its code, an
/// administrator a leave request's). To decide or withdraw, the one
/// approval waiting for this actor's action is taken; several are refused
/// with their ids.
async fn approval_id(ctx: &Ctx, actor: &Actor, key: &str, using: ApprovalUse) -> CliResult<Uuid> {
    if let Ok(id) = key.parse::<Uuid>() {
        return Ok(id);
    }
    let mut docs: Vec<(&str, Uuid)> = Vec::new();
    if let Ok(c) = ctx.crm.contract_by_code(actor, key).await {
        docs.push(("contract", c.id));
        if let Ok(col) = ctx.crm.collection(actor, c.id).await {
            docs.extend(col.payments.iter().rev().map(|p| ("payment", p.id)));
        }
    }
    if let Ok(q) = ctx.crm.quote_by_code(actor, key).await {
        docs.push(("quote", q.id));
    }
    let mut found: Vec<ApprovalInfo> = Vec::new();
    let mut refused = None;
    for (doc_type, id) in docs {
        match ctx.crm.approval_of(actor, doc_type, id).await {
            Ok(Some(a)) => found.push(a),
            Ok(None) => {}
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    // Every approval of a document with this code the actor may read: an
    // administrator finds a leave request by its code as its applicant
    // and approvers do. (A quote's approval names its version: `BJ-… v2`.)
    for a in ctx.crm.approvals_with_code(actor, key).await.map_err(err)? {
        if !found.iter().any(|f| f.id == a.id) {
            found.push(a);
        }
    }
    let me = actor.user_id.0;
    let fits = |a: &&ApprovalInfo| match using {
        ApprovalUse::Show => a.status == Status::Pending,
        ApprovalUse::Decide => a.status == Status::Pending && a.pending_with.contains(&me),
        // The owner of a contract or quote may withdraw its approval too,
        // and a payment's with its contract (the engine checks who owns it).
        ApprovalUse::Withdraw => {
            a.status == Status::Pending
                && (a.applicant_id == me
                    || matches!(a.doc_type.as_str(), "contract" | "quote" | "payment"))
        }
    };
    let fitting: Vec<&ApprovalInfo> = found.iter().filter(fits).collect();
    match (using, fitting.as_slice()) {
        (_, [one]) => return Ok(one.id),
        // A contract's approval before its payments' (they share its
        // code); two documents of one type sharing the code (approvals
        // made before a code named one document) are told apart by id
        // below.
        (ApprovalUse::Show, [first, rest @ ..])
            if rest.iter().all(|a| a.doc_type != first.doc_type) =>
        {
            return Ok(first.id);
        }
        (_, [_, _, ..]) => {
            let ids: Vec<String> = fitting
                .iter()
                .map(|a| format!("{} {}", a.doc_type, a.id))
                .collect();
            let what = match using {
                ApprovalUse::Withdraw => "pending approvals you may withdraw",
                ApprovalUse::Show => "pending approvals",
                _ => "approvals waiting for you",
            };
            return Err(format!(
                "{key} has {} {what} ({}): give the id (有多个审批，请指定审批编号)",
                fitting.len(),
                ids.join(", ")
            ));
        }
        _ => {}
    }
    // Nothing waits for this actor: a pending one, else the latest (ids
    // are time-ordered), so that the engine says why it may not act on it.
    if let Some(a) = found
        .iter()
        .find(|a| a.status == Status::Pending)
        .or_else(|| found.iter().max_by_key(|a| a.id))
    {
        return Ok(a.id);
    }
    if let Some(e) = refused {
        return Err(err(e));
    }
    Err(format!("no approval for {key}"))
}

/// The command-line way to submit a sales document, for the refusal of
/// `approval submit`.
fn sales_submit_command(doc_type: &str) -> Option<&'static str> {
    match doc_type {
        "contract" => Some("crm contract submit CODE"),
        "quote" => Some("crm quote submit CODE"),
        "payment" => Some("crm contract pay CODE"),
        _ => None,
    }
}

fn approval_rows(list: &[ApprovalInfo]) -> Vec<Vec<String>> {
    list.iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.doc_type.clone(),
                a.document_code.clone().unwrap_or_default(),
                a.title.clone().unwrap_or_default(),
                a.status.label_zh().to_string(),
                a.current_step.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

pub(crate) async fn approval_cmd(ctx: &Ctx, actor: &Actor, cmd: ApprovalCmd) -> CliResult {
    let header = ["id", "type", "document", "title", "status", "step"];
    match cmd {
        ApprovalCmd::Flow {
            doc_type,
            name,
            steps,
            restart_at_rejecting,
        } => {
            let roles = ctx.crm.list_roles(actor).await.map_err(err)?;
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let def = FlowDef {
                steps: steps
                    .iter()
                    .map(|s| parse_step(s, &roles, &users))
                    .collect::<CliResult<_>>()?,
                restart: if restart_at_rejecting {
                    Restart::FromRejectingStep
                } else {
                    Restart::FromFirst
                },
            };
            let f = ctx
                .crm
                .define_approval_flow(actor, &doc_type, &name, def)
                .await
                .map_err(err)?;
            ctx.print(json!(f), || {
                format!(
                    "flow {} for {} version {} with {} steps",
                    f.name,
                    f.doc_type,
                    f.flow_version,
                    f.definition.steps.len()
                )
            });
        }
        ApprovalCmd::Submit {
            doc_type,
            document,
            title,
            amount,
            kind,
            pick,
            comment,
        } => {
            let (document_id, document_code) = match document.parse::<Uuid>() {
                Ok(id) => (id, None),
                Err(_) => {
                    // The same code resubmits the document I submitted before.
                    let mine = ctx.crm.my_approvals(actor).await.map_err(err)?;
                    let id = mine
                        .iter()
                        .find(|a| {
                            a.doc_type == doc_type && a.document_code.as_deref() == Some(&document)
                        })
                        .map_or_else(Uuid::now_v7, |a| a.document_id);
                    (id, Some(document.clone()))
                }
            };
            let mut picked = Vec::new();
            for u in &pick {
                picked.push(super::resolve_user(ctx, actor, u).await?.id.0);
            }
            let req = SubmitRequest {
                doc_type: doc_type.clone(),
                document_id,
                document_code,
                title,
                facts: Facts {
                    amount_minor: amount.as_deref().map(money).transpose()?.map(|m| m.minor),
                    kind,
                    discount_bp: None,
                },
                picked,
                comment,
            };
            let a = match ctx.crm.submit_for_approval(actor, req).await {
                Ok(a) => a,
                Err(e) => {
                    return Err(match sales_submit_command(&doc_type) {
                        Some(cmd) => format!("{e}; from the command line: {cmd}"),
                        None => err(e),
                    });
                }
            };
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = super::users_by_id(&users);
            ctx.print(json!(a), || {
                let waiting: Vec<String> = a
                    .pending_with
                    .iter()
                    .map(|u| name(Some(UserId(*u))))
                    .collect();
                let mut line = format!(
                    "approval {} for {} {}: {}",
                    a.id,
                    a.doc_type,
                    a.document_code
                        .clone()
                        .unwrap_or_else(|| a.document_id.to_string()),
                    a.status.label_zh()
                );
                if let Some(step) = &a.current_step {
                    line.push_str(&format!(" at {step}"));
                }
                if !waiting.is_empty() {
                    line.push_str(&format!(", waiting for {}", waiting.join(", ")));
                }
                line
            });
        }
        ApprovalCmd::Pending => {
            let list = ctx.crm.pending_approvals(actor).await.map_err(err)?;
            ctx.table(json!(list), &header, approval_rows(&list));
        }
        ApprovalCmd::Mine => {
            let list = ctx.crm.my_approvals(actor).await.map_err(err)?;
            ctx.table(json!(list), &header, approval_rows(&list));
        }
        ApprovalCmd::Show { key } => {
            let id = approval_id(ctx, actor, &key, ApprovalUse::Show).await?;
            let a = ctx.crm.approval(actor, id).await.map_err(err)?;
            let actions = ctx.crm.approval_actions(actor, id).await.map_err(err)?;
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = super::users_by_id(&users);
            ctx.print(json!({"approval": a, "actions": actions}), || {
                let mut lines = vec![format!(
                    "{} {} {} — {} {}",
                    a.doc_type,
                    a.document_code.clone().unwrap_or_default(),
                    a.title.clone().unwrap_or_default(),
                    a.status.label_zh(),
                    a.current_step.clone().unwrap_or_default()
                )];
                // The steps of the current round, numbered as `reject
                // --to-step` takes them.
                for (n, s) in a.state.steps.iter().enumerate() {
                    let mark = if n < a.state.current {
                        " (passed)".to_string()
                    } else if n == a.state.current && a.status == Status::Pending {
                        let who: Vec<String> = a
                            .pending_with
                            .iter()
                            .map(|u| name(Some(UserId(*u))))
                            .collect();
                        format!(" (current, waiting for {})", who.join(", "))
                    } else {
                        String::new()
                    };
                    lines.push(format!("  step {} {}{mark}", n + 1, s.name));
                }
                for x in &actions {
                    lines.push(format!(
                        "  {} {} {} {} {}",
                        super::local(ctx, x.at),
                        name(x.actor_id.map(crm::ids::UserId)),
                        x.action,
                        x.step_name.clone().unwrap_or_default(),
                        x.comment.clone().unwrap_or_default()
                    ));
                }
                lines.join("\n")
            });
        }
        ApprovalCmd::Approve { key, comment } => {
            let id = approval_id(ctx, actor, &key, ApprovalUse::Decide).await?;
            let a = ctx
                .crm
                .approve(actor, id, comment.as_deref())
                .await
                .map_err(err)?;
            ctx.print(json!(a), || {
                format!(
                    "{} {}",
                    a.document_code.clone().unwrap_or_default(),
                    a.status.label_zh()
                )
            });
        }
        ApprovalCmd::Reject {
            key,
            to_step,
            comment,
        } => {
            let id = approval_id(ctx, actor, &key, ApprovalUse::Decide).await?;
            let to = match to_step {
                Some(n) if n >= 1 => RejectTo::Step(n - 1),
                Some(_) => return Err("steps count from 1".into()),
                None => RejectTo::Applicant,
            };
            let a = ctx
                .crm
                .reject(actor, id, to, comment.as_deref())
                .await
                .map_err(err)?;
            ctx.print(json!(a), || {
                format!(
                    "{} {}",
                    a.document_code.clone().unwrap_or_default(),
                    a.status.label_zh()
                )
            });
        }
        ApprovalCmd::Withdraw { key } => {
            let id = approval_id(ctx, actor, &key, ApprovalUse::Withdraw).await?;
            let a = ctx.crm.withdraw(actor, id, None).await.map_err(err)?;
            ctx.print(json!(a), || {
                format!(
                    "{} {}",
                    a.document_code.clone().unwrap_or_default(),
                    a.status.label_zh()
                )
            });
        }
        ApprovalCmd::Refresh { key } => {
            let id = approval_id(ctx, actor, &key, ApprovalUse::Show).await?;
            let a = ctx.crm.refresh_approval(actor, id).await.map_err(err)?;
            ctx.print(json!(a), || {
                format!(
                    "{} {}{}",
                    a.document_code.clone().unwrap_or_default(),
                    a.status.label_zh(),
                    a.current_step
                        .as_deref()
                        .map(|s| format!(", at {s}"))
                        .unwrap_or_default()
                )
            });
        }
    }
    Ok(())
}

/// Gives every role that works with customers the same rights on
/// opportunities, quotes and contracts (with its customer scope), hiding
/// products' cost from those that do not manage products, and
/// defines default flows: contracts go to the applicant's superior and, from
/// ¥1,000,000, also to the administrators; quotes with a discount above 10 %
/// go to the superior. Administrators only.
pub(crate) async fn sales_setup(ctx: &Ctx, actor: &Actor) -> CliResult {
    use crm::{Action, Permission};
    // For administrators, whether or not there is anything left to do.
    if !actor.is_admin() {
        return Err(format!(
            "{} may not run sales-setup: it is for administrators (仅管理员可执行)",
            actor.display_name
        ));
    }
    let mut granted = Vec::new();
    let mut kept = Vec::new();
    for role in ctx.crm.list_roles(actor).await.map_err(err)? {
        if role.is_admin {
            continue;
        }
        // A role that holds some sales right was set up already (by an
        // earlier run or by an administrator): running again leaves it as
        // it is, never giving back a right that was taken away.
        if role.permissions.iter().any(|p| {
            matches!(
                p.entity,
                Entity::Opportunity | Entity::Quote | Entity::Contract
            )
        }) {
            kept.push(role.name.clone());
            continue;
        }
        let scope_of = |a: Action| {
            role.permissions
                .iter()
                .find(|p| p.entity == Entity::Customer && p.action == a)
                .map(|p| p.scope)
        };
        let mut permissions: Vec<Permission> = role
            .permissions
            .iter()
            .filter(|p| {
                !matches!(
                    p.entity,
                    Entity::Opportunity | Entity::Quote | Entity::Contract
                )
            })
            .copied()
            .collect();
        let mut any = false;
        for entity in [Entity::Opportunity, Entity::Quote, Entity::Contract] {
            for action in [
                Action::Read,
                Action::Create,
                Action::Update,
                Action::Delete,
                Action::Transfer,
                Action::Share,
                Action::Export,
            ] {
                if let Some(scope) = scope_of(action) {
                    any = true;
                    permissions.push(Permission {
                        entity,
                        action,
                        scope,
                    });
                }
            }
        }
        if !any {
            continue;
        }
        // Products' cost (成本) is the margin behind every quote: a role
        // that sells without managing products does not see it, unless an
        // administrator already said otherwise with a rule of its own.
        let mut field_rules = role.field_rules.clone();
        let manages_products = role.permissions.iter().any(|p| {
            p.entity == Entity::Product && matches!(p.action, Action::Create | Action::Update)
        });
        if !manages_products
            && !field_rules
                .iter()
                .any(|r| r.entity == Entity::Product && r.field == crm::sales::product::COST_FIELD)
        {
            field_rules.push(crm::FieldRule {
                entity: Entity::Product,
                field: crm::sales::product::COST_FIELD.into(),
                access: crm::FieldAccess::Hidden,
            });
        }
        ctx.crm
            .update_role(
                actor,
                role.id,
                role.version,
                crm::org::RoleSpec {
                    name: role.name.clone(),
                    is_admin: false,
                    permissions,
                    field_rules,
                },
            )
            .await
            .map_err(err)?;
        granted.push(role.name.clone());
    }
    let mut flows = Vec::new();
    if ctx
        .crm
        .approval_flow(actor, "contract")
        .await
        .map_err(err)?
        .is_none()
    {
        let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
        let roles = ctx.crm.list_roles(actor).await.map_err(err)?;
        let def = FlowDef {
            steps: vec![
                parse_step("直属上级审批=superior:1", &roles, &users)?,
                parse_step("总经理审批=role:管理员@amount>=1000000", &roles, &users).unwrap_or(
                    StepDef {
                        name: "总经理审批".into(),
                        conditions: vec![Condition::AmountAtLeast { minor: 100_000_000 }],
                        approvers: ApproverRule::Users {
                            users: vec![actor.user_id.0],
                        },
                        mode: SignMode::Any,
                        fallback: Fallback::Admins,
                    },
                ),
            ],
            restart: Restart::FromFirst,
        };
        ctx.crm
            .define_approval_flow(actor, "contract", "合同审批", def)
            .await
            .map_err(err)?;
        flows.push("contract");
    }
    if ctx
        .crm
        .approval_flow(actor, "quote")
        .await
        .map_err(err)?
        .is_none()
    {
        let def = FlowDef {
            steps: vec![StepDef {
                name: "折扣审批".into(),
                conditions: vec![Condition::DiscountAbove { bp: 1000 }],
                approvers: ApproverRule::Superior { level: 1 },
                mode: SignMode::Any,
                fallback: Fallback::Admins,
            }],
            restart: Restart::FromFirst,
        };
        ctx.crm
            .define_approval_flow(actor, "quote", "报价折扣审批", def)
            .await
            .map_err(err)?;
        flows.push("quote");
    }
    ctx.print(
        json!({"roles": granted, "roles_kept": kept, "flows": flows}),
        || {
            format!(
                "sales rights for {}{}; approval flows defined: {}",
                if granted.is_empty() {
                    "no role".to_string()
                } else {
                    granted.join("、")
                },
                if kept.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (left as they are, holding sales rights already: {})",
                        kept.join("、")
                    )
                },
                if flows.is_empty() {
                    "none (already there)".to_string()
                } else {
                    flows.join(", ")
                }
            )
        },
    );
    Ok(())
}
