//! The 360° view of a customer (360°客户视图), the ready-made lists sales
//! people open every morning, and batch operations on a filter.
//!
//! [`CustomerView`] gathers in one call what exists about a customer:
//! contacts, follow-ups, pool place and history, attachments, possible
//! duplicates and the recycling forecast — each read through the actor's
//! data scope and field rules. Linked records of other modules appear in
//! [`CustomerView::sections`], named after their table: the sales
//! documents (`opportunities`, `quotes` — the current version of each —
//! and `contracts`) with their real fields as the sales module reads them,
//! the `payments` and `invoices` of the contracts the actor may read, and
//! any other business entity whose table has a `customer_id` column, each
//! listed with the actor's read scope for that entity.

use crate::auth::{Action, Actor};
use crate::crm::Crm;
use crate::dedupe::DuplicateMatch;
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::ids::{DepartmentId, RecordId, UserId};
use crate::pool::{Place, PoolId, PoolMove, RecycleExplanation};
use crate::query::{Cond, ListQuery, Page, PageRequest};
use crate::records::{BatchReport, Record, ShareAccess};
use crate::sales::contract::contract_from_row;
use crate::sales::quote::quote_from_row;
use crate::sales::{ContractQuery, OpportunityQuery, PipelineDef};
use crate::schema::{ColType, Table};
use crate::store::{CmpOp, Col, Filter, Paging, Row, Select, Sort};
use crate::value::Value;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Rows per section of the view at most (the totals count them all).
pub const VIEW_SECTION_LIMIT: u64 = 50;

/// Records linked to a customer, of one kind.
///
/// The items of a sales section carry, in [`Record::fields`], the
/// document as the sales module reads it — the JSON form of
/// [`Opportunity`](crate::sales::Opportunity), [`Quote`](crate::sales::Quote)
/// or [`Contract`](crate::sales::Contract), amounts as
/// [`Money`](crate::money::Money) — and their custom fields as the actor's
/// field rules show them. Payments and invoices are no records of their
/// own: their items are [`Payment`](crate::sales::Payment)s and
/// [`Invoice`](crate::sales::Invoice)s in the same JSON form, under the entity
/// whose rights govern them ([`Entity::Contract`]), with the code and title
/// of their contract (`contract_code`, `contract_title`) and its owner and
/// department.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewSection {
    /// The entity (`contact`, `follow_up`, `opportunity`, `quote`,
    /// `contract`, `payment`, `invoice` …).
    pub entity: String,
    /// Its Chinese name.
    pub title: String,
    /// How many the actor may see.
    pub total: u64,
    /// The newest of them, at most [`VIEW_SECTION_LIMIT`].
    pub items: Vec<Record>,
    /// How many more the customer has that the actor may not see (their
    /// number only: a sharee of the customer is told its contacts are
    /// there, not shown none). Counted for contacts, follow-ups,
    /// opportunities, quotes (current versions), contracts and the records
    /// of other modules; 0 for payments and invoices, which are listed for
    /// the contracts the actor may read.
    pub hidden: u64,
}

/// What a payment or invoice item tells of its contract.
struct ContractRef {
    code: String,
    title: String,
    owner_id: Option<Uuid>,
    department_id: Option<Uuid>,
}

/// A sales document's fields: its JSON form, key by key.
fn document_fields<T: Serialize>(doc: &T) -> BTreeMap<String, Json> {
    match serde_json::to_value(doc) {
        Ok(Json::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// Newest first: by creation, then id (a stable order for equal times).
fn newest_first(first: &[&'static str]) -> Vec<Sort> {
    first
        .iter()
        .chain(["created_at", "id"].iter())
        .map(|c| Sort {
            col: col(c),
            desc: true,
        })
        .collect()
}

/// The item of a payment or invoice row of a contract.
fn contract_item(row: &Row, contract: &ContractRef, mut fields: BTreeMap<String, Json>) -> Record {
    fields.insert("contract_code".into(), Json::String(contract.code.clone()));
    fields.insert(
        "contract_title".into(),
        Json::String(contract.title.clone()),
    );
    Record {
        entity: Entity::Contract,
        id: RecordId(row.id()),
        code: None,
        version: row.version(),
        owner_id: contract.owner_id.map(UserId),
        department_id: contract.department_id.map(DepartmentId),
        created_by: row.get("recorded_by").as_id().map(UserId),
        created_at: row.get("created_at").as_timestamp().unwrap_or_default(),
        updated_at: row.get("updated_at").as_timestamp().unwrap_or_default(),
        deleted_at: None,
        archived_at: None,
        fields,
        custom: BTreeMap::new(),
    }
}

/// Where a customer is, in the pools. These are customer fields: each is
/// left out (`None`) when the actor's field rule for it hides or masks it
/// (a place, a date or a count has no partly masked form).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlaceInfo {
    /// The place.
    pub place: Option<Place>,
    /// Its Chinese name.
    pub place_zh: Option<String>,
    /// The governing pool (left out under the rule for `pool_id`).
    pub pool: Option<(PoolId, String)>,
    /// Locked against recycling.
    pub locked: Option<bool>,
    /// Since when the owner holds it.
    pub owned_since: Option<DateTime<Utc>>,
    /// The owner before (kept for the re-claim cooldown).
    pub previous_owner_id: Option<UserId>,
    /// When it last went into a pool.
    pub released_at: Option<DateTime<Utc>>,
    /// The latest deal.
    pub closed_at: Option<DateTime<Utc>>,
    /// The latest opportunity.
    pub last_opportunity_at: Option<DateTime<Utc>>,
    /// Open opportunities.
    pub open_opportunities: Option<i64>,
}

/// Everything about a customer, in one call (360°客户视图).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomerView {
    /// The customer as the actor sees it.
    pub customer: Record,
    /// Its place in the pools.
    pub place: PlaceInfo,
    /// Contacts the actor may see.
    pub contacts: ViewSection,
    /// Follow-ups the actor may see, newest first.
    pub follow_ups: ViewSection,
    /// Every move between places, oldest first.
    pub pool_history: Vec<PoolMove>,
    /// The customer's attachments, as the actor's field rule for them says:
    /// masked element by element when masked, empty when hidden.
    pub attachments: Vec<Json>,
    /// Customers sharing a key with it, values and names shown as the
    /// actor's field rules say.
    pub possible_duplicates: Vec<DuplicateMatch>,
    /// Whether and when a recycling rule would send it back.
    pub recycling: Option<RecycleExplanation>,
    /// Linked records of other modules, by table name (`opportunities`,
    /// `quotes`, `contracts`, `payments`, `invoices`, `service_tickets` …);
    /// a section the actor may not read is left out (see [`ViewSection`]).
    pub sections: BTreeMap<String, ViewSection>,
}

/// A contact's upcoming birthday.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Birthday {
    /// The contact as the actor sees it.
    pub contact: Record,
    /// The next birthday.
    pub date: NaiveDate,
    /// Days from today (0: today).
    pub in_days: i64,
}

fn col(c: &'static str) -> Col {
    Col::Column(c)
}

/// `MM-DD` of the birthdays falling on each of the next days (29 February
/// is celebrated on 28 February in other years).
fn month_days(today: NaiveDate, days: u32) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..=i64::from(days) {
        let d = today + Duration::days(i);
        out.push(d.format("%m-%d").to_string());
        if d.month() == 2 && d.day() == 28 && NaiveDate::from_ymd_opt(d.year(), 2, 29).is_none() {
            out.push("02-29".into());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The next date on or after `today` with the birthday's month and day.
fn next_birthday(today: NaiveDate, birthday: NaiveDate) -> NaiveDate {
    let on = |y: i32| {
        NaiveDate::from_ymd_opt(y, birthday.month(), birthday.day())
            .or_else(|| NaiveDate::from_ymd_opt(y, 2, 28))
            .unwrap_or(today)
    };
    let this = on(today.year());
    if this >= today {
        this
    } else {
        on(today.year() + 1)
    }
}

/// How many birthdays [`Crm::upcoming_birthdays`] returns at most.
const BIRTHDAYS_LIMIT: usize = 1000;

impl Crm {
    async fn section(
        &self,
        actor: &Actor,
        entity: Entity,
        customer: RecordId,
        sort: &str,
    ) -> Result<ViewSection> {
        // The view's own order, unless a field rule keeps the actor from
        // sorting by that field: then by creation (never an error).
        let sort = if crate::records::filterable(actor, entity, sort) {
            sort
        } else {
            "created_at"
        };
        let query = ListQuery::default()
            .sort_by(sort, true)
            .page(PageRequest::Offset {
                page: 1,
                per_page: VIEW_SECTION_LIMIT,
            })
            .with_total();
        let filter = Filter::Cmp(col("customer_id"), CmpOp::Eq, Value::Id(customer.0));
        // A customer's follow-ups are its timeline: whoever may see the
        // customer (and read follow-ups at all) sees every one of them —
        // a new owner the history before the transfer, an owner the
        // service team's calls — with the field rules applied.
        let scope = (entity == Entity::FollowUp && actor.can(entity, Action::Read))
            .then_some(crate::store::Scope::All);
        let page = self
            .list_records_with(actor, entity, &query, scope, filter.clone())
            .await?;
        let total = page.total.unwrap_or(page.items.len() as u64);
        let mut all = Select::all(entity.table(), actor.company_id.0, self.now());
        all.filter = filter;
        let hidden = self.count(all).await?.saturating_sub(total);
        Ok(ViewSection {
            entity: entity.name().into(),
            title: entity.name_zh().into(),
            total,
            items: page.items,
            hidden,
        })
    }

    /// The newest rows a select finds, at most [`VIEW_SECTION_LIMIT`], and
    /// how many it finds.
    async fn newest_rows(&self, mut sel: Select, sort: Vec<Sort>) -> Result<(Vec<Row>, u64)> {
        sel.sort = sort;
        sel.paging = Paging::Offset {
            offset: 0,
            limit: VIEW_SECTION_LIMIT,
        };
        sel.with_total = true;
        let got = self.store.select(&sel).await?;
        let total = got.total.unwrap_or(got.rows.len() as u64);
        Ok((got.rows, total))
    }

    /// How many rows a select finds whatever the actor's read scope: the
    /// same filters over the whole company (only the number is read).
    async fn count_unscoped(&self, sel: &Select) -> Result<u64> {
        let mut all = sel.clone();
        all.scope = crate::store::Scope::All;
        self.count(all).await
    }

    /// The item of a sales document: its record (header and custom fields
    /// as the actor's field rules show them) with the document's fields.
    fn document_item(
        &self,
        actor: &Actor,
        entity: Entity,
        row: &Row,
        customs: &[crate::custom::CustomFieldDef],
        fields: BTreeMap<String, Json>,
    ) -> Record {
        let mut r = self.to_record(actor, entity, row, customs);
        r.fields = fields;
        r
    }

    /// The sections of the customer's sales documents, each only when the
    /// actor may read that entity and found as the sales lists find them
    /// (the actor's read scope, live documents, the current version of each
    /// quote): opportunities, quotes, contracts, and the payments and
    /// invoices of the contracts the actor may read, newest first.
    async fn sales_sections(
        &self,
        actor: &Actor,
        customer: RecordId,
        sections: &mut BTreeMap<String, ViewSection>,
    ) -> Result<()> {
        let section = |entity: Entity, total, items, hidden| ViewSection {
            entity: entity.name().into(),
            title: entity.name_zh().into(),
            total,
            items,
            hidden,
        };
        if actor.can(Entity::Opportunity, Action::Read) {
            let q = OpportunityQuery {
                customer_id: Some(customer.0),
                ..OpportunityQuery::default()
            };
            let sel = self.opportunity_select(actor, &q);
            let everything = self.count_unscoped(&sel).await?;
            let (rows, total) = self.newest_rows(sel, newest_first(&[])).await?;
            let customs = self.custom_fields(actor, Entity::Opportunity).await?;
            let mut pipelines: HashMap<Option<Uuid>, PipelineDef> = HashMap::new();
            let mut items = Vec::new();
            for row in &rows {
                let pid = row.get("pipeline_id").as_id();
                let pipeline = match pipelines.entry(pid) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(self.pipeline_by_id(pid).await?)
                    }
                };
                let o = self.opportunity_in(row, pipeline);
                let fields = document_fields(&o);
                items.push(self.document_item(actor, Entity::Opportunity, row, &customs, fields));
            }
            sections.insert(
                Table::Opportunities.name().into(),
                section(
                    Entity::Opportunity,
                    total,
                    items,
                    everything.saturating_sub(total),
                ),
            );
        }
        if actor.can(Entity::Quote, Action::Read) {
            // The current version of each quote (superseded ones left out).
            let sel = self.quote_select(actor, Some(customer.0), None);
            let everything = self.count_unscoped(&sel).await?;
            let (rows, total) = self.newest_rows(sel, newest_first(&[])).await?;
            let customs = self.custom_fields(actor, Entity::Quote).await?;
            let mut items = Vec::new();
            for row in &rows {
                let fields = document_fields(&quote_from_row(row));
                items.push(self.document_item(actor, Entity::Quote, row, &customs, fields));
            }
            sections.insert(
                Table::Quotes.name().into(),
                section(
                    Entity::Quote,
                    total,
                    items,
                    everything.saturating_sub(total),
                ),
            );
        }
        if !actor.can(Entity::Contract, Action::Read) {
            return Ok(());
        }
        let q = ContractQuery {
            customer_id: Some(customer.0),
            ..ContractQuery::default()
        };
        let sel = self.contract_select(actor, &q);
        let everything = self.count_unscoped(&sel).await?;
        let (rows, total) = self.newest_rows(sel.clone(), newest_first(&[])).await?;
        let customs = self.custom_fields(actor, Entity::Contract).await?;
        let mut items = Vec::new();
        for row in &rows {
            let fields = document_fields(&contract_from_row(row));
            items.push(self.document_item(actor, Entity::Contract, row, &customs, fields));
        }
        sections.insert(
            Table::Contracts.name().into(),
            section(
                Entity::Contract,
                total,
                items,
                everything.saturating_sub(total),
            ),
        );
        // Payments and invoices of every contract of the customer the actor
        // may read (not only of the newest ones listed).
        let all = if total > rows.len() as u64 {
            self.store.select(&sel).await?.rows
        } else {
            rows
        };
        let contracts: HashMap<Uuid, ContractRef> = all
            .iter()
            .map(|r| {
                (
                    r.id(),
                    ContractRef {
                        code: r.get("code").as_text().unwrap_or_default().to_string(),
                        title: r.get("title").as_text().unwrap_or_default().to_string(),
                        owner_id: r.get("owner_id").as_id(),
                        department_id: r.get("department_id").as_id(),
                    },
                )
            })
            .collect();
        let ids: Vec<Value> = contracts.keys().map(|id| Value::Id(*id)).collect();
        for (table, name, title) in [
            (Table::Payments, "payment", "回款"),
            (Table::Invoices, "invoice", "发票"),
        ] {
            let (rows, total) = if ids.is_empty() {
                (Vec::new(), 0)
            } else {
                let mut sel = Select::all(table, actor.company_id.0, self.now());
                sel.filter = Filter::In(col("contract_id"), ids.clone());
                let first: &[&'static str] = if table == Table::Payments {
                    &["received_on"]
                } else {
                    &[]
                };
                self.newest_rows(sel, newest_first(first)).await?
            };
            let items = rows
                .iter()
                .filter_map(|row| {
                    let contract = contracts.get(&row.get("contract_id").as_id()?)?;
                    let fields = if table == Table::Payments {
                        document_fields(&crate::sales::payment::payment_from_row(row))
                    } else {
                        document_fields(&crate::sales::payment::invoice_from_row(row))
                    };
                    Some(contract_item(row, contract, fields))
                })
                .collect();
            sections.insert(
                table.name().into(),
                ViewSection {
                    entity: name.into(),
                    title: title.into(),
                    total,
                    items,
                    hidden: 0,
                },
            );
        }
        Ok(())
    }

    /// The 360° view of a customer the actor can see (also a customer in a
    /// pool the actor belongs to): the customer masked by the actor's field
    /// rules, contacts within the actor's scope and every follow-up of the
    /// customer (see `section`), pool place
    /// and history, attachments, possible duplicates, the recycling
    /// forecast and the linked records of other modules.
    pub async fn customer_view(&self, actor: &Actor, id: RecordId) -> Result<CustomerView> {
        let row = self.customer_for_pool_view(actor, id).await?;
        let customs = self.custom_fields(actor, Entity::Customer).await?;
        let customer = self.to_record(actor, Entity::Customer, &row, &customs);
        let contacts = self
            .section(actor, Entity::Contact, id, "created_at")
            .await?;
        let follow_ups = self
            .section(actor, Entity::FollowUp, id, "occurred_at")
            .await?;
        let mut sections = BTreeMap::new();
        for table in Table::ALL {
            let Some(entity) = Entity::of_table(table).filter(|e| e.is_record()) else {
                continue;
            };
            if matches!(
                entity,
                Entity::Customer
                    | Entity::Contact
                    | Entity::FollowUp
                    | Entity::Opportunity
                    | Entity::Quote
                    | Entity::Contract
            ) || table
                .column("customer_id")
                .is_none_or(|c| c.ty != ColType::Id)
                || !actor.can(entity, Action::Read)
            {
                continue;
            }
            sections.insert(
                table.name().to_string(),
                self.section(actor, entity, id, "created_at").await?,
            );
        }
        self.sales_sections(actor, id, &mut sections).await?;
        // As the customer record shows them: masked element by element, or
        // none when the field is hidden.
        let attachments = customer
            .fields
            .get("attachments")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let place = Place::of_row(&row);
        let readable = self
            .can_on_row(actor, Entity::Customer, Action::Read, &row)
            .await?;
        // The customer's pool fields, as its record shows them: none that a
        // field rule hides or masks.
        let reads = |field: &str| crate::records::filterable(actor, Entity::Customer, field);
        let date = |field: &str| row.get(field).as_timestamp().filter(|_| reads(field));
        Ok(CustomerView {
            place: PlaceInfo {
                place: reads("place").then_some(place),
                place_zh: reads("place").then(|| place.name_zh().into()),
                pool: if reads("pool_id") {
                    self.governing_pool(actor.company_id.0, &row).await?
                } else {
                    None
                },
                locked: reads("locked").then(|| row.get("locked").as_bool().unwrap_or(false)),
                owned_since: date("owned_since"),
                previous_owner_id: row.get("previous_owner_id").as_id().map(UserId),
                released_at: row.get("released_at").as_timestamp(),
                closed_at: date("closed_at"),
                last_opportunity_at: date("last_opportunity_at"),
                open_opportunities: reads("open_opportunities")
                    .then(|| row.get("open_opportunities").as_int().unwrap_or(0)),
            },
            customer,
            contacts,
            follow_ups,
            pool_history: self.pool_history(actor, id).await?,
            attachments,
            possible_duplicates: if readable {
                self.duplicates_of(actor, id).await?
            } else {
                Vec::new()
            },
            recycling: if place.is_owned() {
                Some(self.explain_recycling(actor, id, None).await?)
            } else {
                None
            },
            sections,
        })
    }

    /// Customers the actor can see whose next follow-up date is today
    /// (今日待跟进), by date.
    pub async fn follow_ups_due_today(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<Record>> {
        let today = self.today();
        let q = ListQuery::default()
            .filter(Cond::Eq(
                "next_follow_up".into(),
                Json::String(today.to_string()),
            ))
            .sort_by("next_follow_up", false)
            .page(page)
            .with_total();
        self.list_records(actor, Entity::Customer, &q).await
    }

    /// Customers the actor can see whose next follow-up date has passed
    /// (逾期未跟进), most overdue first.
    pub async fn follow_ups_overdue(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<Record>> {
        let today = self.today();
        let q = ListQuery::default()
            .filter(Cond::Lt(
                "next_follow_up".into(),
                Json::String(today.to_string()),
            ))
            .sort_by("next_follow_up", false)
            .page(page)
            .with_total();
        self.list_records(actor, Entity::Customer, &q).await
    }

    /// Contacts the actor can see with a birthday in the next `days` days
    /// (today included), soonest first (the soonest 1000).
    pub async fn upcoming_birthdays(&self, actor: &Actor, days: u32) -> Result<Vec<Birthday>> {
        let days = days.min(366);
        let today = self.today();
        let filter = Filter::In(
            col("birthday_md"),
            month_days(today, days)
                .into_iter()
                .map(Value::Text)
                .collect(),
        );
        // Every match, page by page, then the soonest: the store's order is
        // not the birthdays' (a first page alone could miss today's).
        let mut out: Vec<Birthday> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let q = ListQuery::default().page(PageRequest::Keyset {
                after: after.take(),
                limit: crate::query::MAX_PAGE_SIZE,
            });
            let page = self
                .list_records_with(actor, Entity::Contact, &q, None, filter.clone())
                .await?;
            out.extend(page.items.into_iter().filter_map(|c| {
                let b = c.fields.get("birthday").and_then(Json::as_str)?;
                let b = NaiveDate::parse_from_str(b, "%Y-%m-%d").ok()?;
                let date = next_birthday(today, b);
                let in_days = (date - today).num_days();
                (in_days <= i64::from(days)).then_some(Birthday {
                    contact: c,
                    date,
                    in_days,
                })
            }));
            // Only the soonest are kept as the pages come.
            if out.len() > 2 * BIRTHDAYS_LIMIT {
                out.sort_by_key(|b| (b.in_days, b.contact.id));
                out.truncate(BIRTHDAYS_LIMIT);
            }
            match page.next_cursor {
                Some(next) if page.has_more => after = Some(next),
                _ => break,
            }
        }
        out.sort_by_key(|b| (b.in_days, b.contact.id));
        out.truncate(BIRTHDAYS_LIMIT);
        Ok(out)
    }

    /// Customers the actor now owns that were transferred or assigned to it
    /// by someone else in the last `days` days (最近转给我的), newest first.
    pub async fn recently_transferred_to_me(
        &self,
        actor: &Actor,
        days: u32,
        page: PageRequest,
    ) -> Result<Page<Record>> {
        let since = self.now() - Duration::days(i64::from(days.min(crate::pool::MAX_DAYS)));
        let me = Value::Id(actor.user_id.0);
        let filter = Filter::And(vec![
            Filter::Cmp(col("owner_id"), CmpOp::Eq, me.clone()),
            Filter::Related {
                table: Table::PoolMoves,
                fk: "customer_id",
                filter: Box::new(Filter::And(vec![
                    Filter::Cmp(col("to_owner"), CmpOp::Eq, me.clone()),
                    // By someone else: not a move the actor made to themselves.
                    Filter::Cmp(col("actor_id"), CmpOp::Ne, me),
                    Filter::In(col("action"), vec!["transfer".into(), "assign".into()]),
                    Filter::Cmp(col("created_at"), CmpOp::Ge, Value::Timestamp(since)),
                ])),
            },
        ]);
        // Newest first by when they were taken over, unless a field rule
        // keeps the actor from sorting by that: then by creation.
        let newest = if crate::records::filterable(actor, Entity::Customer, "owned_since") {
            "owned_since"
        } else {
            "created_at"
        };
        let q = ListQuery::default()
            .sort_by(newest, true)
            .page(page)
            .with_total();
        self.list_records_with(actor, Entity::Customer, &q, None, filter)
            .await
    }

    /// The ids a batch operation acts on: the ids given, or every record the
    /// actor can see matching the query (at most [`MAX_BATCH`]; more is an
    /// error, so a batch never silently stops half way).
    pub async fn resolve_targets(
        &self,
        actor: &Actor,
        entity: Entity,
        targets: &Targets,
    ) -> Result<Vec<RecordId>> {
        let query = match targets {
            Targets::Ids(ids) => return Ok(ids.clone()),
            Targets::Matching(q) => q,
        };
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let mut q = query.clone();
            q.sort = Vec::new();
            q.with_total = false;
            q.page = PageRequest::Keyset {
                after: after.clone(),
                limit: crate::query::MAX_PAGE_SIZE,
            };
            // By the actor's own scope: a follow-up list's widening to the
            // follow-ups of readable customers (read with them, changed by
            // their authors) selects nothing a batch may act on.
            let scope = actor.store_scope(entity, Action::Read);
            let page = self
                .list_records_with(
                    actor,
                    entity,
                    &q.sort_by("created_at", false),
                    scope,
                    Filter::True,
                )
                .await?;
            out.extend(page.items.iter().map(|r| r.id));
            if out.len() > MAX_BATCH {
                return Err(Error::invalid(
                    "filter",
                    format!("more than {MAX_BATCH} {entity} records match; narrow the filter"),
                ));
            }
            match page.next_cursor {
                Some(c) if page.has_more => after = Some(c),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Shares several records with a user, reporting per record.
    pub async fn share_records(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
        with: UserId,
        access: ShareAccess,
        expires_at: Option<DateTime<Utc>>,
    ) -> BatchReport {
        let mut report = BatchReport::default();
        for id in ids {
            match self
                .share_record(actor, entity, *id, with, access, expires_at)
                .await
            {
                Ok(()) => report.done.push(*id),
                Err(e) => report.refused.push((*id, e.to_string())),
            }
        }
        report
    }

    /// Shares records with every active member of a user group as the group
    /// is now: each member gets a share of their own (it stays if they
    /// leave the group, and ends like any share), the actor is left out,
    /// and every share passes the checks of [`Crm::share_record`]. Reports
    /// per member.
    pub async fn share_with_group(
        &self,
        actor: &Actor,
        entity: Entity,
        ids: &[RecordId],
        group: crate::ids::GroupId,
        access: ShareAccess,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<(UserId, BatchReport)>> {
        let g = self
            .list_groups(actor)
            .await?
            .into_iter()
            .find(|g| g.id == group)
            .ok_or_else(|| Error::not_found("user group", group))?;
        let active: Vec<UserId> = self
            .list_users(actor, None)
            .await?
            .into_iter()
            .filter(|u| u.active)
            .map(|u| u.id)
            .collect();
        let mut out = Vec::new();
        for member in g.members {
            if member == actor.user_id || !active.contains(&member) {
                continue;
            }
            let r = self
                .share_records(actor, entity, ids, member, access, expires_at)
                .await;
            out.push((member, r));
        }
        if out.is_empty() {
            return Err(Error::InvalidState(format!(
                "user group '{}' has no active member besides {} to share with",
                g.name, actor.display_name
            )));
        }
        Ok(out)
    }
}

/// Records a batch operation on a filter acts on at most.
pub const MAX_BATCH: usize = 10_000;

/// What a batch operation acts on: records by id, or every record the actor
/// can see that matches a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// These records.
    Ids(Vec<RecordId>),
    /// Every visible record matching the query (its paging is ignored).
    Matching(ListQuery),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn birthday_windows_cross_the_year_and_keep_leap_days() {
        assert_eq!(
            month_days(d(2026, 12, 30), 3),
            vec!["01-01", "01-02", "12-30", "12-31"]
        );
        assert!(month_days(d(2027, 2, 27), 2).contains(&"02-29".to_string()));
        assert!(!month_days(d(2028, 2, 27), 1).contains(&"02-29".to_string()));
        assert_eq!(next_birthday(d(2026, 12, 30), d(1990, 1, 2)), d(2027, 1, 2));
        assert_eq!(next_birthday(d(2027, 2, 1), d(1992, 2, 29)), d(2027, 2, 28));
        assert_eq!(next_birthday(d(2026, 5, 1), d(1980, 5, 1)), d(2026, 5, 1));
    }
}
