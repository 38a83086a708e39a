//! Sales opportunities (销售机会): owned records (scopes, sharing, transfer
//! and the recycle bin work as for customers, through `lifecycle`), moved
//! through a pipeline by the [`pipeline`](super::pipeline) stage machine,
//! with product lines, competitors, stage history and a weighted forecast.

use super::pipeline::{OppState, OppStatus, PipelineDef, StageCommand, StageVisit};
use super::{opt_text, req_text};
use crate::auth::{Action, Actor};
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::{Error, Result, ValidationErrors};
use crate::ids::RecordId;
use crate::money::{Currency, Money, Rounding};
use crate::query::Page;
use crate::schema::Table;
use crate::store::{
    ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, Op, Paging, Row, Select, Sort,
};
use crate::value::Value;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A product line of an opportunity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OppLine {
    /// The catalogue product, if any.
    pub product_id: Option<Uuid>,
    /// The product's name.
    pub name: String,
    /// The quantity (whole units).
    pub quantity: i64,
    /// The expected unit price.
    pub unit_price: Money,
}

/// A competitor on an opportunity (竞争对手).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Competitor {
    /// The competitor.
    pub name: String,
    /// Their offer, if known.
    pub offer: Option<Money>,
    /// Their strengths and weaknesses.
    pub notes: Option<String>,
    /// Our counter-plan (应对方案).
    pub counter_plan: Option<String>,
}

/// A new opportunity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewOpportunity {
    /// The name, e.g. `华为数据中心扩容`.
    pub name: String,
    /// The customer.
    pub customer_id: Uuid,
    /// The expected amount; the sum of the product lines when absent.
    pub amount: Option<Money>,
    /// The expected close date.
    pub expected_close: Option<NaiveDate>,
    /// The source (来源).
    pub source: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Product lines.
    pub products: Vec<OppLine>,
    /// Competitors.
    pub competitors: Vec<Competitor>,
}

/// Changes to an opportunity; `None` keeps a value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpportunityPatch {
    /// The name.
    pub name: Option<String>,
    /// The expected amount.
    pub amount: Option<Money>,
    /// The expected close date.
    pub expected_close: Option<NaiveDate>,
    /// Clears the expected close date (refused together with a new one,
    /// and where the opportunity's stage requires it).
    #[serde(default)]
    pub clear_expected_close: bool,
    /// The source.
    pub source: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Product lines (replace all; the amount follows unless given).
    pub products: Option<Vec<OppLine>>,
    /// Competitors (replace all).
    pub competitors: Option<Vec<Competitor>>,
}

/// An opportunity as the actor sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opportunity {
    /// The id.
    pub id: Uuid,
    /// The code, e.g. `JH-20261127-0001`.
    pub code: String,
    /// The name.
    pub name: String,
    /// The customer.
    pub customer_id: Uuid,
    /// The owner.
    pub owner_id: Option<Uuid>,
    /// The owner's department.
    pub department_id: Option<Uuid>,
    /// The pipeline (none = the standard one).
    pub pipeline_id: Option<Uuid>,
    /// The current stage key.
    pub stage: String,
    /// The current stage's name.
    pub stage_name: String,
    /// The status.
    pub status: OppStatus,
    /// The win probability in percent.
    pub probability: u8,
    /// The expected amount.
    pub amount: Money,
    /// amount × probability, rounded half up to the fen.
    pub weighted: Money,
    /// The expected close date.
    pub expected_close: Option<NaiveDate>,
    /// Why it was lost.
    pub lost_reason: Option<String>,
    /// The source.
    pub source: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Product lines.
    pub products: Vec<OppLine>,
    /// Competitors.
    pub competitors: Vec<Competitor>,
    /// Stage history.
    pub history: Vec<StageVisit>,
    /// Seconds spent per stage, up to now.
    pub time_per_stage: Vec<(String, i64)>,
    /// The row version.
    pub version: i64,
}

/// An opportunity search.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpportunityQuery {
    /// Only this status.
    pub status: Option<OppStatus>,
    /// Only this stage key.
    pub stage: Option<String>,
    /// Only this customer's.
    pub customer_id: Option<Uuid>,
    /// Code, name or pinyin initials.
    pub search: Option<String>,
    /// The page, from 1.
    pub page: u64,
    /// Items per page (default 10).
    pub per_page: u64,
}

/// One group of the weighted forecast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastRow {
    /// The owner.
    pub owner_id: Option<Uuid>,
    /// The department.
    pub department_id: Option<Uuid>,
    /// The expected close month, `YYYY-MM` (`-` when unknown).
    pub month: String,
    /// How many open opportunities.
    pub count: u64,
    /// Their expected amounts.
    pub amount: Money,
    /// Their weighted amounts (sum of each opportunity's weighted amount).
    pub weighted: Money,
}

/// The fields of an opportunity that no longer change once it is closed
/// (won, lost or expired): what the deal was worth and what it sold.
pub const FROZEN_WHEN_CLOSED: [&str; 3] = ["amount", "products", "expected_close"];

fn weighted(amount: Money, probability: u8) -> Money {
    amount
        .apply_rate(i64::from(probability) * 100, Rounding::HalfUp)
        .unwrap_or(amount)
}

/// The sum of the product lines (unit price × quantity), the amount of an
/// opportunity given none. Like a quote's lines, each line and the lines
/// together are at most [`MAX_SALES_AMOUNT_MINOR`](super::MAX_SALES_AMOUNT_MINOR)
/// (refused by [`check_lines`] before this is reached, in the same words).
fn lines_total(lines: &[OppLine]) -> Result<Money> {
    let total = lines
        .iter()
        .map(|l| i128::from(l.unit_price.minor) * i128::from(l.quantity))
        .sum::<i128>();
    if let Some(problem) = super::lines_total_problem(total) {
        return Err(Error::invalid("products", problem));
    }
    i64::try_from(total)
        .map(Money::cny)
        .map_err(|_| Error::invalid("products", "the lines add up to less than nothing"))
}

/// The most characters an opportunity's name (as a contract's title), its
/// source and its notes may hold.
const NAME_MAX: usize = 128;
const SOURCE_MAX: usize = 64;
const NOTES_MAX: usize = 2000;

/// Refuses an opportunity's name, source or notes longer than they may be
/// (an export cell, a list column take them whole).
fn text_lengths(
    errors: &mut ValidationErrors,
    name: Option<&str>,
    source: Option<&str>,
    notes: Option<&str>,
) {
    for (field, text, max) in [
        ("name (机会名称)", name, NAME_MAX),
        ("source (来源)", source, SOURCE_MAX),
        ("notes (备注)", notes, NOTES_MAX),
    ] {
        if text.is_some_and(|t| t.trim().chars().count() > max) {
            errors.push(field, format!("is longer than {max} characters"));
        }
    }
}

fn check_lines(errors: &mut ValidationErrors, lines: &[OppLine], competitors: &[Competitor]) {
    let before = errors.0.len();
    for (i, l) in lines.iter().enumerate() {
        if l.quantity <= 0 {
            errors.push(
                format!("products[{}].quantity", i + 1),
                format!("{} is not positive", l.quantity),
            );
        }
        if l.unit_price.is_negative() {
            errors.push(
                format!("products[{}].unit_price", i + 1),
                format!("{} is negative", l.unit_price),
            );
        }
        if l.unit_price.currency != Currency::CNY {
            errors.push(
                format!("products[{}].unit_price", i + 1),
                format!("{} is not in 元 (CNY)", l.unit_price),
            );
        }
        if l.name.trim().is_empty() {
            errors.push(format!("products[{}].name", i + 1), "is required");
        } else if l.name.trim().chars().count() > NAME_MAX {
            errors.push(
                format!("products[{}].name", i + 1),
                format!("is longer than {NAME_MAX} characters"),
            );
        }
        // A line is a sales amount too, as a quote's line is.
        if l.quantity > 0 && !l.unit_price.is_negative() && l.unit_price.currency == Currency::CNY {
            let problem = match l.unit_price.checked_mul(l.quantity) {
                Ok(gross) => super::cny_problem(&gross),
                Err(e) => Some(e.to_string()),
            };
            if let Some(problem) = problem {
                errors.push(
                    format!("products[{}].quantity", i + 1),
                    format!("{} × {}: {problem}", l.quantity, l.unit_price),
                );
            }
        }
    }
    // Nor do the lines together (a line refused above is counted too: it
    // is over the limit already).
    let total = lines
        .iter()
        .filter(|l| l.quantity > 0 && !l.unit_price.is_negative())
        .map(|l| i128::from(l.unit_price.minor) * i128::from(l.quantity))
        .sum::<i128>();
    if errors.0.len() == before
        && let Some(problem) = super::lines_total_problem(total)
    {
        errors.push("products", problem);
    }
    for (i, c) in competitors.iter().enumerate() {
        if c.name.trim().is_empty() {
            errors.push(format!("competitors[{}].name", i + 1), "is required");
        }
        if let Some(o) = c.offer {
            if o.is_negative() {
                errors.push(
                    format!("competitors[{}].offer", i + 1),
                    format!("{o} is negative"),
                );
            }
            if o.currency != Currency::CNY {
                errors.push(
                    format!("competitors[{}].offer", i + 1),
                    format!("{o} is not in 元 (CNY)"),
                );
            }
        }
    }
}

fn json_of<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::InvalidState(format!("cannot encode: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned + Default>(v: &Value) -> T {
    v.as_json()
        .cloned()
        .and_then(|j| serde_json::from_value(j).ok())
        .unwrap_or_default()
}

fn state_of(row: &Row) -> OppState {
    OppState {
        stage: row.get("stage").as_text().unwrap_or_default().to_string(),
        status: row
            .get("status")
            .as_text()
            .and_then(OppStatus::parse)
            .unwrap_or(OppStatus::Tracking),
        history: from_json(row.get("stage_history")),
        lost_reason: row.get("lost_reason").as_text().map(str::to_string),
    }
}

fn filled(row: &Row, field: &str) -> bool {
    match field {
        "amount" => row.get("amount").as_int().is_some_and(|a| a > 0),
        "products" | "competitors" => row
            .get(field)
            .as_json()
            .and_then(|j| j.as_array())
            .is_some_and(|a| !a.is_empty()),
        other => !row.get(other).is_null(),
    }
}

/// Whether an opportunity row is open by its status (tracking or on hold),
/// as [`Crm::open_opportunities`] counts it (when it is also active: not in
/// the recycle bin, not archived).
pub(crate) fn is_open(row: &Row) -> bool {
    row.get("status")
        .as_text()
        .and_then(OppStatus::parse)
        .is_some_and(|s| matches!(s, OppStatus::Tracking | OppStatus::OnHold))
}

impl Crm {
    /// How many open (tracking or on hold) opportunities a customer has,
    /// not counting `except` (active ones only: those in the recycle bin or
    /// archived do not count).
    pub(crate) async fn open_opportunities(
        &self,
        actor: &Actor,
        customer: Uuid,
        except: Option<Uuid>,
    ) -> Result<i64> {
        let mut sel = Select::all(Table::Opportunities, actor.company_id.0, self.now());
        sel.filter = Filter::And(vec![
            Filter::Cmp(Col::Column("customer_id"), CmpOp::Eq, Value::Id(customer)),
            Filter::In(
                Col::Column("status"),
                vec![
                    Value::Text(OppStatus::Tracking.name().into()),
                    Value::Text(OppStatus::OnHold.name().into()),
                ],
            ),
        ]);
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .filter(|r| Some(r.id()) != except)
            .count() as i64)
    }

    /// Defines the pipeline of the company (no department) or of one
    /// department; it replaces the previous one for new opportunities.
    pub async fn define_pipeline(
        &self,
        actor: &Actor,
        name: &str,
        department: Option<Uuid>,
        def: PipelineDef,
    ) -> Result<Uuid> {
        if !actor.can(Entity::Opportunity, Action::Manage) {
            return Err(Error::Forbidden(format!(
                "{} may not define sales pipelines",
                actor.display_name
            )));
        }
        let name = req_text("name", name, 64)?;
        def.validate().map_err(|m| Error::invalid("stages", m))?;
        if let Some(d) = department {
            self.live_row(actor, Table::Departments, d).await?;
        }
        let company = actor.company_id.0;
        let now = self.now();
        let mut cs = ChangeSet::default();
        let mut sel = Select::all(Table::Pipelines, company, now);
        sel.filter = Filter::And(vec![
            Filter::Cmp(Col::Column("active"), CmpOp::Eq, Value::Bool(true)),
            match department {
                Some(d) => Filter::Cmp(Col::Column("department_id"), CmpOp::Eq, Value::Id(d)),
                None => Filter::IsNull(Col::Column("department_id")),
            },
        ]);
        let replaced = self.store.select(&sel).await?.rows;
        for r in &replaced {
            cs.ops.push(Op::Update {
                table: Table::Pipelines,
                id: r.id(),
                expected_version: r.version(),
                values: vec![
                    ("active", Value::Bool(false)),
                    ("updated_at", Value::Timestamp(now)),
                ],
            });
        }
        // No other pipeline of the same scope may have become active
        // meanwhile: two definitions, neither seeing the other's, would
        // leave two active pipelines.
        let mut others = sel.clone();
        others.filter = Filter::And(vec![
            sel.filter,
            Filter::not_among(Col::Column("id"), replaced.iter().map(Row::id)),
        ]);
        cs.guards.push(Guard {
            kind: crate::store::GuardKind::State,
            keys: vec![format!("{company}:active_pipelines")],
            select: others,
            message: format!(
                "another pipeline was defined for {} meanwhile; look at it and define yours again",
                if department.is_some() {
                    "the department"
                } else {
                    "the company"
                }
            ),
        });
        let id = self.new_id();
        let def_json = json_of(&def)?;
        cs.ops.push(Op::Insert {
            table: Table::Pipelines,
            values: vec![
                ("id", Value::Id(id)),
                ("company_id", Value::Id(company)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
                ("name", Value::Text(name)),
                ("department_id", department.map_or(Value::Null, Value::Id)),
                ("active", Value::Bool(true)),
                ("definition", Value::Json(def_json.clone())),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Pipelines,
            id,
            "create",
            vec![FieldChange {
                field: "definition".into(),
                before: serde_json::Value::Null,
                after: def_json,
            }],
        ));
        self.apply(cs).await?;
        Ok(id)
    }

    /// The pipeline new opportunities of a department get: the
    /// department's, else the company's, else the standard one.
    pub async fn pipeline_for(
        &self,
        actor: &Actor,
        department: Option<Uuid>,
    ) -> Result<(Option<Uuid>, PipelineDef)> {
        let mut sel = Select::all(Table::Pipelines, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(Col::Column("active"), CmpOp::Eq, Value::Bool(true));
        let rows = self.store.select(&sel).await?.rows;
        let pick = rows
            .iter()
            .find(|r| department.is_some() && r.get("department_id").as_id() == department)
            .or_else(|| rows.iter().find(|r| r.get("department_id").is_null()));
        match pick {
            Some(r) => Ok((Some(r.id()), pipeline_of_row(r)?)),
            None => Ok((None, PipelineDef::standard())),
        }
    }

    pub(crate) async fn pipeline_by_id(&self, id: Option<Uuid>) -> Result<PipelineDef> {
        match id {
            None => Ok(PipelineDef::standard()),
            Some(id) => match self.store.get(Table::Pipelines, id).await? {
                Some(r) => pipeline_of_row(&r),
                None => Ok(PipelineDef::standard()),
            },
        }
    }

    /// Creates an opportunity owned by the actor, for a customer the actor
    /// can see, in the first stage of the actor's department's pipeline.
    pub async fn create_opportunity(
        &self,
        actor: &Actor,
        input: NewOpportunity,
    ) -> Result<Opportunity> {
        let mut input = input;
        input.name = crate::validate::single_line(&input.name);
        if !actor.can(Entity::Opportunity, Action::Create) {
            return Err(Error::Forbidden(format!(
                "{} may not create opportunities",
                actor.display_name
            )));
        }
        let mut errors = ValidationErrors::default();
        if input.name.trim().is_empty() {
            errors.push("name (机会名称)", "is required");
        }
        text_lengths(
            &mut errors,
            Some(&input.name),
            input.source.as_deref(),
            input.notes.as_deref(),
        );
        if input.amount.is_some_and(|a| a.is_negative()) {
            errors.push("amount (预计金额)", "is negative");
        }
        if let Some(problem) = input.amount.as_ref().and_then(super::cny_problem) {
            errors.push("amount (预计金额)", problem);
        }
        check_lines(&mut errors, &input.products, &input.competitors);
        errors.into_result()?;
        self.check_line_products(actor, &input.products, &[])
            .await?;
        // Read before the open opportunities are counted: its version
        // guards the count (see `customer_sales_activity_of`).
        let customer = self
            .sales_record_customer(actor, input.customer_id, "an opportunity")
            .await?;
        let amount = match input.amount {
            Some(a) => a,
            None => lines_total(&input.products)?,
        };
        let department = actor.department_id.map(|d| d.0);
        let (pipeline_id, pipeline) = self.pipeline_for(actor, department).await?;
        let now = self.now();
        let state =
            OppState::start(&pipeline, now).map_err(|e| Error::InvalidState(e.to_string()))?;
        let company = actor.company_id.0;
        let code = self.next_code(actor.company_id, "JH").await?;
        let id = self.new_id();
        let name = input.name.trim().to_string();
        let values = vec![
            ("id", Value::Id(id)),
            ("company_id", Value::Id(company)),
            ("version", Value::Int(1)),
            ("created_at", Value::Timestamp(now)),
            ("updated_at", Value::Timestamp(now)),
            ("owner_id", Value::Id(actor.user_id.0)),
            ("department_id", department.map_or(Value::Null, Value::Id)),
            ("created_by", Value::Id(actor.user_id.0)),
            ("custom", Value::Json(json!({}))),
            ("code", Value::Text(code.clone())),
            (
                "pinyin_keys",
                Value::Text(crate::pinyin::search_keys(&name)),
            ),
            ("name", Value::Text(name.clone())),
            ("customer_id", Value::Id(input.customer_id)),
            ("pipeline_id", pipeline_id.map_or(Value::Null, Value::Id)),
            ("stage", Value::Text(state.stage.clone())),
            ("status", Value::Text(state.status.name().into())),
            (
                "probability",
                Value::Int(i64::from(state.probability(&pipeline))),
            ),
            ("amount", Value::Int(amount.minor)),
            (
                "expected_close",
                input.expected_close.map_or(Value::Null, Value::Date),
            ),
            ("source", opt_text(input.source.clone())),
            ("products", Value::Json(json_of(&input.products)?)),
            ("competitors", Value::Json(json_of(&input.competitors)?)),
            ("stage_history", Value::Json(json_of(&state.history)?)),
            ("stage_entered_at", Value::Timestamp(now)),
            ("notes", opt_text(input.notes.clone())),
        ];
        let mut cs = ChangeSet::default();
        cs.audit.push(
            self.audit(
                Some(actor),
                company,
                Table::Opportunities,
                id,
                "create",
                ["name", "customer_id", "amount", "stage"]
                    .iter()
                    .map(|k| FieldChange {
                        field: (*k).into(),
                        before: serde_json::Value::Null,
                        after: values
                            .iter()
                            .find(|(c, _)| c == k)
                            .map(|(_, v)| v.to_json())
                            .unwrap_or_default(),
                    })
                    .collect(),
            ),
        );
        cs.events.push(self.event(
            company,
            Table::Opportunities,
            id,
            "opportunity.created".into(),
            json!({"code": code, "name": name, "customer_id": input.customer_id, "amount": amount.minor}),
        ));
        cs.ops.push(Op::Insert {
            table: Table::Opportunities,
            values,
        });
        let open = self
            .open_opportunities(actor, input.customer_id, None)
            .await?
            + 1;
        self.customer_sales_activity_of(
            actor,
            &customer,
            crate::pool::SalesActivity {
                opportunity_at: Some(now),
                open_opportunities: Some(open),
                deal_closed_at: None,
                last_opportunity_is: None,
            },
            &mut cs,
        )?;
        self.apply(cs).await?;
        self.opportunity(actor, id).await
    }

    async fn opportunity_of_row(&self, row: &Row) -> Result<Opportunity> {
        let pipeline = self.pipeline_by_id(row.get("pipeline_id").as_id()).await?;
        Ok(self.opportunity_in(row, &pipeline))
    }

    /// An opportunity from its row and its pipeline.
    pub(crate) fn opportunity_in(&self, row: &Row, pipeline: &PipelineDef) -> Opportunity {
        let pipeline_id = row.get("pipeline_id").as_id();
        let state = state_of(row);
        let amount = Money::cny(row.get("amount").as_int().unwrap_or(0));
        let probability = state.probability(pipeline);
        Opportunity {
            id: row.id(),
            code: row.get("code").as_text().unwrap_or_default().to_string(),
            name: row.get("name").as_text().unwrap_or_default().to_string(),
            customer_id: row.get("customer_id").as_id().unwrap_or_default(),
            owner_id: row.get("owner_id").as_id(),
            department_id: row.get("department_id").as_id(),
            pipeline_id,
            stage_name: pipeline
                .stage(&state.stage)
                .map_or_else(|| state.stage.clone(), |s| s.name.clone()),
            stage: state.stage.clone(),
            status: state.status,
            probability,
            amount,
            weighted: weighted(amount, probability),
            expected_close: row.get("expected_close").as_date(),
            lost_reason: state.lost_reason.clone(),
            source: row.get("source").as_text().map(str::to_string),
            notes: row.get("notes").as_text().map(str::to_string),
            products: from_json(row.get("products")),
            competitors: from_json(row.get("competitors")),
            time_per_stage: state.time_per_stage(self.now()),
            history: state.history,
            version: row.version(),
        }
    }

    /// An opportunity the actor may see (own scope, department, share …).
    pub async fn opportunity(&self, actor: &Actor, id: Uuid) -> Result<Opportunity> {
        let row = self
            .readable_row(actor, Entity::Opportunity, RecordId(id))
            .await?;
        if !row.get("deleted_at").is_null() {
            return Err(Error::not_found(Entity::Opportunity, id));
        }
        self.opportunity_of_row(&row).await
    }

    /// An opportunity the actor may see, by code.
    pub async fn opportunity_by_code(&self, actor: &Actor, code: &str) -> Result<Opportunity> {
        let mut sel = Select::all(Table::Opportunities, actor.company_id.0, self.now());
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
            .ok_or_else(|| Error::not_found(Entity::Opportunity, code.trim()))?;
        // One the actor may not read is not found by the code asked for,
        // exactly as a code nobody has: its id is not told.
        self.opportunity(actor, row.id())
            .await
            .map_err(|e| e.not_found_as(Entity::Opportunity, code.trim()))
    }

    /// Checks the catalogue products of an opportunity's lines as a
    /// quote's are checked: a product of the company, not in the recycle
    /// bin, and on sale — a discontinued (停售) product is kept by the
    /// lines that already hold it (`kept`: the opportunity's lines before
    /// an edit), once per line, and added by no new one.
    async fn check_line_products(
        &self,
        actor: &Actor,
        lines: &[OppLine],
        kept: &[OppLine],
    ) -> Result<()> {
        let mut keeps = super::kept_products(kept.iter().filter_map(|l| l.product_id));
        let mut errors = ValidationErrors::default();
        for (i, l) in lines.iter().enumerate() {
            if let Some(pid) = l.product_id
                && let Err(problem) = self.line_product(actor, pid, &mut keeps).await?
            {
                errors.push(format!("products[{}].product_id", i + 1), problem);
            }
        }
        errors.into_result()
    }

    async fn writable_opportunity(&self, actor: &Actor, id: Uuid) -> Result<Row> {
        let row = self
            .readable_row(actor, Entity::Opportunity, RecordId(id))
            .await?;
        if !row.get("deleted_at").is_null() {
            return Err(Error::not_found(Entity::Opportunity, id));
        }
        if !self
            .can_on_row(actor, Entity::Opportunity, Action::Update, &row)
            .await?
        {
            return Err(Error::Forbidden(format!(
                "{} may not edit opportunity {}",
                actor.display_name,
                row.get("code").as_text().unwrap_or_default()
            )));
        }
        Ok(row)
    }

    /// Changes an opportunity's details if it is still at `expected_version`.
    /// A closed (won, lost or expired) opportunity keeps its amount, product
    /// lines and expected close date ([`FROZEN_WHEN_CLOSED`]); its name,
    /// source, notes and competitors may still change.
    pub async fn update_opportunity(
        &self,
        actor: &Actor,
        id: Uuid,
        expected_version: i64,
        patch: OpportunityPatch,
    ) -> Result<Opportunity> {
        let mut patch = patch;
        patch.name = patch.name.map(|n| crate::validate::single_line(&n));
        let row = self.writable_opportunity(actor, id).await?;
        let mut errors = ValidationErrors::default();
        if patch.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            errors.push("name (机会名称)", "is required");
        }
        text_lengths(
            &mut errors,
            patch.name.as_deref(),
            patch.source.as_deref(),
            patch.notes.as_deref(),
        );
        if patch.amount.is_some_and(|a| a.is_negative()) {
            errors.push("amount (预计金额)", "is negative");
        }
        if let Some(problem) = patch.amount.as_ref().and_then(super::cny_problem) {
            errors.push("amount (预计金额)", problem);
        }
        if patch.clear_expected_close && patch.expected_close.is_some() {
            errors.push(
                "expected_close (预计成交日期)",
                "give a new date or clear it, not both",
            );
        }
        check_lines(
            &mut errors,
            patch.products.as_deref().unwrap_or_default(),
            patch.competitors.as_deref().unwrap_or_default(),
        );
        errors.into_result()?;
        if let Some(lines) = &patch.products {
            let before: Vec<OppLine> = from_json(row.get("products"));
            self.check_line_products(actor, lines, &before).await?;
        }
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        if let Some(n) = &patch.name {
            values.push(("name", Value::Text(n.trim().into())));
            values.push((
                "pinyin_keys",
                Value::Text(crate::pinyin::search_keys(n.trim())),
            ));
        }
        if let Some(lines) = &patch.products {
            values.push(("products", Value::Json(json_of(lines)?)));
            if patch.amount.is_none() {
                values.push(("amount", Value::Int(lines_total(lines)?.minor)));
            }
        }
        if let Some(a) = patch.amount {
            values.push(("amount", Value::Int(a.minor)));
        }
        if let Some(c) = &patch.competitors {
            values.push(("competitors", Value::Json(json_of(c)?)));
        }
        if let Some(d) = patch.expected_close {
            values.push(("expected_close", Value::Date(d)));
        }
        if patch.clear_expected_close {
            values.push(("expected_close", Value::Null));
        }
        if let Some(s) = &patch.source {
            values.push(("source", opt_text(Some(s.clone()))));
        }
        if let Some(n) = &patch.notes {
            values.push(("notes", opt_text(Some(n.clone()))));
        }
        let changes: Vec<FieldChange> = values
            .iter()
            .filter(|(k, v)| *k != "pinyin_keys" && row.get(k) != v)
            .map(|(k, v)| FieldChange {
                field: (*k).into(),
                before: row.get(k).to_json(),
                after: v.to_json(),
            })
            .collect();
        let status = state_of(&row).status;
        if matches!(
            status,
            OppStatus::Won | OppStatus::Lost | OppStatus::Expired
        ) {
            let frozen: Vec<&str> = changes
                .iter()
                .map(|c| c.field.as_str())
                .filter(|f| FROZEN_WHEN_CLOSED.contains(f))
                .collect();
            if !frozen.is_empty() {
                return Err(Error::InvalidState(format!(
                    "opportunity {} is {} ({}): its {} can no longer change{}",
                    row.get("code").as_text().unwrap_or_default(),
                    status.label_en(),
                    status.label_zh(),
                    frozen.join(", "),
                    if status == OppStatus::Won {
                        ""
                    } else {
                        "; reopen it first"
                    }
                )));
            }
        }
        if changes.is_empty() {
            return self.opportunity_of_row(&row).await;
        }
        // An open opportunity keeps what its stage required to be entered:
        // an edit does not empty it (a field the stage requires that was
        // empty already, say since the pipeline changed, may stay so).
        if matches!(status, OppStatus::Tracking | OppStatus::OnHold) {
            let pipeline = self.pipeline_by_id(row.get("pipeline_id").as_id()).await?;
            if let Some(stage) = pipeline.stage(&state_of(&row).stage) {
                let mut after = row.clone();
                for (k, v) in &values {
                    after.set(k, v.clone());
                }
                let emptied: Vec<&str> = stage
                    .required
                    .iter()
                    .filter(|f| filled(&row, f) && !filled(&after, f))
                    .map(String::as_str)
                    .collect();
                if let Some(first) = emptied.first() {
                    return Err(Error::invalid(
                        *first,
                        format!(
                            "the stage {} requires {}: it cannot be emptied while the \
                             opportunity is there (当前阶段必填)",
                            stage.name,
                            emptied.join(", ")
                        ),
                    ));
                }
            }
        }
        values.push(("updated_at", Value::Timestamp(self.now())));
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Opportunities,
            id,
            expected_version,
            values,
        });
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Opportunities,
            id,
            "opportunity.updated".into(),
            json!({
                "code": row.get("code").as_text(),
                "fields": changes.iter().map(|c| c.field.clone()).collect::<Vec<_>>(),
            }),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Opportunities,
            id,
            "update",
            changes,
        ));
        self.apply(cs).await?;
        self.opportunity(actor, id).await
    }

    /// Moves an opportunity through its pipeline or changes its status
    /// (won, lost with a reason, on hold, expired, reopened), as who may
    /// edit it; audited. Losing (or expiring) an opportunity is allowed
    /// whatever its quotes are — an approved quote stays approved — but no
    /// new quote, version or contract (a quote's conversion included) is
    /// made for it until it is reopened ([`StageCommand::Reopen`]): back to
    /// tracking in the stage it was closed in, its loss reason cleared.
    pub async fn change_opportunity_stage(
        &self,
        actor: &Actor,
        id: Uuid,
        expected_version: i64,
        command: StageCommand,
    ) -> Result<Opportunity> {
        let row = self.writable_opportunity(actor, id).await?;
        let pipeline = self.pipeline_by_id(row.get("pipeline_id").as_id()).await?;
        let before = state_of(&row);
        let now = self.now();
        let next = before
            .apply(&pipeline, &command, &|f| filled(&row, f), now)
            .map_err(|e| Error::InvalidState(e.to_string()))?;
        let closed = matches!(
            next.status,
            OppStatus::Won | OppStatus::Lost | OppStatus::Expired
        );
        // A deal signed is not lost: a contract of the opportunity awaiting
        // approval, executing or finished keeps it from being lost or
        // expired (forecasts and win rates would count a signed deal as
        // lost). Terminated ones do not count.
        if matches!(next.status, OppStatus::Lost | OppStatus::Expired)
            && before.status != next.status
            && let Some(signed) = self.signed_contracts_of(actor, id).await?
        {
            return Err(Error::InvalidState(format!(
                "opportunity {} has {signed}: a signed deal is won (赢单), not {}; mark it won, \
                 or terminate the contracts first (已签合同的商机不能标记为{})",
                row.get("code").as_text().unwrap_or_default(),
                next.status.name(),
                if next.status == OppStatus::Lost {
                    "输单"
                } else {
                    "过期"
                }
            )));
        }
        let mut values = vec![
            ("stage", Value::Text(next.stage.clone())),
            ("status", Value::Text(next.status.name().into())),
            (
                "probability",
                Value::Int(i64::from(next.probability(&pipeline))),
            ),
            ("stage_history", Value::Json(json_of(&next.history)?)),
            (
                "lost_reason",
                next.lost_reason.clone().map_or(Value::Null, Value::Text),
            ),
            (
                "closed_at",
                if closed {
                    Value::Timestamp(now)
                } else {
                    Value::Null
                },
            ),
            ("updated_at", Value::Timestamp(now)),
        ];
        if next.stage != before.stage {
            values.push(("stage_entered_at", Value::Timestamp(now)));
        }
        let mut changes = Vec::new();
        for (k, b, a) in [
            ("stage", json!(before.stage), json!(next.stage)),
            (
                "status",
                json!(before.status.name()),
                json!(next.status.name()),
            ),
            (
                "lost_reason",
                json!(before.lost_reason),
                json!(next.lost_reason),
            ),
        ] {
            if b != a {
                changes.push(FieldChange {
                    field: k.into(),
                    before: b,
                    after: a,
                });
            }
        }
        let event = match (before.status != next.status, next.status) {
            (true, OppStatus::Won) => "opportunity.won",
            (true, OppStatus::Lost) => "opportunity.lost",
            (true, _) => "opportunity.status_changed",
            (false, _) => "opportunity.stage_changed",
        };
        let mut cs = ChangeSet::default();
        // Closed without a deal, it takes no new quote or contract: one
        // being made for it meanwhile is written first or refused (see
        // `opportunity_closing_lock`).
        if matches!(next.status, OppStatus::Lost | OppStatus::Expired) {
            cs.guards
                .push(self.opportunity_closing_lock(actor.company_id.0, id));
        }
        cs.ops.push(Op::Update {
            table: Table::Opportunities,
            id,
            expected_version,
            values,
        });
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Opportunities,
            id,
            event.into(),
            json!({
                "code": row.get("code").to_json(),
                "from_stage": before.stage,
                "stage": next.stage,
                "status": next.status.name(),
                "amount": row.get("amount").to_json(),
                "customer_id": row.get("customer_id").to_json(),
                "lost_reason": next.lost_reason,
            }),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Opportunities,
            id,
            "stage",
            changes,
        ));
        let was_open = matches!(before.status, OppStatus::Tracking | OppStatus::OnHold);
        if was_open == closed || next.status == OppStatus::Won {
            let customer = row.get("customer_id").as_id().unwrap_or_default();
            // Read before the open opportunities are counted: its version
            // guards the count (see `customer_sales_activity_of`).
            if let Some(customer_row) = self.sales_customer_row(actor, customer).await? {
                let open =
                    self.open_opportunities(actor, customer, Some(id)).await? + i64::from(!closed);
                self.customer_sales_activity_of(
                    actor,
                    &customer_row,
                    crate::pool::SalesActivity {
                        opportunity_at: None,
                        open_opportunities: Some(open),
                        deal_closed_at: (next.status == OppStatus::Won).then_some(now),
                        last_opportunity_is: None,
                    },
                    &mut cs,
                )?;
            }
        }
        self.apply(cs).await?;
        self.opportunity(actor, id).await
    }

    /// The opportunity's live contracts that are awaiting approval,
    /// executing or finished, in words (named by code where the actor may
    /// read them, counted otherwise); `None` when there are none.
    async fn signed_contracts_of(
        &self,
        actor: &Actor,
        opportunity: Uuid,
    ) -> Result<Option<String>> {
        use super::contract::ContractStatus as S;
        let mut sel = Select::all(Table::Contracts, actor.company_id.0, self.now());
        sel.filter = Filter::And(vec![
            Filter::Cmp(
                Col::Column("opportunity_id"),
                CmpOp::Eq,
                Value::Id(opportunity),
            ),
            Filter::In(
                Col::Column("status"),
                [S::PendingApproval, S::Executing, S::Finished]
                    .iter()
                    .map(|s| Value::from(s.name()))
                    .collect(),
            ),
        ]);
        let (mut named, mut unnamed) = (Vec::new(), 0usize);
        for r in self.store.select(&sel).await?.rows {
            if self
                .can_on_row(actor, Entity::Contract, Action::Read, &r)
                .await?
            {
                named.push(format!(
                    "{} ({})",
                    r.get("code").as_text().unwrap_or_default(),
                    S::parse(r.get("status").as_text().unwrap_or_default())
                        .map(|s| s.label_zh())
                        .unwrap_or_default()
                ));
            } else {
                unnamed += 1;
            }
        }
        Ok(match (named.len(), unnamed) {
            (0, 0) => None,
            (_, 0) => Some(format!("contract {}", named.join(", "))),
            (0, n) => Some(format!("{n} contract(s) of other users")),
            (_, n) => Some(format!(
                "contract {} and {n} of other users",
                named.join(", ")
            )),
        })
    }

    pub(crate) fn opportunity_select(&self, actor: &Actor, q: &OpportunityQuery) -> Select {
        let mut filters = Vec::new();
        if let Some(s) = q.status {
            filters.push(Filter::Cmp(
                Col::Column("status"),
                CmpOp::Eq,
                Value::Text(s.name().into()),
            ));
        }
        if let Some(s) = &q.stage {
            filters.push(Filter::Cmp(
                Col::Column("stage"),
                CmpOp::Eq,
                Value::Text(s.clone()),
            ));
        }
        if let Some(c) = q.customer_id {
            filters.push(Filter::Cmp(
                Col::Column("customer_id"),
                CmpOp::Eq,
                Value::Id(c),
            ));
        }
        filters.extend(super::search_filter(q.search.as_deref(), "name"));
        let mut sel = Select::all(Table::Opportunities, actor.company_id.0, self.now());
        sel.scope = actor
            .store_scope(Entity::Opportunity, Action::Read)
            .unwrap_or(crate::store::Scope::Restricted {
                owners: Vec::new(),
                departments: Vec::new(),
                shared_with: Some(actor.user_id.0),
            });
        sel.filter = Filter::And(filters);
        sel
    }

    /// Lists the opportunities the actor may see, newest first.
    pub async fn list_opportunities(
        &self,
        actor: &Actor,
        q: &OpportunityQuery,
    ) -> Result<Page<Opportunity>> {
        let mut sel = self.opportunity_select(actor, q);
        let per_page = if q.per_page == 0 {
            10
        } else {
            q.per_page.min(1000)
        };
        sel.sort = vec![Sort {
            col: Col::Column("created_at"),
            desc: true,
        }];
        sel.paging = Paging::Offset {
            offset: (q.page.max(1) - 1).saturating_mul(per_page),
            limit: per_page,
        };
        sel.with_total = true;
        let got = self.store.select(&sel).await?;
        let mut items = Vec::new();
        for r in &got.rows {
            items.push(self.opportunity_of_row(r).await?);
        }
        Ok(Page {
            items,
            total: got.total,
            has_more: got.has_more,
            next_cursor: None,
        })
    }

    /// The weighted forecast (amount × probability) of the open (tracking)
    /// opportunities the actor may see, by owner, department and expected
    /// close month, optionally only for months from `from` to `to`
    /// (`YYYY-MM`, inclusive). A group's sums are exact: one beyond what
    /// an amount holds (thousands of opportunities at the largest sales
    /// amount in one group) fails the report, naming the group, rather
    /// than show a wrong total.
    pub async fn opportunity_forecast(
        &self,
        actor: &Actor,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ForecastRow>> {
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(Error::invalid(
                "from",
                format!("{f} is after the end of the period, {t}: give the earlier date first"),
            ));
        }
        let mut sel = self.opportunity_select(
            actor,
            &OpportunityQuery {
                status: Some(OppStatus::Tracking),
                ..OpportunityQuery::default()
            },
        );
        let mut extra = Vec::new();
        if let Some(f) = from {
            extra.push(Filter::Cmp(
                Col::Column("expected_close"),
                CmpOp::Ge,
                Value::Date(f),
            ));
        }
        if let Some(t) = to {
            extra.push(Filter::Cmp(
                Col::Column("expected_close"),
                CmpOp::Le,
                Value::Date(t),
            ));
        }
        if !extra.is_empty() {
            extra.push(sel.filter);
            sel.filter = Filter::And(extra);
        }
        let rows = self.store.select(&sel).await?.rows;
        // Each group's sums, exact (see `ExactSum`).
        let mut groups: BTreeMap<
            (String, String, String),
            (ForecastRow, super::ExactSum, super::ExactSum),
        > = BTreeMap::new();
        for r in rows {
            let amount = Money::cny(r.get("amount").as_int().unwrap_or(0));
            let p = r.get("probability").as_int().unwrap_or(0).clamp(0, 100) as u8;
            let owner = r.get("owner_id").as_id();
            let dept = r.get("department_id").as_id();
            let month = r
                .get("expected_close")
                .as_date()
                .map_or_else(|| "-".to_string(), |d| d.format("%Y-%m").to_string());
            let key = (
                owner.map(|o| o.to_string()).unwrap_or_default(),
                dept.map(|o| o.to_string()).unwrap_or_default(),
                month.clone(),
            );
            let (g, sum, weighted_sum) = groups.entry(key).or_insert_with(|| {
                (
                    ForecastRow {
                        owner_id: owner,
                        department_id: dept,
                        month,
                        count: 0,
                        amount: Money::cny(0),
                        weighted: Money::cny(0),
                    },
                    super::ExactSum::default(),
                    super::ExactSum::default(),
                )
            });
            g.count += 1;
            sum.add(amount.minor);
            weighted_sum.add(weighted(amount, p).minor);
        }
        // Exact or refused: a sum is never clamped to the largest amount.
        groups
            .into_values()
            .map(|(mut g, sum, weighted_sum)| {
                let what = |of: &str| format!("the forecast's {of} for {}", g.month);
                g.amount = sum.money(&what("expected amounts"))?;
                g.weighted = weighted_sum.money(&what("weighted amounts"))?;
                Ok(g)
            })
            .collect()
    }
}

fn pipeline_of_row(r: &Row) -> Result<PipelineDef> {
    serde_json::from_value(r.get("definition").as_json().cloned().unwrap_or_default())
        .map_err(|e| Error::InvalidState(format!("pipeline {} is unreadable: {e}", r.id())))
}

/// When the opportunity entered its current stage.
pub fn stage_entered_at(o: &Opportunity) -> Option<DateTime<Utc>> {
    o.history.last().map(|v| v.entered_at)
}
