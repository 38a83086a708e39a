//! Sales: the product catalogue, opportunities with configurable pipelines
//! and a weighted forecast, quotes, contracts and their deliveries, payment
//! collection, invoices and receivables. Amounts are CNY in minor units (分) throughout;
//! rules live in pure functions ([`pipeline`]), the `Crm` methods check
//! permissions, build change sets with audit entries and outbox events, and
//! apply them atomically.

pub mod contract;
pub mod delivery;
pub mod export;
pub mod lines;
pub mod opportunity;
pub mod payment;
pub mod pipeline;
pub mod product;
pub mod quote;

pub use contract::{
    Contract, ContractPatch, ContractQuery, ContractStatus, ContractType, NewContract,
};
pub use delivery::{Delivery, DeliveryLine, LineProgress};
pub use export::{SalesExportCursor, SalesList};
pub use lines::{Line, LineInput, Totals};
pub use opportunity::{
    Competitor, ForecastRow, NewOpportunity, OppLine, Opportunity, OpportunityPatch,
    OpportunityQuery,
};
pub use payment::{
    Collection, Invoice, InvoiceType, Payment, PaymentInput, PlanInput, PlanStatus, ReceivableRow,
    invoice_status_label, payment_status_label,
};
pub use pipeline::{OppState, OppStatus, PipelineDef, StageCommand, StageDef};
pub use product::{Category, Product, ProductInput, ProductQuery, ProductStatus};
pub use quote::{NewQuote, Quote, QuoteStatus};

use crate::approval::{ApprovalInfo, Status};
use crate::auth::Actor;
use crate::crm::Crm;
use crate::error::{Error, Result, ValidationErrors};
use crate::money::Money;
use crate::schema::Table;
use crate::store::{ChangeSet, FieldChange, Op, Row};
use crate::value::Value;
use serde_json::json;

impl Crm {
    /// Sets the `status` of a sales document (quote, contract) in `cs`,
    /// with its audit entry, unless it already has that status.
    pub(crate) fn set_document_status(
        &self,
        actor: &Actor,
        table: Table,
        row: &Row,
        status: &str,
        cs: &mut ChangeSet,
    ) {
        let before = row.get("status").as_text().unwrap_or_default().to_string();
        if before == status {
            return;
        }
        cs.ops.push(Op::Update {
            table,
            id: row.id(),
            expected_version: row.version(),
            values: vec![
                ("status", Value::Text(status.into())),
                ("updated_at", Value::Timestamp(self.now())),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            table,
            row.id(),
            "status",
            vec![FieldChange {
                field: "status".into(),
                before: json!(before),
                after: json!(status),
            }],
        ));
    }

    /// Prices entered lines: catalogue products supply name, unit, price
    /// and tax rate where the line leaves them out, and their list price,
    /// against which a line's effective discount is measured (a typed price
    /// below it counts as discount). A free-text line named as a catalogue
    /// product's name or code (letter case, full-width letters and spacing
    /// aside) is measured against that product's list price alike, so that typing a
    /// product's name instead of its code does not escape the discount
    /// approval. Deleted products and prices not in
    /// CNY are refused. A discontinued (停售) product is kept for old
    /// documents: `kept` holds the products of the lines the document
    /// already has (a quote's previous version, a contract's lines), once
    /// per line, and a new set of lines may hold each of them on as many
    /// lines again; any other line naming a discontinued product is a new
    /// one and is refused. Every line's problem is reported at once.
    pub(crate) async fn price_lines(
        &self,
        actor: &Actor,
        inputs: &[lines::LineInput],
        kept: &[lines::Line],
    ) -> Result<Vec<lines::Line>> {
        let mut errors = ValidationErrors::default();
        let mut out = Vec::new();
        // How many more lines may still hold each product the document
        // already has.
        let mut keeps = kept_products(kept.iter().filter_map(|l| l.product_id));
        // A line's name is a product's name at most (an export cell, a
        // printed document take it whole): longer, nothing else is
        // looked at.
        for (i, input) in inputs.iter().enumerate() {
            if input.name.trim().chars().count() > LINE_NAME_MAX {
                errors.push(
                    format!("lines[{}].name", i + 1),
                    format!("is longer than {LINE_NAME_MAX} characters"),
                );
            }
        }
        errors.clone().into_result()?;
        let namesakes = self.catalogue_namesakes(actor, inputs).await?;
        for (i, input) in inputs.iter().enumerate() {
            let n = i + 1;
            let mut input = input.clone();
            let mut price = input.unit_price;
            let mut rate = input.tax_rate;
            // A free-text line named as a catalogue product is measured
            // against that product's list price.
            let mut list_price = match input.product_id {
                None => namesakes
                    .get(&crate::validate::text_key(&input.name))
                    .copied(),
                Some(_) => None,
            };
            if let Some(problem) = price.as_ref().and_then(cny_problem) {
                errors.push(format!("lines[{n}].unit_price"), problem);
                continue;
            }
            if let Some(pid) = input.product_id {
                match self.line_product(actor, pid, &mut keeps).await? {
                    Ok(p) => {
                        if input.name.trim().is_empty() {
                            input.name = p.name.clone();
                        }
                        if input.unit.is_none() {
                            input.unit = Some(p.unit.clone());
                        }
                        price = price.or(Some(p.list_price));
                        list_price = Some(p.list_price);
                        rate = rate.or(Some(p.tax_rate));
                    }
                    Err(problem) => {
                        errors.push(format!("lines[{n}].product_id"), problem);
                        continue;
                    }
                }
            }
            if input.name.trim().is_empty() {
                errors.push(format!("lines[{n}].name"), "is required");
                continue;
            }
            let Some(price) = price else {
                errors.push(format!("lines[{n}].unit_price"), "is required");
                continue;
            };
            match lines::compute_line(n, &input, price, list_price, rate.unwrap_or(1300)) {
                Ok(l) => match cny_problem(&l.gross) {
                    // The price alone is too much: a product's list price
                    // (stored before prices were capped) the line took.
                    Some(_) if input.unit_price.is_none() && cny_problem(&price).is_some() => {
                        errors.push(
                            format!("lines[{n}].unit_price"),
                            format!(
                                "the product's list price {price} is more than {} (10万亿元), \
                                 the most a sales amount may be; give the line a unit price \
                                 (产品标准价超过销售金额上限，请填写单价)",
                                crate::money::Money::cny(MAX_SALES_AMOUNT_MINOR)
                            ),
                        )
                    }
                    Some(problem) => errors.push(
                        format!("lines[{n}].quantity"),
                        format!("{} × {price}: {problem}", input.quantity),
                    ),
                    None => out.push(l),
                },
                Err((n, f, m)) => errors.push(format!("lines[{n}].{f}"), m),
            }
        }
        // Nor do the lines together.
        if errors.0.is_empty() {
            let total = out.iter().map(|l| i128::from(l.amount.minor)).sum::<i128>();
            if let Some(problem) = lines_total_problem(total) {
                errors.push("lines", problem);
            }
        }
        errors.into_result()?;
        Ok(out)
    }

    /// The list prices of the live catalogue products named as the
    /// free-text lines (no product) of `inputs` are, by name compared
    /// without regard to letter case, full-width letters and spacing (see
    /// [`text_key`](crate::validate::text_key)); the highest list price
    /// where products share a name. A free-text line so named is the
    /// product by another way of entering it: a price below its list price
    /// is a discount, which approval weighs (see
    /// [`lines::effective_discount_bp`]). Discontinued products count too:
    /// their list price is still the reference.
    async fn catalogue_namesakes(
        &self,
        actor: &Actor,
        inputs: &[lines::LineInput],
    ) -> Result<std::collections::HashMap<String, Money>> {
        use crate::store::{Col, Filter, Select};
        let mut out = std::collections::HashMap::new();
        let mut probes = Vec::new();
        for input in inputs.iter().filter(|i| i.product_id.is_none()) {
            let key = crate::validate::text_key(&input.name);
            if key.is_empty() {
                continue;
            }
            // Found by a case-insensitive prefix in either width, and
            // compared by key (up to its first space: the stored name may
            // be spaced otherwise).
            let head = key.split(' ').next().unwrap_or_default();
            for p in product::prefix_spellings(head) {
                if !probes.contains(&p) {
                    probes.push(p);
                }
            }
        }
        if probes.is_empty() {
            return Ok(out);
        }
        // Named as a product's name, or as its code (`=ＳＶ－１` for the
        // product coded SV-1 is that product all the same).
        let mut sel = Select::all(Table::Products, actor.company_id.0, self.now());
        sel.filter = Filter::Or(
            probes
                .into_iter()
                .flat_map(|p| {
                    [
                        Filter::StartsWith(Col::Column("name"), p.clone()),
                        Filter::StartsWith(Col::Column("code"), p),
                    ]
                })
                .collect(),
        );
        let wanted: std::collections::HashSet<String> = inputs
            .iter()
            .filter(|i| i.product_id.is_none())
            .map(|i| crate::validate::text_key(&i.name))
            .collect();
        for row in self.store.select(&sel).await?.rows {
            let list = Money::cny(row.get("list_price").as_int().unwrap_or(0));
            for col in ["name", "code"] {
                let key = crate::validate::text_key(row.get(col).as_text().unwrap_or_default());
                if !wanted.contains(&key) {
                    continue;
                }
                let e = out.entry(key).or_insert(list);
                if list.minor > e.minor {
                    *e = list;
                }
            }
        }
        Ok(out)
    }

    /// The catalogue product `pid` a new set of lines names, or why no line
    /// may name it: it must be the company's and not in the recycle bin,
    /// and on sale — a discontinued (停售) one only on as many lines as
    /// `keeps` (see [`kept_products`]) still holds for it, which this
    /// counts down. Quotes', contracts' and opportunities' lines alike.
    pub(crate) async fn line_product(
        &self,
        actor: &Actor,
        pid: uuid::Uuid,
        keeps: &mut std::collections::HashMap<uuid::Uuid, usize>,
    ) -> Result<std::result::Result<Product, String>> {
        Ok(match self.product(actor, pid).await {
            Ok(p) if p.deleted => Err(format!(
                "product {} is in the recycle bin (回收站); restore it first",
                p.code
            )),
            Ok(p) if p.status == ProductStatus::OnSale => Ok(p),
            Ok(p) => match keeps.get_mut(&pid) {
                // A line the document already had keeps its product.
                Some(left) if *left > 0 => {
                    *left -= 1;
                    Ok(p)
                }
                _ => Err(format!(
                    "product {} ({}) is discontinued (停售): the lines that already hold it \
                     keep it, but no new line adds it",
                    p.code, p.name
                )),
            },
            Err(Error::NotFound { .. }) => {
                Err("no such product (it may have been removed for good); pick another".to_string())
            }
            Err(e) => return Err(e),
        })
    }

    /// Adds to a change set what the customer pools need to know about a
    /// customer's sales (opportunity created, open opportunities, deal
    /// closed): the customer row's update, its event (`customer.deal_closed`
    /// or `customer.sales_activity`, with the changes and new version) and
    /// its audit entry.
    pub(crate) async fn customer_sales_activity(
        &self,
        actor: &Actor,
        customer: uuid::Uuid,
        activity: crate::pool::SalesActivity,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        match self.sales_customer_row(actor, customer).await? {
            Some(row) => self.customer_sales_activity_of(actor, &row, activity, cs),
            None => Ok(()),
        }
    }

    /// The customer a new sales record (opportunity, quote, contract) is
    /// for: one the actor may read (else "no customer", not revealing
    /// whether it exists) — by data scope or through a write share: a read
    /// share is for reading, and a document added through it would change
    /// the owner's customer (its open opportunities, its deal) — and not
    /// in the recycle bin or merged away. A
    /// create that does not update the customer row guards it with
    /// [`customer_live_guard`](Crm::customer_live_guard), under the key a
    /// delete, merge or purge of the customer takes.
    pub(crate) async fn sales_record_customer(
        &self,
        actor: &Actor,
        customer: uuid::Uuid,
        what: &str,
    ) -> Result<Row> {
        let row = self
            .readable_row(
                actor,
                crate::entity::Entity::Customer,
                crate::ids::RecordId(customer),
            )
            .await
            .map_err(|_| Error::invalid("customer_id (客户)", format!("no customer {customer}")))?;
        if !row.get("deleted_at").is_null() {
            let code = row.get("code").as_text().unwrap_or_default();
            return Err(Error::InvalidState(format!(
                "customer {code} is in the recycle bin: restore it before adding {what} to it"
            )));
        }
        if !actor.covers(
            crate::entity::Entity::Customer,
            crate::auth::Action::Read,
            &row,
        ) && !self
            .shared_with(actor, Table::Customers, row.id(), true)
            .await?
        {
            let code = row.get("code").as_text().unwrap_or_default();
            return Err(Error::Forbidden(format!(
                "{} may not add {what} to customer {code}: it is shared with them to read only; \
                 ask its owner for a write share, or to add it",
                actor.display_name
            )));
        }
        Ok(row)
    }

    /// A guard that `customer` still has the owner read when a document
    /// created for it commits: a transfer, claim, release or assignment
    /// meanwhile (each takes the customer's contacts key) would leave the
    /// new document with someone who no longer holds the customer.
    pub(crate) fn customer_kept_guard(
        &self,
        company: uuid::Uuid,
        customer: &Row,
        what: &str,
    ) -> crate::store::Guard {
        let owners =
            std::collections::BTreeMap::from([(customer.id(), customer.get("owner_id").as_id())]);
        self.owners_unchanged_guard(
            company,
            &owners,
            format!(
                "customer {} changed hands meanwhile; {what} was not added: add it again if \
                 the customer is still yours to work on",
                customer.get("code").as_text().unwrap_or_default()
            ),
        )
    }

    /// Refuses `doing` something (submitting, revising a quote, voiding a
    /// payment) with a document (`what`, e.g. `contract HT-…`) of a
    /// customer in the recycle bin, archived, or in a public pool (held by
    /// nobody), and guards the same when the change commits (under the key
    /// its delete, archive, release or merge takes, whose own guards find a
    /// document pending or a contract owed then).
    pub(crate) async fn document_customer_guard(
        &self,
        actor: &Actor,
        what: &str,
        doing: &str,
        customer: uuid::Uuid,
    ) -> Result<crate::store::Guard> {
        let company = actor.company_id.0;
        let row = self
            .sales_customer_row(actor, customer)
            .await?
            .ok_or_else(|| Error::not_found(crate::entity::Entity::Customer, customer))?;
        // (Named by the document: its owner may not read the customer.)
        if !row.get("deleted_at").is_null() {
            return Err(Error::InvalidState(format!(
                "{what}'s customer is in the recycle bin: restore it before {doing}"
            )));
        }
        if !row.get("archived_at").is_null() {
            return Err(Error::InvalidState(format!(
                "{what}'s customer is archived (客户已归档): unarchive it before {doing}"
            )));
        }
        if row.get("owner_id").is_null() {
            return Err(Error::InvalidState(format!(
                "{what}'s customer is in a public pool (公海), held by nobody: claim or assign \
                 it before {doing}"
            )));
        }
        // Checked again as the change commits, under the key deleting,
        // archiving and releasing the customer take (each guards that no
        // document of it awaits approval).
        use crate::store::{Col, Filter};
        let mut select = crate::store::Select::all(Table::Customers, company, self.now());
        select.lifecycle = crate::store::Lifecycle::Any;
        select.filter = Filter::And(vec![
            Filter::Cmp(
                Col::Column("id"),
                crate::store::CmpOp::Eq,
                Value::Id(customer),
            ),
            Filter::Or(vec![
                Filter::NotNull(Col::Column("deleted_at")),
                Filter::NotNull(Col::Column("archived_at")),
                Filter::IsNull(Col::Column("owner_id")),
            ]),
        ]);
        Ok(crate::store::Guard {
            kind: crate::store::GuardKind::State,
            keys: vec![crate::records::customer_contacts_key(company, customer)],
            select,
            message: format!(
                "{what}'s customer was deleted, archived, merged into another or released to a \
                 pool meanwhile"
            ),
        })
    }

    /// The row of a customer whose sales activity is recorded; `None` when
    /// there is no such row, a customer of another company refused as not
    /// found. Read it before counting what the activity reports (open
    /// opportunities), so that its version guards the count: see
    /// [`customer_sales_activity_of`](Crm::customer_sales_activity_of).
    pub(crate) async fn sales_customer_row(
        &self,
        actor: &Actor,
        customer: uuid::Uuid,
    ) -> Result<Option<Row>> {
        match self.store.get(Table::Customers, customer).await? {
            Some(row) if row.get("company_id").as_id() == Some(actor.company_id.0) => Ok(Some(row)),
            Some(_) => Err(Error::not_found(crate::entity::Entity::Customer, customer)),
            None => Ok(None),
        }
    }

    /// [`customer_sales_activity`](Crm::customer_sales_activity) on a
    /// customer row read before the activity was worked out. A count of
    /// open opportunities always updates the row at the version read, even
    /// when the count is unchanged, so that a concurrent change of the
    /// customer's opportunities (which updates the row too) makes one of
    /// the two writes fail as a conflict instead of both writing a count
    /// that misses the other's opportunity.
    pub(crate) fn customer_sales_activity_of(
        &self,
        actor: &Actor,
        row: &Row,
        activity: crate::pool::SalesActivity,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let customer = row.id();
        if cs.ops.iter().any(
            |op| matches!(op, Op::Update { table: Table::Customers, id, .. } if *id == customer),
        ) {
            return Ok(());
        }
        let (ops, changes) = self.sales_activity_ops(Some(actor), row, &activity)?;
        if ops.is_empty() {
            if activity.open_opportunities.is_some() {
                cs.ops.push(Op::Update {
                    table: Table::Customers,
                    id: customer,
                    expected_version: row.version(),
                    values: vec![("updated_at", Value::Timestamp(self.now()))],
                });
            }
            return Ok(());
        }
        cs.ops.extend(ops);
        self.announce_sales_activity(actor, row, changes, cs);
        Ok(())
    }

    /// The row of the sales document an approval in the actor's company
    /// acts on. `None` when there is no such row (yet: a payment's approval
    /// is built before the payment row is written, in the same change set);
    /// a row of another company is refused as not found.
    pub(crate) async fn approval_document_row(
        &self,
        actor: &Actor,
        table: Table,
        info: &ApprovalInfo,
    ) -> Result<Option<Row>> {
        let row = match self.store.get(table, info.document_id).await? {
            Some(row) if row.get("company_id").as_id() == Some(actor.company_id.0) => Some(row),
            Some(_) => return Err(Error::not_found(info.doc_type.as_str(), info.document_id)),
            None => None,
        };
        // Read for an approval's outcome: a document moved to the recycle
        // bin since the decision read it is not approved (or rejected)
        // there; one changed after this read fails the write's version.
        if matches!(info.status, Status::Approved | Status::Rejected) && row.is_some() {
            crate::approval::service::check_document_live(info, row.as_ref())?;
        }
        Ok(row)
    }

    /// Applies an approval's outcome to the sales document it approves, in
    /// the approval's change set (contracts, quotes, payments). The
    /// approval is the actor's company's (it was created or read in that
    /// company), and so must the document and its customer be.
    pub(crate) async fn sales_approval_effects(
        &self,
        actor: &Actor,
        info: &ApprovalInfo,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        match info.doc_type.as_str() {
            "contract" => self.contract_approval_effect(actor, info, cs).await,
            "quote" => self.quote_approval_effect(actor, info, cs).await,
            "payment" => self.payment_approval_effect(actor, info, cs).await,
            _ => Ok(()),
        }
    }
}

/// The document types whose approvals change sales documents, with the
/// operation that submits them.
const SALES_APPROVAL_TYPES: [(&str, &str); 3] = [
    ("contract", "submit_contract"),
    ("quote", "submit_quote"),
    ("payment", "record_payment"),
];

/// For a document type whose approval changes a sales document, the name
/// of the only operation that may submit it (it checks the caller's rights
/// and the document's state and takes the approval facts from the stored
/// document); `None` for other document types.
pub fn approval_submit_operation(doc_type: &str) -> Option<&'static str> {
    SALES_APPROVAL_TYPES
        .iter()
        .find(|(t, _)| *t == doc_type)
        .map(|(_, op)| *op)
}

/// Makes the first update of the row `id` of `table` in `cs` expect
/// `version`, the version its caller read (and took the facts of an
/// approval from): an effect that read the row again later would
/// otherwise write over a change committed in between.
pub(crate) fn pin_read_version(cs: &mut ChangeSet, table: Table, id: uuid::Uuid, version: i64) {
    if let Some(Op::Update {
        expected_version, ..
    }) = cs
        .ops
        .iter_mut()
        .find(|op| matches!(op, Op::Update { table: t, id: i, .. } if *t == table && *i == id))
    {
        *expected_version = version;
    }
}

/// Refuses an amount that is not CNY: sales amounts are stored as 分 of
/// CNY, so another currency's minor units would be read back as 分.
pub(crate) fn require_cny(field: &str, m: &crate::money::Money) -> Result<()> {
    match cny_problem(m) {
        Some(problem) => Err(Error::invalid(field, problem)),
        None => Ok(()),
    }
}

/// The largest sales amount in fen (10万亿元): far above any contract, and
/// low enough that the sums of a company's amounts (receivables, totals,
/// forecasts) stay exact in 64 bits.
pub const MAX_SALES_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// What is wrong with a sales amount: not CNY, or beyond
/// [`MAX_SALES_AMOUNT_MINOR`] either way; `None` when it is fine.
pub(crate) fn cny_problem(m: &crate::money::Money) -> Option<String> {
    if m.currency.code() != "CNY" {
        return Some(format!(
            "{m} is not in CNY (元): sales amounts are kept in 元"
        ));
    }
    (m.minor.unsigned_abs() > MAX_SALES_AMOUNT_MINOR.unsigned_abs()).then(|| {
        if m.minor < 0 {
            format!(
                "{m} is less than {} (10万亿元), the least a sales amount may be",
                crate::money::Money::cny(-MAX_SALES_AMOUNT_MINOR)
            )
        } else {
            format!(
                "{m} is more than {} (10万亿元), the most a sales amount may be",
                crate::money::Money::cny(MAX_SALES_AMOUNT_MINOR)
            )
        }
    })
}

/// Why lines (a quote's, a contract's, an opportunity's products) adding
/// up to `total` fen are refused: more than [`MAX_SALES_AMOUNT_MINOR`], the
/// most a sales amount may be, however the total was reached; `None` when
/// within it. One wording for every document.
pub(crate) fn lines_total_problem(total: i128) -> Option<String> {
    (total > i128::from(MAX_SALES_AMOUNT_MINOR)).then(|| {
        format!(
            "the lines add up to more than {} (10万亿元), the most a sales amount may be",
            crate::money::Money::cny(MAX_SALES_AMOUNT_MINOR)
        )
    })
}

/// An exact sum of amounts for a report (a forecast, the receivables):
/// added in 128 bits, so it never wraps nor clamps, and read back as an
/// amount only when one holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExactSum(i128);

impl ExactSum {
    /// Adds `minor` fen.
    pub(crate) fn add(&mut self, minor: i64) {
        self.0 += i128::from(minor);
    }

    /// The sum as an amount in CNY; an error naming `what` was summed when
    /// it is beyond what an amount holds (over 9万亿亿 fen: thousands of
    /// documents at the largest sales amount).
    pub(crate) fn money(self, what: &str) -> Result<Money> {
        i64::try_from(self.0).map(Money::cny).map_err(|_| {
            Error::InvalidState(format!(
                "{what} add up to {} fen, more than an amount holds ({}); narrow the report \
                 (金额合计超出上限，请缩小范围)",
                self.0,
                Money::cny(i64::MAX)
            ))
        })
    }
}

/// An optional integer column value.
/// The search of a sales list: a text found in the code, the name or title
/// column `named`, or the pinyin initials; `None` for a blank text.
pub(crate) fn search_filter(
    search: Option<&str>,
    named: &'static str,
) -> Option<crate::store::Filter> {
    use crate::store::{Col, Filter};
    let s = search.map(str::trim).filter(|s| !s.is_empty())?;
    // Text in either width, letter case, with or without accents,
    // traditional or simplified, as the records' search finds it.
    let c = |col: &'static str| Filter::TextKeyLike {
        col: Col::Column(col),
        needle: s.to_string(),
        prefix: false,
    };
    let mut any = vec![c("code"), c(named)];
    let py = crate::pinyin::normalise_query(s);
    if !py.is_empty() {
        any.push(Filter::Contains(Col::Column("pinyin_keys"), py));
    }
    Some(Filter::Or(any))
}

pub(crate) fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Int)
}

/// How many lines each product of a document's lines (`held`, once per
/// line) may still be held on by a new set of lines: a discontinued
/// product stays on as many lines as before ([`Crm::line_product`]).
pub(crate) fn kept_products(
    held: impl Iterator<Item = uuid::Uuid>,
) -> std::collections::HashMap<uuid::Uuid, usize> {
    let mut keeps = std::collections::HashMap::new();
    for id in held {
        *keeps.entry(id).or_default() += 1;
    }
    keeps
}

/// The most characters a document line's name may hold (a product's name
/// does).
pub(crate) const LINE_NAME_MAX: usize = 128;

/// An optional text column value; blank text is NULL.
pub(crate) fn opt_text(v: Option<String>) -> Value {
    v.map(|s| s.replace('\0', "").trim().to_string())
        .filter(|s| !s.is_empty())
        .map_or(Value::Null, Value::Text)
}

/// A required, trimmed single-line text (a name, a title) of at most `max`
/// characters, its invisible format characters dropped
/// ([`crate::validate::strip_invisible`]).
pub(crate) fn req_text(field: &str, v: &str, max: usize) -> Result<String> {
    // No stored text holds a NUL (PostgreSQL stores none).
    let v = crate::validate::one_line(&crate::validate::strip_invisible(&v.replace('\0', "")));
    let t = v.trim();
    if t.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if t.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if let Some(problem) = crate::validate::control_problem(t, false) {
        return Err(Error::invalid(field, problem));
    }
    Ok(t.to_string())
}

/// Money as JSON for output: minor units, decimal text and display text.
pub fn money_json(m: Money) -> serde_json::Value {
    serde_json::json!({
        "minor": m.minor,
        "amount": m.to_decimal_string(),
        "display": m.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sums_neither_wrap_nor_clamp() {
        let mut s = ExactSum::default();
        s.add(i64::MAX);
        s.add(-1);
        assert_eq!(s.money("x").expect("fits"), Money::cny(i64::MAX - 1));
        s.add(2);
        match s.money("the forecast's expected amounts for 2027-03") {
            Err(Error::InvalidState(m)) => assert!(
                m.starts_with("the forecast's expected amounts for 2027-03 add up to")
                    && m.contains("more than an amount holds"),
                "{m}"
            ),
            other => panic!("a sum beyond an amount: {other:?}"),
        }
    }

    #[test]
    fn lines_over_the_ceiling_are_named_once_for_every_document() {
        assert_eq!(
            lines_total_problem(i128::from(MAX_SALES_AMOUNT_MINOR)),
            None
        );
        let m = lines_total_problem(i128::from(MAX_SALES_AMOUNT_MINOR) + 1).expect("over");
        assert_eq!(
            m,
            "the lines add up to more than ¥10,000,000,000,000.00 (10万亿元), the most a sales \
             amount may be"
        );
    }
}
