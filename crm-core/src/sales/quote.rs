//! Quotes (报价): product lines with quantity, unit price, discount and VAT
//! rate, exact totals, versions (a revision is a new row; the old one is
//! superseded), approval when a discount is above the threshold configured
//! in the `quote` flow (a `discount_above` condition), and conversion of an
//! approved quote into a contract.

use super::contract::{Contract, NewContract};
use super::lines::{Line, LineInput, Totals, totals};
use super::{opt_text, req_text};
use crate::approval::{ApprovalInfo, Facts, Status, SubmitRequest};
use crate::auth::{Action, Actor};
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::ids::RecordId;
use crate::money::Money;
use crate::schema::Table;
use crate::store::{
    ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, GuardKind, Lifecycle, Op, Row, Select, Sort,
};
use crate::value::Value;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// Quote statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteStatus {
    /// 草稿.
    Draft,
    /// 审批中.
    PendingApproval,
    /// 已批准: may be sent and turned into a contract.
    Approved,
    /// 已驳回: revise it.
    Rejected,
    /// 已作废: a later version replaced it.
    Superseded,
    /// 已转合同.
    Converted,
}

impl QuoteStatus {
    /// Every status.
    pub const ALL: [QuoteStatus; 6] = [
        QuoteStatus::Draft,
        QuoteStatus::PendingApproval,
        QuoteStatus::Approved,
        QuoteStatus::Rejected,
        QuoteStatus::Superseded,
        QuoteStatus::Converted,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            QuoteStatus::Draft => "draft",
            QuoteStatus::PendingApproval => "pending_approval",
            QuoteStatus::Approved => "approved",
            QuoteStatus::Rejected => "rejected",
            QuoteStatus::Superseded => "superseded",
            QuoteStatus::Converted => "converted",
        }
    }

    /// Parses an API name or Chinese label.
    pub fn parse(s: &str) -> Option<QuoteStatus> {
        QuoteStatus::ALL
            .into_iter()
            .find(|x| x.name() == s.trim() || x.label_zh() == s.trim())
    }

    /// The status in both languages, e.g. `pending approval (审批中)`.
    pub fn label(self) -> String {
        format!("{} ({})", self.label_en(), self.label_zh())
    }

    /// The English label, as messages name the status.
    pub fn label_en(self) -> &'static str {
        match self {
            QuoteStatus::Draft => "a draft",
            QuoteStatus::PendingApproval => "pending approval",
            QuoteStatus::Approved => "approved",
            QuoteStatus::Rejected => "rejected",
            QuoteStatus::Superseded => "superseded by a later version",
            QuoteStatus::Converted => "converted into a contract",
        }
    }

    /// The Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            QuoteStatus::Draft => "草稿",
            QuoteStatus::PendingApproval => "审批中",
            QuoteStatus::Approved => "已批准",
            QuoteStatus::Rejected => "已驳回",
            QuoteStatus::Superseded => "已作废",
            QuoteStatus::Converted => "已转合同",
        }
    }
}

/// A new quote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewQuote {
    /// The title.
    pub title: String,
    /// The customer.
    pub customer_id: Uuid,
    /// The opportunity it prices.
    pub opportunity_id: Option<Uuid>,
    /// The lines (at least one).
    pub lines: Vec<LineInput>,
    /// Valid until (有效期).
    pub valid_until: Option<NaiveDate>,
    /// Notes.
    pub notes: Option<String>,
}

/// A quote version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// The id of this version.
    pub id: Uuid,
    /// The code, shared by all versions.
    pub code: String,
    /// The title.
    pub title: String,
    /// The customer.
    pub customer_id: Uuid,
    /// The owner.
    pub owner_id: Option<Uuid>,
    /// The opportunity.
    pub opportunity_id: Option<Uuid>,
    /// The first version's id.
    pub root_id: Uuid,
    /// The version number, from 1.
    pub quote_version: i64,
    /// The status.
    pub status: QuoteStatus,
    /// Lines.
    pub lines: Vec<Line>,
    /// Totals.
    pub totals: Totals,
    /// The total in Chinese capitals (大写).
    pub amount_capital: String,
    /// Valid until.
    pub valid_until: Option<NaiveDate>,
    /// The contract made from it.
    pub contract_id: Option<Uuid>,
    /// Notes.
    pub notes: Option<String>,
    /// The row version.
    pub version: i64,
}

pub(crate) fn quote_from_row(r: &Row) -> Quote {
    let lines: Vec<Line> = r
        .get("lines")
        .as_json()
        .cloned()
        .and_then(|j| serde_json::from_value(j).ok())
        .unwrap_or_default();
    let m = |c: &str| Money::cny(r.get(c).as_int().unwrap_or(0));
    let amount = m("amount");
    Quote {
        id: r.id(),
        code: r.get("code").as_text().unwrap_or_default().to_string(),
        title: r.get("title").as_text().unwrap_or_default().to_string(),
        customer_id: r.get("customer_id").as_id().unwrap_or_default(),
        owner_id: r.get("owner_id").as_id(),
        opportunity_id: r.get("opportunity_id").as_id(),
        root_id: r.get("root_id").as_id().unwrap_or_default(),
        quote_version: r.get("quote_version").as_int().unwrap_or(1),
        status: r
            .get("status")
            .as_text()
            .and_then(QuoteStatus::parse)
            .unwrap_or(QuoteStatus::Draft),
        totals: Totals {
            gross: m("gross"),
            discount: m("discount"),
            amount,
            tax: m("tax"),
            net: Money::cny(amount.minor - m("tax").minor),
            max_discount_bp: r.get("max_discount_bp").as_int().unwrap_or(0),
        },
        lines,
        amount_capital: amount.to_chinese_capital().unwrap_or_default(),
        valid_until: r.get("valid_until").as_date(),
        contract_id: r.get("contract_id").as_id(),
        notes: r.get("notes").as_text().map(str::to_string),
        version: r.version(),
    }
}

fn quote_status_for(status: Status) -> QuoteStatus {
    match status {
        Status::Pending => QuoteStatus::PendingApproval,
        Status::Approved => QuoteStatus::Approved,
        Status::Rejected => QuoteStatus::Rejected,
        Status::Withdrawn => QuoteStatus::Draft,
    }
}

impl Crm {
    async fn writable_quote(&self, actor: &Actor, id: Uuid) -> Result<Row> {
        let row = self
            .readable_row(actor, Entity::Quote, RecordId(id))
            .await?;
        if !row.get("deleted_at").is_null() {
            return Err(Error::not_found(Entity::Quote, id));
        }
        if !self
            .can_on_row(actor, Entity::Quote, Action::Update, &row)
            .await?
        {
            return Err(Error::Forbidden(format!(
                "{} may not change quote {}",
                actor.display_name,
                row.get("code").as_text().unwrap_or_default()
            )));
        }
        Ok(row)
    }

    /// Creates a draft quote (version 1) for a customer the actor can see,
    /// optionally pricing one of that customer's opportunities the actor
    /// can see. A validity date (`valid_until`) before today is refused.
    pub async fn create_quote(&self, actor: &Actor, input: NewQuote) -> Result<Quote> {
        if !actor.can(Entity::Quote, Action::Create) {
            return Err(Error::Forbidden(format!(
                "{} may not create quotes",
                actor.display_name
            )));
        }
        let title = req_text("title (报价名称)", &input.title, 128)?;
        let customer = self
            .sales_record_customer(actor, input.customer_id, "a quote")
            .await?;
        let mut opportunity_guards = Vec::new();
        if let Some(o) = input.opportunity_id {
            opportunity_guards = self
                .check_document_opportunity(actor, o, input.customer_id, "quote")
                .await?;
        }
        if input.lines.is_empty() {
            return Err(Error::invalid("lines", "a quote needs at least one line"));
        }
        valid_until_ahead(self.today(), input.valid_until)?;
        let lines = self.price_lines(actor, &input.lines, &[]).await?;
        // Checked before a number is taken: a refused quote leaves no gap
        // in the numbering.
        quote_totals(&lines)?;
        let code = self.next_code(actor.company_id, "BJ").await?;
        let id = self.new_id();
        let mut cs = ChangeSet::default();
        cs.guards
            .push(self.customer_live_guard(actor.company_id.0, &customer));
        cs.guards
            .push(self.customer_kept_guard(actor.company_id.0, &customer, "the quote"));
        cs.guards.extend(opportunity_guards);
        self.insert_quote(
            actor,
            &mut cs,
            QuoteRowInput {
                id,
                root_id: id,
                quote_version: 1,
                code,
                title,
                customer_id: input.customer_id,
                opportunity_id: input.opportunity_id,
                lines,
                valid_until: input.valid_until,
                notes: input.notes,
                owner: Value::Id(actor.user_id.0),
                department: actor.department_id.map_or(Value::Null, |d| Value::Id(d.0)),
                custom: json!({}),
            },
        )?;
        self.apply(cs).await?;
        self.quote(actor, id).await
    }

    /// Refuses an opportunity a `document` (a quote, a contract) of
    /// `customer` cannot belong to: one that does not exist in the actor's
    /// company, is deleted, or that the actor may not read (all reported as
    /// no such opportunity), another customer's, or one closed without a
    /// deal (lost or expired). Returns the guards that keep the opportunity
    /// open and live until the document's change set commits
    /// ([`Crm::opportunity_open_guards`]), for that change set to carry.
    pub(crate) async fn check_document_opportunity(
        &self,
        actor: &Actor,
        opportunity: Uuid,
        customer: Uuid,
        document: &str,
    ) -> Result<Vec<Guard>> {
        const FIELD: &str = "opportunity_id (销售机会)";
        let o = match self.opportunity(actor, opportunity).await {
            Ok(o) => o,
            Err(Error::NotFound { .. } | Error::Forbidden(_)) => {
                return Err(Error::invalid(
                    FIELD,
                    format!("no opportunity {opportunity}"),
                ));
            }
            Err(e) => return Err(e),
        };
        if o.customer_id != customer {
            return Err(Error::invalid(
                FIELD,
                format!(
                    "opportunity {} ({}) is another customer's, not the {document}'s",
                    o.code, o.name
                ),
            ));
        }
        // A lost or expired opportunity is closed without a deal: no new
        // quote or contract is made for it (a quote's conversion included)
        // until it is reopened, so that win rates and the forecast keep
        // telling the truth.
        let what = format!("opportunity {} ({})", o.code, o.name);
        let doing = format!("making a {document} for it");
        open_for_documents(o.status, &what, &doing)?;
        let mut guards =
            self.opportunity_open_guards(actor.company_id.0, opportunity, &what, &doing);
        // Nor for one deleted before the write (a delete takes the key too).
        guards.push(self.deleted_meanwhile_guard(
            Table::Opportunities,
            actor.company_id.0,
            &[opportunity],
            vec![opportunity_documents_key(actor.company_id.0, opportunity)],
            format!("{what} was deleted meanwhile; no {document} is made for it"),
        ));
        Ok(guards)
    }

    /// Guards that the opportunity `id` is still open for documents (not
    /// lost, not expired) when a change set making a document for it (a
    /// quote, a version of one, a contract) commits: each refuses it with
    /// the message [`open_for_documents`] gives, `what` naming the
    /// opportunity and `doing` what waits for it to be reopened. They take
    /// [`opportunity_documents_key`], which marking the opportunity lost or
    /// expired takes too ([`Crm::opportunity_closing_lock`]), so the two
    /// writes are serialised and the later document sees the status.
    pub(crate) fn opportunity_open_guards(
        &self,
        company: Uuid,
        id: Uuid,
        what: &str,
        doing: &str,
    ) -> Vec<Guard> {
        use super::pipeline::OppStatus;
        [OppStatus::Lost, OppStatus::Expired]
            .into_iter()
            .map(|status| {
                let mut select = Select::all(Table::Opportunities, company, self.now());
                select.lifecycle = Lifecycle::Any;
                select.filter = Filter::And(vec![
                    Filter::Cmp(Col::Column("id"), CmpOp::Eq, Value::Id(id)),
                    Filter::Cmp(
                        Col::Column("status"),
                        CmpOp::Eq,
                        Value::Text(status.name().into()),
                    ),
                ]);
                Guard {
                    keys: vec![opportunity_documents_key(company, id)],
                    select,
                    message: closed_message(status, what, doing),
                    kind: GuardKind::State,
                }
            })
            .collect()
    }

    /// The guard a change set closing the opportunity `id` without a deal
    /// (marking it lost or expired), or deleting it, carries for its key
    /// alone: it takes
    /// [`opportunity_documents_key`], so a document made for the
    /// opportunity meanwhile either commits first (and stays, as one made
    /// before the opportunity closed) or waits and is then refused by its
    /// [`Crm::opportunity_open_guards`]. Its select finds no row: closing
    /// an opportunity with documents is allowed, and a change of the
    /// opportunity itself meanwhile is caught by the version it is written
    /// at.
    pub(crate) fn opportunity_closing_lock(&self, company: Uuid, id: Uuid) -> Guard {
        let mut select = Select::all(Table::Opportunities, company, self.now());
        // An empty `Or` matches nothing.
        select.filter = Filter::Or(Vec::new());
        Guard {
            keys: vec![opportunity_documents_key(company, id)],
            select,
            message: format!("opportunity {id} was closed meanwhile"),
            kind: GuardKind::State,
        }
    }

    fn insert_quote(&self, actor: &Actor, cs: &mut ChangeSet, q: QuoteRowInput) -> Result<()> {
        let t = quote_totals(&q.lines)?;
        let now = self.now();
        let company = actor.company_id.0;
        let owner_id = q.owner.to_json();
        let lines_json = serde_json::to_value(&q.lines)
            .map_err(|e| Error::InvalidState(format!("cannot encode lines: {e}")))?;
        cs.ops.push(Op::Insert {
            table: Table::Quotes,
            values: vec![
                ("id", Value::Id(q.id)),
                ("company_id", Value::Id(company)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
                ("owner_id", q.owner),
                ("department_id", q.department),
                ("created_by", Value::Id(actor.user_id.0)),
                ("custom", Value::Json(q.custom)),
                ("code", Value::Text(q.code.clone())),
                (
                    "pinyin_keys",
                    Value::Text(crate::pinyin::search_keys(&q.title)),
                ),
                ("title", Value::Text(q.title.clone())),
                ("customer_id", Value::Id(q.customer_id)),
                (
                    "opportunity_id",
                    q.opportunity_id.map_or(Value::Null, Value::Id),
                ),
                ("root_id", Value::Id(q.root_id)),
                ("quote_version", Value::Int(q.quote_version)),
                ("status", Value::Text(QuoteStatus::Draft.name().into())),
                ("lines", Value::Json(lines_json)),
                ("gross", Value::Int(t.gross.minor)),
                ("discount", Value::Int(t.discount.minor)),
                ("amount", Value::Int(t.amount.minor)),
                ("tax", Value::Int(t.tax.minor)),
                ("max_discount_bp", Value::Int(t.max_discount_bp)),
                (
                    "valid_until",
                    q.valid_until.map_or(Value::Null, Value::Date),
                ),
                ("notes", opt_text(q.notes)),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Quotes,
            q.id,
            "create",
            vec![FieldChange {
                field: "amount".into(),
                before: serde_json::Value::Null,
                after: json!(t.amount.minor),
            }],
        ));
        cs.events.push(self.event(
            company,
            Table::Quotes,
            q.id,
            "quote.created".into(),
            json!({"code": q.code, "quote_version": q.quote_version, "amount": t.amount.minor,
                   "customer_id": q.customer_id, "owner_id": owner_id,
                   "opportunity_id": q.opportunity_id}),
        ));
        Ok(())
    }

    /// A quote version the actor may see (not one in the recycle bin).
    pub async fn quote(&self, actor: &Actor, id: Uuid) -> Result<Quote> {
        let row = self
            .readable_row(actor, Entity::Quote, RecordId(id))
            .await?;
        if !row.get("deleted_at").is_null() {
            return Err(Error::not_found(Entity::Quote, id));
        }
        Ok(quote_from_row(&row))
    }

    /// The latest version of a quote the actor may see, by code (none while
    /// that version is in the recycle bin: an older version is not the
    /// latest).
    pub async fn quote_by_code(&self, actor: &Actor, code: &str) -> Result<Quote> {
        let mut sel = Select::all(Table::Quotes, actor.company_id.0, self.now());
        sel.lifecycle = crate::store::Lifecycle::Any;
        sel.filter = Filter::Cmp(
            Col::Column("code"),
            CmpOp::Eq,
            Value::Text(crate::validate::record_code(code)),
        );
        sel.sort = vec![Sort {
            col: Col::Column("quote_version"),
            desc: true,
        }];
        let row = self
            .store
            .select(&sel)
            .await?
            .rows
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(Entity::Quote, code.trim()))?;
        // One the actor may not read is not found by the code asked for,
        // exactly as a code nobody has: its id is not told.
        self.quote(actor, row.id())
            .await
            .map_err(|e| e.not_found_as(Entity::Quote, code.trim()))
    }

    /// The current quote versions the actor may read, optionally one
    /// customer's and matching a search text (code, title or pinyin
    /// initials); the select of [`Crm::list_quotes`] without its sort and
    /// paging.
    pub(crate) fn quote_select(
        &self,
        actor: &Actor,
        customer: Option<Uuid>,
        search: Option<&str>,
    ) -> Select {
        let mut filters = vec![Filter::Not(Box::new(Filter::Cmp(
            Col::Column("status"),
            CmpOp::Eq,
            Value::Text(QuoteStatus::Superseded.name().into()),
        )))];
        if let Some(c) = customer {
            filters.push(Filter::Cmp(
                Col::Column("customer_id"),
                CmpOp::Eq,
                Value::Id(c),
            ));
        }
        filters.extend(super::search_filter(search, "title"));
        let mut sel = Select::all(Table::Quotes, actor.company_id.0, self.now());
        sel.scope = actor.store_scope(Entity::Quote, Action::Read).unwrap_or(
            crate::store::Scope::Restricted {
                owners: Vec::new(),
                departments: Vec::new(),
                shared_with: Some(actor.user_id.0),
            },
        );
        sel.filter = Filter::And(filters);
        sel
    }

    /// The quotes the actor may see, newest first: the current version of
    /// each (superseded versions are left out), optionally one customer's.
    pub async fn list_quotes(
        &self,
        actor: &Actor,
        customer: Option<Uuid>,
        page: u64,
        per_page: u64,
    ) -> Result<crate::query::Page<Quote>> {
        let per_page = if per_page == 0 {
            10
        } else {
            per_page.min(1000)
        };
        let mut sel = self.quote_select(actor, customer, None);
        sel.sort = vec![Sort {
            col: Col::Column("created_at"),
            desc: true,
        }];
        sel.paging = crate::store::Paging::Offset {
            offset: (page.max(1) - 1).saturating_mul(per_page),
            limit: per_page,
        };
        sel.with_total = true;
        let got = self.store.select(&sel).await?;
        Ok(crate::query::Page {
            items: got.rows.iter().map(quote_from_row).collect(),
            total: got.total,
            has_more: got.has_more,
            next_cursor: None,
        })
    }

    /// The versions of a quote the actor may read, oldest first. A version
    /// the actor may not read (owned by someone else after a revision, or
    /// not shared with the actor) is left out.
    pub async fn quote_versions(&self, actor: &Actor, id: Uuid) -> Result<Vec<Quote>> {
        let q = self.quote(actor, id).await?;
        let mut sel = Select::all(Table::Quotes, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(Col::Column("root_id"), CmpOp::Eq, Value::Id(q.root_id));
        sel.sort = vec![Sort {
            col: Col::Column("quote_version"),
            desc: false,
        }];
        let mut out = Vec::new();
        for row in self.store.select(&sel).await?.rows {
            if self
                .can_on_row(actor, Entity::Quote, Action::Read, &row)
                .await?
            {
                out.push(quote_from_row(&row));
            }
        }
        Ok(out)
    }

    /// Revises a quote: a new version with new lines; the old one is
    /// superseded. Quotes pending approval or converted cannot be revised.
    /// The new version keeps the old validity date unless `valid_until`
    /// gives one; either way it may not have passed already. A product
    /// discontinued (停售) since stays on the lines that held it (on as
    /// many lines as before); a line adding it is refused.
    pub async fn revise_quote(
        &self,
        actor: &Actor,
        id: Uuid,
        lines: Vec<LineInput>,
        valid_until: Option<NaiveDate>,
    ) -> Result<Quote> {
        let row = self.writable_quote(actor, id).await?;
        let old = quote_from_row(&row);
        if !matches!(
            old.status,
            QuoteStatus::Draft | QuoteStatus::Approved | QuoteStatus::Rejected
        ) {
            return Err(self.quote_refused(actor, &old, QuoteAct::Revise).await);
        }
        if lines.is_empty() {
            return Err(Error::invalid("lines", "a quote needs at least one line"));
        }
        // A new version holds until a day still ahead: a new date given, or
        // the old one while it has not passed.
        valid_until_ahead(self.today(), valid_until)?;
        if valid_until.is_none()
            && let Some(d) = old.valid_until
            && d < self.today()
        {
            return Err(Error::invalid(
                "valid_until (有效期至)",
                format!(
                    "quote {} v{} was valid until {d}, which has passed (today is {}); \
                     set a new date for the new version",
                    old.code,
                    old.quote_version,
                    self.today()
                ),
            ));
        }
        // A new version is a new quote for its opportunity: not for a lost
        // or expired one (read as it is, whoever may read it: the reviser
        // may hold a share of the quote alone), nor for one closed so while
        // the version is written.
        // Nor for one in the recycle bin: the new version would hang on an
        // opportunity no list shows (restore it first).
        let mut opportunity_guards = Vec::new();
        if let Some(o) = old.opportunity_id
            && let Some(orow) = self
                .store
                .get(Table::Opportunities, o)
                .await?
                .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
        {
            let what = format!("quote {}'s opportunity", old.code);
            if !orow.get("deleted_at").is_null() {
                return Err(Error::InvalidState(format!(
                    "{what} is in the recycle bin (回收站): restore it before revising the quote"
                )));
            }
            if let Some(status) = orow
                .get("status")
                .as_text()
                .and_then(super::pipeline::OppStatus::parse)
            {
                open_for_documents(status, &what, "revising the quote")?;
            }
            opportunity_guards =
                self.opportunity_open_guards(actor.company_id.0, o, &what, "revising the quote");
            opportunity_guards.push(self.deleted_meanwhile_guard(
                Table::Opportunities,
                actor.company_id.0,
                &[o],
                vec![opportunity_documents_key(actor.company_id.0, o)],
                format!("{what} was deleted meanwhile; the quote was not revised"),
            ));
        }
        // The lines of the version revised keep their products, discontinued
        // ones too; a discontinued product is not added.
        let priced = self.price_lines(actor, &lines, &old.lines).await?;
        // A new version is a new live quote: not for a customer in the
        // recycle bin (or merged away), and guarded so inside the write.
        let customer = self
            .document_customer_guard(
                actor,
                &format!("quote {}", old.code),
                "revising the quote",
                old.customer_id,
            )
            .await?;
        let new_id = self.new_id();
        let mut cs = ChangeSet::default();
        cs.guards.push(customer);
        cs.guards.extend(opportunity_guards);
        cs.ops.push(Op::Update {
            table: Table::Quotes,
            id,
            expected_version: row.version(),
            values: vec![
                ("status", Value::Text(QuoteStatus::Superseded.name().into())),
                ("updated_at", Value::Timestamp(self.now())),
            ],
        });
        self.insert_quote(
            actor,
            &mut cs,
            QuoteRowInput {
                id: new_id,
                root_id: old.root_id,
                quote_version: old.quote_version + 1,
                code: old.code.clone(),
                title: old.title.clone(),
                customer_id: old.customer_id,
                opportunity_id: old.opportunity_id,
                lines: priced,
                valid_until: valid_until.or(old.valid_until),
                notes: old.notes.clone(),
                // A version stays its quote's: the owner's and department's
                // as they were (whoever revises it — a manager, a colleague
                // with a write share — is its creator), with its custom
                // fields.
                owner: row.get("owner_id").clone(),
                department: row.get("department_id").clone(),
                custom: row
                    .get("custom")
                    .as_json()
                    .cloned()
                    .unwrap_or_else(|| json!({})),
            },
        )?;
        // Whoever the quote was shared with keeps it: its live shares hold
        // for the new version too (the colleague with a write share who
        // revises it among them).
        let now = self.now();
        let mut shares = Select::all(Table::Shares, actor.company_id.0, now);
        shares.filter = Filter::And(vec![
            Filter::Cmp(
                Col::Column("entity"),
                CmpOp::Eq,
                Value::Text(Table::Quotes.name().into()),
            ),
            Filter::Cmp(Col::Column("record_id"), CmpOp::Eq, Value::Id(id)),
        ]);
        for sh in self.store.select(&shares).await?.rows {
            if sh
                .get("expires_at")
                .as_timestamp()
                .is_some_and(|e| e <= now)
            {
                continue;
            }
            // At the version read: a share ended meanwhile makes the
            // revision conflict rather than live on in the new version.
            cs.ops.push(Op::Update {
                table: Table::Shares,
                id: sh.id(),
                expected_version: sh.version(),
                values: vec![("updated_at", Value::Timestamp(now))],
            });
            cs.ops.push(Op::Insert {
                table: Table::Shares,
                values: [
                    self.new_row(actor.company_id.0, self.new_id()),
                    vec![
                        ("entity", Value::Text(Table::Quotes.name().into())),
                        ("record_id", Value::Id(new_id)),
                        ("user_id", sh.get("user_id").clone()),
                        ("access", sh.get("access").clone()),
                        ("expires_at", sh.get("expires_at").clone()),
                        ("granted_by", sh.get("granted_by").clone()),
                    ],
                ]
                .concat(),
            });
        }
        self.apply(cs).await?;
        self.quote(actor, new_id).await
    }

    /// Submits a draft quote. With a `quote` flow its conditions decide
    /// (e.g. `discount_above`); a flow whose steps all drop approves at once,
    /// and so does the absence of a flow. A draft whose validity date has
    /// passed is refused: it is revised with a new date first.
    pub async fn submit_quote(
        &self,
        actor: &Actor,
        id: Uuid,
        comment: Option<&str>,
    ) -> Result<(Quote, Option<ApprovalInfo>)> {
        let row = self.writable_quote(actor, id).await?;
        let q = quote_from_row(&row);
        if q.status != QuoteStatus::Draft && q.status != QuoteStatus::Rejected {
            return Err(self.quote_refused(actor, &q, QuoteAct::Submit).await);
        }
        if q.status == QuoteStatus::Rejected {
            return Err(Error::InvalidState(format!(
                "quote {} v{} was rejected; revise it first",
                q.code, q.quote_version
            )));
        }
        // A draft may sit past its validity date: it is not approved so.
        if let Some(d) = q.valid_until
            && d < self.today()
        {
            return Err(Error::InvalidState(format!(
                "quote {} v{}: valid until {d} has passed (today is {}); set a new date \
                 (revise the quote) before submitting it",
                q.code,
                q.quote_version,
                self.today()
            )));
        }
        let customer = self
            .document_customer_guard(
                actor,
                &format!("quote {} v{}", q.code, q.quote_version),
                "submitting",
                q.customer_id,
            )
            .await?;
        if self.approval_flow(actor, "quote").await?.is_none() {
            let mut cs = ChangeSet::default();
            self.set_quote_status(actor, &row, QuoteStatus::Approved, &mut cs);
            cs.guards.push(customer);
            self.apply(cs).await?;
            return Ok((self.quote(actor, id).await?, None));
        }
        let t = self
            .document_submission(
                actor,
                &SubmitRequest {
                    doc_type: "quote".into(),
                    document_id: id,
                    document_code: Some(format!("{} v{}", q.code, q.quote_version)),
                    title: Some(q.title.clone()),
                    facts: Facts {
                        amount_minor: Some(q.totals.amount.minor),
                        kind: None,
                        discount_bp: Some(q.totals.max_discount_bp),
                    },
                    picked: Vec::new(),
                    comment: comment.map(str::to_string),
                },
            )
            .await?;
        let mut changes = t.changes;
        // The approval routes on the quote as read here (see
        // `submit_contract`).
        super::pin_read_version(&mut changes, Table::Quotes, id, row.version());
        changes.guards.push(customer);
        self.apply(changes).await?;
        Ok((self.quote(actor, id).await?, Some(t.info)))
    }

    fn set_quote_status(&self, actor: &Actor, row: &Row, status: QuoteStatus, cs: &mut ChangeSet) {
        self.set_document_status(actor, Table::Quotes, row, status.name(), cs);
    }

    /// Applies an approval's outcome to its quote (same change set).
    pub(crate) async fn quote_approval_effect(
        &self,
        actor: &Actor,
        info: &ApprovalInfo,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        let Some(row) = self
            .approval_document_row(actor, Table::Quotes, info)
            .await?
        else {
            return Ok(());
        };
        let q = quote_from_row(&row);
        let status = quote_status_for(info.status);
        if q.status == status {
            return Ok(());
        }
        // An approval moves a quote only while it is in the approval's
        // hands: a draft being submitted, or a quote pending approval.
        let applies = match status {
            QuoteStatus::PendingApproval | QuoteStatus::Approved => {
                matches!(q.status, QuoteStatus::Draft | QuoteStatus::PendingApproval)
            }
            QuoteStatus::Rejected | QuoteStatus::Draft => q.status == QuoteStatus::PendingApproval,
            QuoteStatus::Superseded | QuoteStatus::Converted => false,
        };
        // Whatever approves it (a decision, or a step passing when its
        // approvers left), a quote past its validity date is not approved.
        if applies && status == QuoteStatus::Approved && q.status == QuoteStatus::PendingApproval {
            self.quote_not_expired(&row, "approved")?;
        }
        if !applies {
            if status == QuoteStatus::Approved {
                return Err(Error::InvalidState(format!(
                    "quote {} v{} is {}; its approval cannot approve it",
                    q.code,
                    q.quote_version,
                    q.status.label()
                )));
            }
            return Ok(());
        }
        self.set_quote_status(actor, &row, status, cs);
        Ok(())
    }

    pub(crate) fn mark_quote_converted(
        &self,
        actor: &Actor,
        row: &Row,
        contract: Uuid,
        cs: &mut ChangeSet,
    ) {
        cs.ops.push(Op::Update {
            table: Table::Quotes,
            id: row.id(),
            expected_version: row.version(),
            values: vec![
                ("status", Value::Text(QuoteStatus::Converted.name().into())),
                ("contract_id", Value::Id(contract)),
                ("updated_at", Value::Timestamp(self.now())),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Quotes,
            row.id(),
            "convert",
            vec![FieldChange {
                field: "contract_id".into(),
                before: serde_json::Value::Null,
                after: json!(contract),
            }],
        ));
    }

    /// Turns an approved quote into a draft contract with the same lines
    /// and totals (products discontinued since the quote was priced
    /// included: the lines are the approved ones, not priced again); the
    /// quote becomes converted, in the same change set. A quote past its
    /// validity date (`valid_until`, the last day it holds) is refused: it
    /// is revised first.
    pub async fn quote_to_contract(
        &self,
        actor: &Actor,
        id: Uuid,
        details: NewContract,
    ) -> Result<Contract> {
        let row = self.writable_quote(actor, id).await?;
        let q = quote_from_row(&row);
        if q.status != QuoteStatus::Approved {
            return Err(self.quote_refused(actor, &q, QuoteAct::Convert).await);
        }
        if let Some(d) = q.valid_until
            && d < self.today()
        {
            return Err(Error::InvalidState(format!(
                "quote {} v{} was valid until {d}; an expired quote does not become a \
                 contract: revise it first (with a new validity date)",
                q.code, q.quote_version
            )));
        }
        // The customer may have left the actor's reach since the quote was
        // made (transferred, released to a pool): said so, without its id.
        match self
            .readable_row(
                actor,
                crate::entity::Entity::Customer,
                crate::ids::RecordId(q.customer_id),
            )
            .await
        {
            Ok(_) => {}
            Err(Error::NotFound { .. } | Error::Forbidden(_)) => {
                return Err(Error::Forbidden(format!(
                    "quote {} v{} is for a customer {} no longer sees (该客户已不在你的可见范围): \
                     a contract is made by someone who sees the customer",
                    q.code, q.quote_version, actor.display_name
                )));
            }
            Err(e) => return Err(e),
        }
        let input = NewContract {
            title: if details.title.trim().is_empty() {
                q.title.clone()
            } else {
                details.title.clone()
            },
            customer_id: q.customer_id,
            opportunity_id: details.opportunity_id.or(q.opportunity_id),
            lines: Vec::new(),
            amount: None,
            ..details
        };
        self.create_contract_from(actor, input, Some((row, q.lines)))
            .await
    }
}

impl Crm {
    /// Refuses `act` for a quote in a status that does not allow it: the
    /// message names the quote, its status in both languages (a converted
    /// quote the contract it became, where the actor may read it) and what
    /// to do instead.
    async fn quote_refused(&self, actor: &Actor, q: &Quote, act: QuoteAct) -> Error {
        let state = match (q.status, q.contract_id) {
            (QuoteStatus::Converted, Some(c)) => match self.contract(actor, c).await {
                Ok(c) => format!("converted into contract {} (已转合同)", c.code),
                Err(_) => format!("{} (已转合同)", q.status.label_en()),
            },
            (s, _) => s.label(),
        };
        let hint = quote_refusal_hint(act, q.status);
        Error::InvalidState(format!(
            "quote {} v{} is {state}{}{hint}",
            q.code,
            q.quote_version,
            if hint.is_empty() { "" } else { "; " }
        ))
    }

    /// Refuses to let a quote past its validity date (`valid_until`, the
    /// last day it holds) be `done` (e.g. approved): it is rejected or
    /// withdrawn, and revised with a new date.
    pub(crate) fn quote_not_expired(&self, row: &Row, done: &str) -> Result<()> {
        let q = quote_from_row(row);
        match q.valid_until {
            Some(d) if d < self.today() => Err(Error::InvalidState(format!(
                "quote {} v{} was valid until {d} (today is {}); an expired quote is not \
                 {done}: reject it (驳回) or withdraw it, and revise it with a new validity date",
                q.code,
                q.quote_version,
                self.today()
            ))),
            _ => Ok(()),
        }
    }
}

/// The totals of a quote's priced lines, refused unless positive: what a
/// quote offers becomes a contract, whose amount is positive.
fn quote_totals(lines: &[Line]) -> Result<Totals> {
    let t = totals(lines).map_err(|m| Error::invalid("lines", m))?;
    if t.amount.minor <= 0 {
        return Err(Error::invalid(
            "lines",
            format!(
                "the lines add up to {}; a quote's total must be positive, as the contract \
                 it becomes (报价总额须大于零)",
                t.amount
            ),
        ));
    }
    Ok(t)
}

/// What is done to a quote that its status may refuse.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuoteAct {
    Revise,
    Submit,
    Convert,
}

/// Why `act` is refused for a quote in `status`, and what to do instead.
fn quote_refusal_hint(act: QuoteAct, status: QuoteStatus) -> &'static str {
    use QuoteStatus as S;
    match (act, status) {
        (QuoteAct::Revise, S::PendingApproval) => {
            "it is not revised while its approval runs: withdraw the approval first \
             (撤回审批), then revise it"
        }
        (QuoteAct::Revise, S::Converted) => {
            "a converted quote is not revised: change the contract while it is a draft, \
             or make a new quote"
        }
        (QuoteAct::Submit, S::PendingApproval) => {
            "it is submitted already: wait for the decision, or withdraw the approval \
             (撤回审批) to change it"
        }
        (QuoteAct::Submit, S::Approved) => "it is approved already; only drafts are submitted",
        (QuoteAct::Submit, S::Converted) => "only drafts are submitted",
        (QuoteAct::Convert, S::Draft) => {
            "only an approved quote becomes a contract: submit it for approval first"
        }
        (QuoteAct::Convert, S::PendingApproval) => {
            "only an approved quote becomes a contract: wait for its approval"
        }
        (QuoteAct::Convert, S::Rejected) => {
            "only an approved quote becomes a contract: revise it and submit it again"
        }
        (QuoteAct::Convert, S::Converted) => "a quote becomes one contract only",
        (_, S::Superseded) => "use its latest version",
        _ => "",
    }
}

/// Refuses a validity date (`valid_until`, the last day a quote holds)
/// before `today`, the company's local date: a quote made or revised so
/// would be expired from the start.
fn valid_until_ahead(today: NaiveDate, valid_until: Option<NaiveDate>) -> Result<()> {
    if let Some(d) = valid_until
        && d < today
    {
        return Err(Error::invalid(
            "valid_until (有效期至)",
            format!("valid until {d} has passed (today is {today}); set a new date ({d} 早于今天)"),
        ));
    }
    Ok(())
}

impl Crm {
    /// Refuses submitting a document (`doing` says what) made for the
    /// opportunity `id` once it was closed without a deal (lost or
    /// expired): a contract going into execution on a lost opportunity
    /// would be a won deal counted as lost. Returns the guards that keep it
    /// open until the submission commits.
    pub(crate) async fn opportunity_still_open(
        &self,
        actor: &Actor,
        id: Uuid,
        doing: &str,
    ) -> Result<Vec<Guard>> {
        let Some(row) = self.store.get(Table::Opportunities, id).await? else {
            return Ok(Vec::new());
        };
        if !row.get("deleted_at").is_null() {
            return Ok(Vec::new());
        }
        let status = row
            .get("status")
            .as_text()
            .and_then(super::pipeline::OppStatus::parse)
            .unwrap_or(super::pipeline::OppStatus::Tracking);
        let what = format!(
            "opportunity {} ({})",
            row.get("code").as_text().unwrap_or_default(),
            row.get("name").as_text().unwrap_or_default()
        );
        open_for_documents(status, &what, doing)?;
        Ok(self.opportunity_open_guards(actor.company_id.0, id, &what, doing))
    }
}

/// Refuses a new document for an opportunity closed without a deal (lost
/// or expired): `what` names it, `doing` what waits for it to be reopened.
fn open_for_documents(status: super::pipeline::OppStatus, what: &str, doing: &str) -> Result<()> {
    use super::pipeline::OppStatus;
    if matches!(status, OppStatus::Lost | OppStatus::Expired) {
        return Err(Error::InvalidState(closed_message(status, what, doing)));
    }
    Ok(())
}

/// What refusing a document for an opportunity closed without a deal says
/// (see [`open_for_documents`]).
fn closed_message(status: super::pipeline::OppStatus, what: &str, doing: &str) -> String {
    format!(
        "{what} is {} ({}): reopen it before {doing} (销售机会已{}，请先重新打开)",
        status.label_en(),
        status.label_zh(),
        status.label_zh()
    )
}

/// The lock key of the documents made for an opportunity: a change set
/// making a quote (or a version of one) or a contract for it takes it
/// ([`Crm::opportunity_open_guards`]), and so does one marking it lost or
/// expired ([`Crm::opportunity_closing_lock`]).
pub(crate) fn opportunity_documents_key(company: Uuid, opportunity: Uuid) -> String {
    format!("{company}:opportunity_documents:{opportunity}")
}

struct QuoteRowInput {
    id: Uuid,
    root_id: Uuid,
    quote_version: i64,
    code: String,
    title: String,
    customer_id: Uuid,
    opportunity_id: Option<Uuid>,
    lines: Vec<Line>,
    valid_until: Option<NaiveDate>,
    notes: Option<String>,
    /// The owner and department of the version.
    owner: Value,
    department: Value,
    /// Its custom fields' values.
    custom: serde_json::Value,
}
