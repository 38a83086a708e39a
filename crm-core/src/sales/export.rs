//! Exports of the sales lists (销售导出): opportunities, quotes and
//! contracts, found as their list operations find them
//! ([`Crm::list_opportunities`], [`Crm::list_quotes`],
//! [`Crm::list_contracts`]), with the columns the user picks.
//!
//! An export holds only what the actor may both read and export (the read
//! scope of the list and the export grant's scope), and names a related
//! customer or opportunity only when the actor may read it, masked as its
//! name rule says; otherwise the cell stays empty. Amounts are money cells
//! in 元, dates are dates, statuses are words of the export's language.
//! Pages are read newest first by keyset (creation time, then id; quotes
//! by their first version, which a revision keeps), so a document created,
//! deleted or revised while an export runs neither repeats nor hides
//! another row.

use crate::auth::{Action, Actor};
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::export::{ExportColumn, ExportValue, export_scope};
use crate::import::ValueKind;
use crate::money::Money;
use crate::sales::contract::{Contract, ContractQuery, contract_from_row};
use crate::sales::opportunity::{Opportunity, OpportunityQuery};
use crate::sales::pipeline::PipelineDef;
use crate::sales::quote::{Quote, quote_from_row};
use crate::store::{Col, Filter, Paging, Row, Select, Sort};
use crate::value::Value;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// Which sales list an export walks.
#[derive(Clone, Debug, PartialEq)]
pub enum SalesList {
    /// Opportunities, as [`Crm::list_opportunities`] finds them (its paging
    /// is not used).
    Opportunities(OpportunityQuery),
    /// The current quote versions, as [`Crm::list_quotes`] finds them,
    /// optionally one customer's and matching a search text (code, title or
    /// pinyin initials).
    Quotes {
        /// Only this customer's.
        customer_id: Option<Uuid>,
        /// Code, title or pinyin initials.
        search: Option<String>,
    },
    /// Contracts, as [`Crm::list_contracts`] finds them (its paging is not
    /// used).
    Contracts(ContractQuery),
}

impl SalesList {
    /// The entity listed.
    pub fn entity(&self) -> Entity {
        match self {
            SalesList::Opportunities(_) => Entity::Opportunity,
            SalesList::Quotes { .. } => Entity::Quote,
            SalesList::Contracts(_) => Entity::Contract,
        }
    }

    /// The list of a sales `entity` that a search text alone finds (every
    /// record the actor may see without one); `None` when `entity` is not
    /// a sales document.
    pub fn searching(entity: Entity, search: Option<String>) -> Option<SalesList> {
        match entity {
            Entity::Opportunity => Some(SalesList::Opportunities(OpportunityQuery {
                search,
                ..OpportunityQuery::default()
            })),
            Entity::Quote => Some(SalesList::Quotes {
                customer_id: None,
                search,
            }),
            Entity::Contract => Some(SalesList::Contracts(ContractQuery {
                search,
                ..ContractQuery::default()
            })),
            _ => None,
        }
    }
}

type ColumnDef = (&'static str, &'static str, &'static str, ValueKind);

const OPPORTUNITY_COLUMNS: &[ColumnDef] = &[
    ("code", "编号", "Code", ValueKind::Text),
    ("name", "机会名称", "Name", ValueKind::Text),
    ("customer_id", "客户", "Customer", ValueKind::Text),
    ("stage", "阶段", "Stage", ValueKind::Text),
    ("status", "状态", "Status", ValueKind::Text),
    (
        "probability",
        "赢率(%)",
        "Probability (%)",
        ValueKind::Number,
    ),
    ("amount", "预计金额", "Amount", ValueKind::Money),
    ("weighted", "加权金额", "Weighted amount", ValueKind::Money),
    (
        "expected_close",
        "预计成交日期",
        "Expected close",
        ValueKind::Date,
    ),
    ("source", "来源", "Source", ValueKind::Text),
    ("lost_reason", "失败原因", "Lost reason", ValueKind::Text),
    ("notes", "备注", "Notes", ValueKind::Text),
    ("owner_id", "负责人", "Owner", ValueKind::Text),
    ("department_id", "所属部门", "Department", ValueKind::Text),
    ("created_at", "创建时间", "Created", ValueKind::DateTime),
    ("updated_at", "更新时间", "Updated", ValueKind::DateTime),
];

const QUOTE_COLUMNS: &[ColumnDef] = &[
    ("code", "报价单号", "Code", ValueKind::Text),
    ("title", "标题", "Title", ValueKind::Text),
    ("customer_id", "客户", "Customer", ValueKind::Text),
    ("opportunity_id", "销售机会", "Opportunity", ValueKind::Text),
    ("quote_version", "版本", "Version", ValueKind::Number),
    ("status", "状态", "Status", ValueKind::Text),
    ("gross", "折前金额", "Gross", ValueKind::Money),
    ("discount", "折扣金额", "Discount", ValueKind::Money),
    ("amount", "报价金额", "Amount", ValueKind::Money),
    ("list_total", "标价合计", "List total", ValueKind::Money),
    ("below_list", "低于标价", "Below list", ValueKind::Money),
    (
        "max_discount",
        "最高折扣率%",
        "Max discount %",
        ValueKind::Number,
    ),
    ("tax", "税额", "Tax", ValueKind::Money),
    ("valid_until", "有效期至", "Valid until", ValueKind::Date),
    ("notes", "备注", "Notes", ValueKind::Text),
    ("owner_id", "负责人", "Owner", ValueKind::Text),
    ("created_at", "创建时间", "Created", ValueKind::DateTime),
    ("updated_at", "更新时间", "Updated", ValueKind::DateTime),
];

const CONTRACT_COLUMNS: &[ColumnDef] = &[
    ("code", "合同编号", "Code", ValueKind::Text),
    ("title", "合同名称", "Title", ValueKind::Text),
    ("customer_id", "客户", "Customer", ValueKind::Text),
    ("contract_type", "合同类型", "Type", ValueKind::Text),
    ("status", "状态", "Status", ValueKind::Text),
    ("amount", "合同金额", "Amount", ValueKind::Money),
    ("tax", "税额", "Tax", ValueKind::Money),
    ("received", "已回款", "Received", ValueKind::Money),
    ("outstanding", "未回款", "Outstanding", ValueKind::Money),
    ("invoiced", "已开票", "Invoiced", ValueKind::Money),
    ("not_invoiced", "未开票", "Not invoiced", ValueKind::Money),
    ("signed_on", "签订日期", "Signed on", ValueKind::Date),
    ("start_on", "开始日期", "Starts on", ValueKind::Date),
    ("end_on", "结束日期", "Ends on", ValueKind::Date),
    (
        "terminated_reason",
        "中止原因",
        "Termination reason",
        ValueKind::Text,
    ),
    ("notes", "备注", "Notes", ValueKind::Text),
    ("owner_id", "负责人", "Owner", ValueKind::Text),
    ("department_id", "所属部门", "Department", ValueKind::Text),
    ("created_at", "创建时间", "Created", ValueKind::DateTime),
    ("updated_at", "更新时间", "Updated", ValueKind::DateTime),
];

fn columns_of(entity: Entity) -> &'static [ColumnDef] {
    match entity {
        Entity::Opportunity => OPPORTUNITY_COLUMNS,
        Entity::Quote => QUOTE_COLUMNS,
        Entity::Contract => CONTRACT_COLUMNS,
        _ => &[],
    }
}

/// What orders an export's pages, newest first: a document's creation
/// time, or for quotes their first version's id (time-ordered), which all
/// versions of a quote share, so that a quote revised while the export
/// runs keeps its place.
fn position_column(entity: Entity) -> &'static str {
    match entity {
        Entity::Quote => "root_id",
        _ => "created_at",
    }
}

fn refuse_export(actor: &Actor, entity: Entity) -> Result<()> {
    if actor.can(entity, Action::Export) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "{} may not export {} records",
        actor.display_name, entity
    )))
}

impl Crm {
    /// The columns of an export of a sales `entity` (opportunities, quotes,
    /// contracts), in the order picked (API names, Chinese or English
    /// headers); none picked means every column. Needs the export
    /// permission.
    pub(crate) fn sales_export_columns(
        &self,
        actor: &Actor,
        entity: Entity,
        picks: &[String],
    ) -> Result<Vec<ExportColumn>> {
        refuse_export(actor, entity)?;
        let column = |(key, zh, en, kind): &ColumnDef| ExportColumn {
            key: key.to_string(),
            header_zh: zh.to_string(),
            header_en: en.to_string(),
            kind: *kind,
        };
        let all = columns_of(entity);
        if picks.is_empty() {
            return Ok(all.iter().map(column).collect());
        }
        picks
            .iter()
            .map(|p| {
                let n = p.trim();
                all.iter()
                    .find(|(key, zh, en, _)| *key == n || *zh == n || en.eq_ignore_ascii_case(n))
                    .map(column)
                    .ok_or_else(|| {
                        let known: Vec<&str> = all.iter().map(|c| c.0).collect();
                        Error::invalid(
                            "fields",
                            format!(
                                "{entity} exports have no column '{n}' (columns: {})",
                                known.join(", ")
                            ),
                        )
                    })
            })
            .collect()
    }

    /// Starts an export of a sales list: the documents `list` finds that
    /// the actor may read and export, newest first, as values of `columns`
    /// (from [`Crm::export_columns`]); statuses and types in English when
    /// `english`, else in Chinese. Pages hold at most `page_size` rows.
    pub async fn sales_export_cursor(
        &self,
        actor: &Actor,
        list: SalesList,
        columns: Vec<ExportColumn>,
        english: bool,
        page_size: u64,
    ) -> Result<SalesExportCursor<'_>> {
        let entity = list.entity();
        refuse_export(actor, entity)?;
        let known = columns_of(entity);
        if let Some(c) = columns.iter().find(|c| !known.iter().any(|k| k.0 == c.key)) {
            return Err(Error::invalid(
                "fields",
                format!("{entity} exports have no column '{}'", c.key),
            ));
        }
        let mut select = match &list {
            SalesList::Opportunities(q) => self.opportunity_select(actor, q),
            SalesList::Quotes {
                customer_id,
                search,
            } => self.quote_select(actor, *customer_id, search.as_deref()),
            SalesList::Contracts(q) => self.contract_select(actor, q),
        };
        select.filter = Filter::And(vec![
            std::mem::replace(&mut select.filter, Filter::And(Vec::new())),
            export_scope(actor, entity, self.now()),
        ]);
        select.sort = vec![Sort {
            col: Col::Column(position_column(entity)),
            desc: true,
        }];
        select.with_total = false;
        let (users, departments) = self.export_labels(actor).await?;
        Ok(SalesExportCursor {
            crm: self,
            actor: actor.clone(),
            entity,
            select,
            columns,
            english,
            users,
            departments,
            pipelines: HashMap::new(),
            after: None,
            page_size: page_size.clamp(1, crate::query::MAX_PAGE_SIZE),
            done: false,
        })
    }
}

/// An export of a sales list in progress (see
/// [`Crm::sales_export_cursor`]): one page in memory at a time.
pub struct SalesExportCursor<'a> {
    crm: &'a Crm,
    actor: Actor,
    entity: Entity,
    select: Select,
    columns: Vec<ExportColumn>,
    english: bool,
    users: HashMap<Uuid, String>,
    departments: HashMap<Uuid, String>,
    pipelines: HashMap<Option<Uuid>, PipelineDef>,
    after: Option<Vec<Value>>,
    page_size: u64,
    done: bool,
}

impl std::fmt::Debug for SalesExportCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesExportCursor")
            .field("entity", &self.entity)
            .field("columns", &self.columns.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// A document as the API returns it.
enum Doc {
    Opportunity(Opportunity),
    Quote(Quote),
    Contract(Contract),
}

/// A status or type as a word of the export's language: the Chinese label,
/// or the API name with spaces (`pending approval`).
fn word(english: bool, api: &str, zh: &str) -> ExportValue {
    ExportValue::Text(if english {
        api.replace('_', " ")
    } else {
        zh.to_string()
    })
}

fn text(s: &str) -> ExportValue {
    if s.is_empty() {
        ExportValue::Empty
    } else {
        ExportValue::Text(s.to_string())
    }
}

fn opt_text(s: &Option<String>) -> ExportValue {
    s.as_deref().map_or(ExportValue::Empty, text)
}

fn money(m: Money) -> ExportValue {
    ExportValue::Money(m.minor)
}

fn date(d: Option<NaiveDate>) -> ExportValue {
    d.map_or(ExportValue::Empty, ExportValue::Date)
}

impl Doc {
    /// The value of a document's own column `key` (not a related name or
    /// a time, which the row gives).
    fn cell(&self, key: &str, en: bool) -> ExportValue {
        match self {
            Doc::Opportunity(o) => match key {
                "code" => text(&o.code),
                "name" => text(&o.name),
                "stage" => text(&o.stage_name),
                "status" => word(en, o.status.name(), o.status.label_zh()),
                "probability" => ExportValue::Number(f64::from(o.probability)),
                "amount" => money(o.amount),
                "weighted" => money(o.weighted),
                "expected_close" => date(o.expected_close),
                "source" => opt_text(&o.source),
                "lost_reason" => opt_text(&o.lost_reason),
                "notes" => opt_text(&o.notes),
                _ => ExportValue::Empty,
            },
            Doc::Quote(q) => match key {
                "code" => text(&q.code),
                "title" => text(&q.title),
                "quote_version" => ExportValue::Number(q.quote_version as f64),
                "status" => word(en, q.status.name(), q.status.label_zh()),
                "gross" => money(q.totals.gross),
                "discount" => money(q.totals.discount),
                "amount" => money(q.totals.amount),
                "list_total" => money(list_total(&q.lines)),
                "below_list" => {
                    let list = list_total(&q.lines);
                    money(Money::cny((list.minor - q.totals.amount.minor).max(0)))
                }
                "max_discount" => ExportValue::Number(q.totals.max_discount_bp as f64 / 100.0),
                "tax" => money(q.totals.tax),
                "valid_until" => date(q.valid_until),
                "notes" => opt_text(&q.notes),
                _ => ExportValue::Empty,
            },
            Doc::Contract(c) => match key {
                "code" => text(&c.code),
                "title" => text(&c.title),
                "contract_type" => word(en, c.contract_type.name(), c.contract_type.label_zh()),
                "status" => word(en, c.status.name(), c.status.label_zh()),
                "amount" => money(c.amount),
                "tax" => money(c.tax),
                "received" => money(c.received),
                "outstanding" => money(c.outstanding),
                "invoiced" => money(c.invoiced),
                "not_invoiced" => money(c.not_invoiced),
                "signed_on" => date(c.signed_on),
                "start_on" => date(c.start_on),
                "end_on" => date(c.end_on),
                "terminated_reason" => opt_text(&c.terminated_reason),
                "notes" => opt_text(&c.notes),
                _ => ExportValue::Empty,
            },
        }
    }
}

impl SalesExportCursor<'_> {
    /// The columns.
    pub fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    /// The next page of rows, `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Vec<ExportValue>>>> {
        if self.done {
            return Ok(None);
        }
        let mut sel = self.select.clone();
        sel.paging = Paging::Keyset {
            after: self.after.clone(),
            limit: self.page_size,
        };
        let got = self.crm.store.select(&sel).await?;
        if !got.has_more {
            self.done = true;
        }
        if let Some(last) = got.rows.last() {
            self.after = Some(match self.entity {
                // Past every version of the quote: a revision made while the
                // export runs is a new row of the same quote, not another.
                Entity::Quote => vec![last.get("root_id").clone(), Value::Id(Uuid::max())],
                _ => vec![last.get("created_at").clone(), Value::Id(last.id())],
            });
        } else {
            self.done = true;
            return Ok(None);
        }
        let wants = |k: &str| self.columns.iter().any(|c| c.key == k);
        let ids = |f: fn(&Row) -> Option<Uuid>| -> Vec<Value> {
            let mut v: Vec<Uuid> = got.rows.iter().filter_map(f).collect();
            v.sort_unstable();
            v.dedup();
            v.into_iter().map(Value::Id).collect()
        };
        let customers = if wants("customer_id") {
            self.crm
                .readable_names(
                    &self.actor,
                    Entity::Customer,
                    ids(|r| r.get("customer_id").as_id()),
                    true,
                )
                .await?
        } else {
            HashMap::new()
        };
        let opportunities = if wants("opportunity_id") {
            self.crm
                .readable_names(
                    &self.actor,
                    Entity::Opportunity,
                    ids(|r| r.get("opportunity_id").as_id()),
                    true,
                )
                .await?
        } else {
            HashMap::new()
        };
        let mut docs = Vec::with_capacity(got.rows.len());
        for row in &got.rows {
            docs.push(self.doc(row).await?);
        }
        let offset = self.crm.config.utc_offset;
        let local = |t: Option<DateTime<Utc>>| {
            t.map_or(ExportValue::Empty, |t| {
                ExportValue::DateTime(t.with_timezone(&offset).naive_local())
            })
        };
        let name = |names: &HashMap<Uuid, String>, id: Option<Uuid>| {
            id.and_then(|i| names.get(&i).cloned())
                .map_or(ExportValue::Empty, ExportValue::Text)
        };
        // A customer or opportunity the reader may not read stands as the
        // follow-up exports and the lists show it, not as a blank.
        let referenced = |names: &HashMap<Uuid, String>, id: Option<Uuid>, target: Entity| match id
        {
            Some(i) => ExportValue::Text(
                names
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| crate::export::hidden_record(target)),
            ),
            None => ExportValue::Empty,
        };
        let rows = got
            .rows
            .iter()
            .zip(&docs)
            .map(|(row, d)| {
                let id = |c: &str| row.get(c).as_id();
                self.columns
                    .iter()
                    .map(|c| match c.key.as_str() {
                        "customer_id" => {
                            referenced(&customers, id("customer_id"), Entity::Customer)
                        }
                        "opportunity_id" => {
                            referenced(&opportunities, id("opportunity_id"), Entity::Opportunity)
                        }
                        "owner_id" => name(&self.users, id("owner_id")),
                        "department_id" => name(&self.departments, id("department_id")),
                        "created_at" => local(row.get("created_at").as_timestamp()),
                        "updated_at" => local(row.get("updated_at").as_timestamp()),
                        k => d.cell(k, self.english),
                    })
                    .collect()
            })
            .collect();
        Ok(Some(rows))
    }

    /// A document in its typed form (the one the API returns).
    async fn doc(&mut self, row: &Row) -> Result<Doc> {
        Ok(match self.entity {
            Entity::Opportunity => {
                let pid = row.get("pipeline_id").as_id();
                let pipeline = match self.pipelines.get(&pid) {
                    Some(p) => p,
                    None => {
                        let p = self.crm.pipeline_by_id(pid).await?;
                        self.pipelines.entry(pid).or_insert(p)
                    }
                };
                Doc::Opportunity(self.crm.opportunity_in(row, pipeline))
            }
            Entity::Quote => Doc::Quote(quote_from_row(row)),
            _ => Doc::Contract(contract_from_row(row)),
        })
    }
}

/// What a quote's lines come to at the catalogue's list prices (标价合计):
/// each catalogue line at its list price, or at its own price where that
/// is higher; lines without a list price at their own price. What the
/// quote comes to below it ([`Quote::totals`]' amount taken from it) is the
/// discount that approval looks at, the line discounts and the prices typed
/// below list together.
fn list_total(lines: &[crate::sales::Line]) -> Money {
    let mut minor: i128 = 0;
    for l in lines {
        let at_list = l
            .list_price
            .map_or(0, |p| i128::from(p.minor) * i128::from(l.quantity));
        minor += at_list.max(i128::from(l.gross.minor));
    }
    Money::cny(i64::try_from(minor).unwrap_or(i64::MAX))
}
