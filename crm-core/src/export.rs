//! The core side of exports (导出): [`Crm::export_columns`] picks and labels
//! the columns and [`Crm::export_cursor`] walks the list the actor can see —
//! the same list query as the API (filters plus the actor's scope in one
//! store query, keyset paged), the field rules applied to every value, one
//! page in memory at a time. `crm-io` writes the workbook.
//!
//! The list query is resolved once per export; without a search text the
//! cursor reads store rows and turns them into cells itself, with the field
//! rules and column positions looked up once per export instead of per cell
//! (with one, it reads pages of [`Crm::list_records`]; both give the same
//! cells). Reading ([`ExportCursor::next_batch`]) and building cells
//! ([`ExportConverter`]) are separate so that they can run on two threads.
//!
//! Architecture invariant: nothing here writes files or names a backend; the
//! store is reached only through [`crate::store::Store`].

use crate::auth::{Action, Actor, FieldAccess, mask};
use crate::crm::Crm;
use crate::custom::{CustomFieldDef, CustomFieldType};
use crate::entity::Entity;
use crate::entity::{FieldDef, FieldKind, MaskStyle};
use crate::error::{Error, Result};
use crate::import::{
    CUSTOMER_CODE_HEADERS, ValueKind, custom_value_kind, kind_value, row_label_name,
};
use crate::query::{ListQuery, PageRequest};
use crate::records::{Record, json_text};
use crate::schema::Table;
use crate::store::{CmpOp, Col, CustomType, Filter, Lifecycle, Paging, Row, Scope, Select, Sort};
use crate::value::Value;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// One exported column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportColumn {
    /// The field: `code`, `owner_id`, `department_id`, `created_at`,
    /// `updated_at`, a built-in field's API name or `custom.key`.
    pub key: String,
    /// The Chinese header.
    pub header_zh: String,
    /// The English header.
    pub header_en: String,
    /// How its values are held.
    pub kind: ValueKind,
}

/// One exported value.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportValue {
    /// Nothing.
    Empty,
    /// Text (also masked values).
    Text(String),
    /// A number.
    Number(f64),
    /// Money in minor units (分).
    Money(i64),
    /// A date.
    Date(NaiveDate),
    /// A local date and time (the companies' time zone).
    DateTime(NaiveDateTime),
    /// Yes or no.
    Bool(bool),
}

const EXPORT_STANDARD: &[(&str, &str, &str, ValueKind)] = &[
    ("code", "编号", "Code", ValueKind::Text),
    ("owner_id", "负责人", "Owner", ValueKind::Text),
    (
        "department_id",
        "所属部门",
        "Owning department",
        ValueKind::Text,
    ),
    ("created_at", "创建时间", "Created", ValueKind::DateTime),
    ("updated_at", "更新时间", "Updated", ValueKind::DateTime),
    // Read back by an import that updates the records: a row of an older
    // version is refused rather than undoing the changes made since.
    (
        VERSION_KEY,
        VERSION_HEADERS.0,
        VERSION_HEADERS.1,
        ValueKind::Number,
    ),
];

/// The key of a record export's version column.
pub const VERSION_KEY: &str = "version";

/// The Chinese and English headers of a record export's version column:
/// the version of each record as exported, read back by an import
/// ([`crate::import::ColumnRole::Version`]).
pub const VERSION_HEADERS: (&str, &str) = ("版本", "Version");

impl Crm {
    /// The columns of an export of `entity`, in the order picked (field
    /// names as in filters: API names, Chinese or English labels, standard
    /// columns, `custom.key` or custom labels); none picked means code, every
    /// visible field, owner, department and creation time. Needs the export
    /// permission; hidden fields cannot be picked.
    pub async fn export_columns(
        &self,
        actor: &Actor,
        entity: Entity,
        picks: &[String],
    ) -> Result<Vec<ExportColumn>> {
        if entity == Entity::Product {
            return self.product_export_columns(actor, picks);
        }
        if matches!(
            entity,
            Entity::Opportunity | Entity::Quote | Entity::Contract
        ) {
            return self.sales_export_columns(actor, entity, picks);
        }
        exportable(entity)?;
        if !actor.can(entity, Action::Export) {
            return Err(Error::Forbidden(format!(
                "{} may not export {} records",
                actor.display_name, entity
            )));
        }
        let customs = self.custom_fields(actor, entity).await?;
        // A record's own columns (code, owner …) take no field rules; a rule
        // stored before they were refused still keeps the column out.
        let std_col = |k: &str| {
            EXPORT_STANDARD
                .iter()
                .find(|(n, zh, en, _)| *n == k || *zh == k || en.eq_ignore_ascii_case(k))
                .filter(|(n, ..)| crate::records::filterable(actor, entity, n))
                .map(|(n, zh, en, kind)| ExportColumn {
                    key: n.to_string(),
                    header_zh: zh.to_string(),
                    header_en: en.to_string(),
                    kind: *kind,
                })
        };
        let builtin = |d: &FieldDef| ExportColumn {
            key: d.name.to_string(),
            header_zh: d.zh.to_string(),
            header_en: d.en.to_string(),
            kind: stored_kind(entity, d),
        };
        let custom_col = |d: &CustomFieldDef| ExportColumn {
            key: format!("custom.{}", d.key),
            header_zh: d.label.clone(),
            // Without an English label, the label the company gave it (as
            // the English import template heads it), else its key.
            header_en: d
                .label_en
                .clone()
                .filter(|l| !l.trim().is_empty())
                .or_else(|| Some(d.label.clone()).filter(|l| !l.trim().is_empty()))
                .unwrap_or_else(|| d.key.clone()),
            kind: custom_value_kind(d.field_type),
        };
        let customer_code = customer_code_column(actor, entity, &customs);
        let mut out = Vec::new();
        if picks.is_empty() {
            out.extend(std_col("code"));
            for d in entity.fields() {
                if d.kind != FieldKind::Attachments
                    && actor.field_access(entity, d.name) != FieldAccess::Hidden
                {
                    out.push(builtin(d));
                    // A contact's customer by name, then by code.
                    if d.name == "customer_id" {
                        out.extend(customer_code.clone());
                    }
                }
            }
            for d in &customs {
                if actor.field_access(entity, &format!("custom.{}", d.key)) != FieldAccess::Hidden {
                    out.push(custom_col(d));
                }
            }
            out.extend(std_col("owner_id"));
            out.extend(std_col("department_id"));
            out.extend(std_col("created_at"));
            out.extend(std_col(VERSION_KEY));
            return Ok(out);
        }
        for p in picks {
            let p = p.trim();
            let col = if let Some(c) = std_col(p) {
                c
            } else if let Some(d) = entity.field(p) {
                if actor.field_access(entity, d.name) == FieldAccess::Hidden {
                    return Err(Error::Forbidden(format!(
                        "{} may not see {entity}.{}",
                        actor.display_name, d.name
                    )));
                }
                builtin(d)
            } else if let Some(c) = customer_code
                .as_ref()
                .filter(|_| p == CUSTOMER_CODE_KEY || is_customer_code_pick(p))
            {
                c.clone()
            } else if entity == Entity::Contact
                && (p == CUSTOMER_CODE_KEY || is_customer_code_pick(p))
                && !customs
                    .iter()
                    .any(|d| d.key == p || d.label == p || d.label_en.as_deref() == Some(p))
            {
                return Err(Error::Forbidden(format!(
                    "{} may not read the contacts' customers, so not their codes",
                    actor.display_name
                )));
            } else {
                let key = p.strip_prefix("custom.").unwrap_or(p);
                let d = customs
                    .iter()
                    .find(|d| d.key == key || d.label == key || d.label_en.as_deref() == Some(key))
                    .ok_or_else(|| Error::invalid(p, format!("{entity} has no field '{p}'")))?;
                if actor.field_access(entity, &format!("custom.{}", d.key)) == FieldAccess::Hidden {
                    return Err(Error::Forbidden(format!(
                        "{} may not see {entity}.custom.{}",
                        actor.display_name, d.key
                    )));
                }
                custom_col(d)
            };
            if out.iter().any(|c: &ExportColumn| c.key == col.key) {
                return Err(Error::invalid(p, format!("'{p}' is picked twice")));
            }
            out.push(col);
        }
        Ok(out)
    }

    /// Starts an export: the rows of `query` the actor can see (the query's
    /// paging is replaced by keyset pages of `page_size`; without a sort,
    /// oldest first), as values of `columns`.
    pub async fn export_cursor(
        &self,
        actor: &Actor,
        entity: Entity,
        query: ListQuery,
        columns: Vec<ExportColumn>,
        page_size: u64,
    ) -> Result<ExportCursor<'_>> {
        if !actor.can(entity, Action::Export) {
            return Err(Error::Forbidden(format!(
                "{} may not export {} records",
                actor.display_name, entity
            )));
        }
        exportable(entity)?;
        let now = self.now();
        let (users, departments) = self.export_labels(actor).await?;
        let pools = if entity == Entity::Customer {
            self.export_pool_names(actor).await?
        } else {
            HashMap::new()
        };
        let customs = self.custom_fields(actor, entity).await?;
        let mut query = query;
        // Without a sort, pages go by id: ids are time-ordered (UUIDv7), so
        // this is creation order, and each page is one index range read
        // (`id > last`) instead of a sort of the whole list.
        let by_id = query.sort.is_empty();
        let searching = query
            .search
            .as_deref()
            .is_some_and(|q| !q.trim().is_empty());
        let source = if searching {
            // The fuzzy search is resolved by the list query itself.
            if by_id {
                query.sort = vec![crate::query::SortBy {
                    field: "id".into(),
                    desc: false,
                }];
            }
            Source::Listed {
                query,
                after: None,
                last_id: None,
                narrow: export_scope(actor, entity, now),
            }
        } else {
            Source::Direct(self.direct_export(actor, entity, &query, &customs).await?)
        };
        let convert = Converter::new(
            entity,
            actor,
            columns,
            &customs,
            Labels {
                users,
                departments,
                pools,
            },
            self.config.utc_offset,
        );
        Ok(ExportCursor {
            by_id,
            crm: self,
            actor: actor.clone(),
            entity,
            source,
            convert: ExportConverter(Arc::new(convert)),
            page_size: page_size.clamp(1, crate::query::MAX_PAGE_SIZE),
            done: false,
        })
    }

    /// What an export shows `actor` of fields masked for them (`keys`: API
    /// names or `custom.key`), through the export's own conversion: an
    /// import compares a masked cell with it (see
    /// [`crate::import::DuplicatePolicy::Update`]).
    pub(crate) fn masked_view(
        &self,
        actor: &Actor,
        entity: Entity,
        keys: &[String],
        customs: &[CustomFieldDef],
    ) -> ExportConverter {
        let columns = keys
            .iter()
            .map(|k| ExportColumn {
                key: k.clone(),
                header_zh: String::new(),
                header_en: String::new(),
                kind: ValueKind::Text,
            })
            .collect();
        let labels = Labels {
            users: HashMap::new(),
            departments: HashMap::new(),
            pools: HashMap::new(),
        };
        ExportConverter(Arc::new(Converter::new(
            entity,
            actor,
            columns,
            customs,
            labels,
            self.config.utc_offset,
        )))
    }

    /// How exports name people and departments: users by display name, and
    /// by `name (username)` where two users share a name (so that a
    /// re-import finds each owner again); departments by name.
    pub(crate) async fn export_labels(
        &self,
        actor: &Actor,
    ) -> Result<(HashMap<Uuid, String>, HashMap<Uuid, String>)> {
        let now = self.now();
        let user_rows = self
            .store
            .select(&Select::all(Table::Users, actor.company_id.0, now))
            .await?
            .rows;
        let text =
            |r: &crate::store::Row, c: &str| r.get(c).as_text().unwrap_or_default().to_string();
        let mut shared: HashMap<String, usize> = HashMap::new();
        for r in &user_rows {
            *shared.entry(text(r, "display_name")).or_default() += 1;
        }
        let users = user_rows
            .iter()
            .map(|r| {
                let name = text(r, "display_name");
                let label = if shared.get(&name) == Some(&1) {
                    name
                } else {
                    crate::org::user_label(&name, &text(r, "username"))
                };
                (r.id(), label)
            })
            .collect();
        let departments = names_by_id(
            &self
                .store
                .select(&Select::all(Table::Departments, actor.company_id.0, now))
                .await?
                .rows,
        );
        Ok((users, departments))
    }

    /// How exports name customer pools (a customer's 所属公海): by name, the
    /// way an import into a pool names them; the company's live pools.
    pub(crate) async fn export_pool_names(&self, actor: &Actor) -> Result<HashMap<Uuid, String>> {
        Ok(names_by_id(
            &self
                .store
                .select(&Select::all(Table::Pools, actor.company_id.0, self.now()))
                .await?
                .rows,
        ))
    }

    /// The names of the `target` records among `ids` that the actor may
    /// read (live or archived, and with `deleted` those in the recycle bin
    /// too, as [`Crm::get_record`] reads them), as the target's name rule
    /// shows them (masked or not at all); the others are left out.
    pub(crate) async fn readable_names(
        &self,
        actor: &Actor,
        target: Entity,
        ids: Vec<Value>,
        deleted: bool,
    ) -> Result<HashMap<Uuid, String>> {
        let mut names = HashMap::new();
        if ids.is_empty() {
            return Ok(names);
        }
        let name_access = actor.field_access(target, "name");
        let Some(scope) = actor.store_scope(target, Action::Read) else {
            return Ok(names);
        };
        if name_access == FieldAccess::Hidden {
            return Ok(names);
        }
        let mut sel = Select::all(target.table(), actor.company_id.0, self.now());
        sel.lifecycle = Lifecycle::Any;
        sel.scope = scope;
        sel.filter = if deleted {
            Filter::In(Col::Column("id"), ids)
        } else {
            Filter::And(vec![
                Filter::In(Col::Column("id"), ids),
                Filter::IsNull(Col::Column("deleted_at")),
            ])
        };
        let style = target
            .field("name")
            .map(FieldDef::mask_style)
            .unwrap_or(crate::entity::MaskStyle::Text);
        for row in self.store.select(&sel).await?.rows {
            let name = row_label_name(&row);
            let name = if name_access == FieldAccess::Masked {
                mask(style, &name)
            } else {
                name
            };
            names.insert(row.id(), name);
        }
        Ok(names)
    }

    /// The store query of an export without a search text, resolved once:
    /// the same conditions, scope and sort as [`Crm::list_records`].
    async fn direct_export(
        &self,
        actor: &Actor,
        entity: Entity,
        query: &ListQuery,
        customs: &[CustomFieldDef],
    ) -> Result<Direct> {
        let (scope, widened) = crate::records::read_scope(actor, entity, self.now());
        let mut filters = Vec::with_capacity(query.conditions.len() + 2);
        filters.push(export_scope(actor, entity, self.now()));
        filters.push(widened);
        for c in &crate::query::prepared_conditions(&query.conditions)? {
            filters.push(self.resolve_cond(actor, entity, c, customs).await?);
        }
        crate::records::check_filter_weight(&filters[2..])?;
        let mut sort = Vec::with_capacity(query.sort.len());
        for s in &query.sort {
            let col = self.sort_col(actor, entity, &s.field, customs)?;
            sort.push(Sort { col, desc: s.desc });
        }
        Ok(Direct {
            scope,
            filters,
            sort,
            lifecycle: query.lifecycle,
            after: None,
        })
    }
}

/// How a contact export writes a contact's customer that the actor may
/// not read, or whose name is hidden from them (a customer outside their
/// read scope, say — the contact shared with them): neither its name nor
/// its id, but this marker, as a masked pool is written. The contact
/// import reads it back in the customer column as "the contact keeps its
/// customer" (see [`crate::import::ColumnRole::Field`]); a customer named
/// exactly so is named by code or id there.
pub const NOT_SHOWN: &str = "***";

/// What stands for a referenced record the reader may not read, in place
/// of its id and name, e.g. `（无权查看的客户）(hidden customer)` for a
/// follow-up's customer that was transferred away from its author: how the
/// lists and exports of follow-ups show it (a contact export writes
/// [`NOT_SHOWN`], which its import reads back). Follow-ups are not imported,
/// so no import reads it.
pub fn hidden_record(target: Entity) -> String {
    format!("（无权查看的{}）(hidden {target})", target.name_zh())
}

/// The key of a contact export's column of its customer's code.
const CUSTOMER_CODE_KEY: &str = "customer_code";

/// Whether a pick names the customer code column (either header).
fn is_customer_code_pick(p: &str) -> bool {
    p == CUSTOMER_CODE_HEADERS.0 || p.eq_ignore_ascii_case(CUSTOMER_CODE_HEADERS.1)
}

/// A contact export's column of the customer's code (客户编号, read back by
/// the contact import: [`crate::import::ColumnRole::CustomerCode`]), when
/// the actor may read customers and sees the contact's customer, and no
/// custom field of contacts is labelled like it (an import would read the
/// column as that field).
fn customer_code_column(
    actor: &Actor,
    entity: Entity,
    customs: &[CustomFieldDef],
) -> Option<ExportColumn> {
    let (zh, en) = CUSTOMER_CODE_HEADERS;
    let taken = customs.iter().any(|d| {
        crate::import::clean_header(&d.label) == zh
            || d.label_en
                .as_deref()
                .is_some_and(|l| crate::import::clean_header(l).eq_ignore_ascii_case(en))
    });
    (entity == Entity::Contact
        && !taken
        && actor.can(Entity::Customer, Action::Read)
        && actor.field_access(entity, "customer_id") != FieldAccess::Hidden)
        .then(|| ExportColumn {
            key: CUSTOMER_CODE_KEY.into(),
            header_zh: zh.into(),
            header_en: en.into(),
            kind: ValueKind::Text,
        })
}

/// Refuses what the record export does not cover: the records with fields
/// of their own in [`Entity::fields`] (customers, contacts, follow-ups);
/// products and the sales documents have exports of their own.
fn exportable(entity: Entity) -> Result<()> {
    match entity {
        Entity::Customer | Entity::Contact | Entity::FollowUp => return Ok(()),
        Entity::Opportunity | Entity::Quote | Entity::Contract => {
            return Err(Error::invalid(
                "entity",
                format!(
                    "{entity} records are exported as a sales list (Crm::sales_export_cursor), not as records"
                ),
            ));
        }
        _ => {}
    }
    Err(Error::invalid(
        "entity",
        format!(
            "{entity} records cannot be exported: exports cover customers, contacts, follow-ups, products, opportunities, quotes and contracts"
        ),
    ))
}

/// The rows the actor's export grant covers, as a filter beside the read
/// scope: an export holds only what the actor may both read and export
/// (`customer:read:all` with `customer:export:own` exports their own
/// customers and those shared with them). A follow-up grant reaches the
/// follow-ups of the customers it would reach too, as reading does
/// (`followup:export:own` exports the follow-ups of one's own customers,
/// whoever logged them).
pub(crate) fn export_scope(
    actor: &Actor,
    entity: Entity,
    now: chrono::DateTime<chrono::Utc>,
) -> Filter {
    match actor.store_scope(entity, Action::Export) {
        None => Filter::Or(Vec::new()),
        Some(Scope::All) => Filter::True,
        Some(s) if entity == Entity::FollowUp => Filter::Or(vec![
            s.as_filter(entity.table(), now),
            Filter::Refers {
                fk: "customer_id",
                table: crate::schema::Table::Customers,
                filter: Box::new(s.as_filter(crate::schema::Table::Customers, now)),
            },
        ]),
        Some(s) => s.as_filter(entity.table(), now),
    }
}

/// Where an export's rows come from.
enum Source {
    /// Through [`Crm::list_records`] (exports with a search text).
    Listed {
        query: ListQuery,
        after: Option<String>,
        last_id: Option<Uuid>,
        /// The export grant's scope (see [`export_scope`]).
        narrow: Filter,
    },
    /// Straight from the store, with the list query resolved once.
    Direct(Direct),
}

/// A resolved export query.
struct Direct {
    scope: Scope,
    filters: Vec<Filter>,
    /// Empty: by id.
    sort: Vec<Sort>,
    lifecycle: Lifecycle,
    /// The position of the last row read: its sort values and its id (by id:
    /// the id alone).
    after: Option<Vec<Value>>,
}

/// Reads an export page by page; only one page is in memory at a time.
pub struct ExportCursor<'a> {
    crm: &'a Crm,
    actor: Actor,
    entity: Entity,
    source: Source,
    convert: ExportConverter,
    page_size: u64,
    by_id: bool,
    done: bool,
}

impl std::fmt::Debug for ExportCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportCursor")
            .field("entity", &self.entity)
            .field("columns", &self.convert.0.columns.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// One page of an export as read from the store, before its values are
/// built: field rules are applied when [`ExportConverter`] turns it into
/// rows, which may happen on another thread than the reading.
pub struct ExportBatch {
    items: Items,
    refs: HashMap<Uuid, String>,
    /// The codes of the contacts' customers the actor may read (contact
    /// exports with a customer code column).
    codes: HashMap<Uuid, String>,
}

enum Items {
    Records(Vec<Record>),
    Rows(Vec<Row>),
}

impl ExportBatch {
    /// The number of rows.
    pub fn len(&self) -> usize {
        match &self.items {
            Items::Records(r) => r.len(),
            Items::Rows(r) => r.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for ExportBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportBatch")
            .field("rows", &self.len())
            .finish_non_exhaustive()
    }
}

impl ExportCursor<'_> {
    /// The columns.
    pub fn columns(&self) -> &[ExportColumn] {
        &self.convert.0.columns
    }

    /// What turns this export's batches into rows of values; it can be sent
    /// to another thread.
    pub fn converter(&self) -> ExportConverter {
        self.convert.clone()
    }

    /// The next page of rows, `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Vec<ExportValue>>>> {
        Ok(self.next_batch().await?.map(|b| self.convert.rows(b)))
    }

    /// The next page as read from the store, `None` at the end; turn it
    /// into rows with [`ExportCursor::converter`].
    pub async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        if self.done {
            return Ok(None);
        }
        let items = match &mut self.source {
            Source::Listed {
                query,
                after,
                last_id,
                narrow,
            } => {
                let mut q = query.clone();
                if self.by_id {
                    if let Some(last) = *last_id {
                        q.conditions.push(crate::query::Cond::Gt(
                            "id".into(),
                            Json::String(last.to_string()),
                        ));
                    }
                    q.page = PageRequest::Offset {
                        page: 1,
                        per_page: self.page_size,
                    };
                } else {
                    q.page = PageRequest::Keyset {
                        after: after.clone(),
                        limit: self.page_size,
                    };
                }
                q.with_total = false;
                let page = self
                    .crm
                    .list_records_with(&self.actor, self.entity, &q, None, narrow.clone())
                    .await?;
                if self.by_id {
                    *last_id = page.items.last().map(|r| r.id.0);
                    self.done = !page.has_more || last_id.is_none();
                } else {
                    after.clone_from(&page.next_cursor);
                    self.done = !page.has_more || after.is_none();
                }
                Items::Records(page.items)
            }
            Source::Direct(d) => {
                let mut filters = d.filters.clone();
                let (sort, paging) = if d.sort.is_empty() {
                    if let Some(last) = d.after.as_ref().and_then(|a| a.first()) {
                        filters.push(Filter::Cmp(Col::Column("id"), CmpOp::Gt, last.clone()));
                    }
                    (
                        vec![Sort {
                            col: Col::Column("id"),
                            desc: false,
                        }],
                        Paging::Offset {
                            offset: 0,
                            limit: self.page_size,
                        },
                    )
                } else {
                    (
                        d.sort.clone(),
                        Paging::Keyset {
                            after: d.after.clone(),
                            limit: self.page_size,
                        },
                    )
                };
                let sel = Select {
                    table: self.entity.table(),
                    company: self.actor.company_id.0,
                    lifecycle: d.lifecycle,
                    scope: d.scope.clone(),
                    filter: Filter::And(filters),
                    sort,
                    paging,
                    with_total: false,
                    now: self.crm.now(),
                };
                let res = self.crm.store.select(&sel).await?;
                d.after = res.rows.last().map(|last| {
                    let mut vals: Vec<Value> =
                        d.sort.iter().map(|s| sort_value(last, &s.col)).collect();
                    vals.push(Value::Id(last.id()));
                    vals
                });
                self.done = !res.has_more || d.after.is_none();
                Items::Rows(res.rows)
            }
        };
        let refs = self.refs(&items).await?;
        let codes = self.customer_codes(&items).await?;
        let batch = ExportBatch { items, refs, codes };
        if batch.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(batch))
    }

    /// Names of the records the page refers to (contacts' customer), one
    /// query per referenced entity.
    async fn refs(&self, items: &Items) -> Result<HashMap<Uuid, String>> {
        let mut refs: HashMap<Uuid, String> = HashMap::new();
        for r in &self.convert.0.ref_fields {
            let ids: Vec<Value> = match items {
                Items::Records(recs) => recs
                    .iter()
                    .filter_map(|rec| rec.fields.get(r.def.name).and_then(Json::as_str))
                    .filter_map(|s| Uuid::parse_str(s).ok())
                    .map(Value::Id)
                    .collect(),
                Items::Rows(rows) => match r.index {
                    Some(i)
                        if r.access == FieldAccess::Full || r.access == FieldAccess::ReadOnly =>
                    {
                        rows.iter()
                            .filter_map(|row| match row.values.get(i) {
                                Some(Value::Id(u)) => Some(*u),
                                Some(Value::Text(s)) => Uuid::parse_str(s).ok(),
                                _ => None,
                            })
                            .map(Value::Id)
                            .collect()
                    }
                    _ => Vec::new(),
                },
            };
            if ids.is_empty() {
                continue;
            }
            // Only names the actor may see, as the target's name rule shows
            // them (for the others see `Converter::ref_value`). A contact
            // export names live customers only: its import resolves the
            // name among them (and reads [`NOT_SHOWN`] back as "keeps its
            // customer"); the others name one in the recycle bin as the
            // lists do.
            let deleted = !self.convert.0.contact_export;
            refs.extend(
                self.crm
                    .readable_names(&self.actor, r.target, ids, deleted)
                    .await?,
            );
        }
        Ok(refs)
    }
}

impl ExportCursor<'_> {
    /// The codes of the customers of a contact page, when the export has a
    /// customer code column: those the actor may read (one scoped query),
    /// as their names are; the others stay empty.
    async fn customer_codes(&self, items: &Items) -> Result<HashMap<Uuid, String>> {
        let mut codes = HashMap::new();
        let Some(index) = self.convert.0.plans.iter().find_map(|p| match p {
            Plan::CustomerCode(i) => Some(*i),
            _ => None,
        }) else {
            return Ok(codes);
        };
        // Listed masked, a customer is no id: no code either.
        let ids: Vec<Value> = match items {
            Items::Records(recs) => recs
                .iter()
                .filter_map(|rec| rec.fields.get("customer_id").and_then(Json::as_str))
                .filter_map(|s| Uuid::parse_str(s).ok())
                .map(Value::Id)
                .collect(),
            Items::Rows(rows) if self.convert.0.customer_shown => rows
                .iter()
                .filter_map(|row| value_at(row, index).and_then(stored_id))
                .map(Value::Id)
                .collect(),
            Items::Rows(_) => Vec::new(),
        };
        let Some(scope) = self.actor.store_scope(Entity::Customer, Action::Read) else {
            return Ok(codes);
        };
        let mut ids = ids;
        ids.sort_by_key(|v| v.as_id());
        ids.dedup();
        for chunk in ids.chunks(1000) {
            let mut sel = Select::all(Table::Customers, self.actor.company_id.0, self.crm.now());
            sel.lifecycle = Lifecycle::Any;
            sel.scope = scope.clone();
            sel.filter = Filter::And(vec![
                Filter::In(Col::Column("id"), chunk.to_vec()),
                Filter::IsNull(Col::Column("deleted_at")),
            ]);
            for row in self.crm.store.select(&sel).await?.rows {
                if let Some(code) = row.get("code").as_text() {
                    codes.insert(row.id(), code.to_string());
                }
            }
        }
        Ok(codes)
    }
}

/// The value a row has for a sort key, as the store compares it (as the
/// list query's keyset cursor holds it).
fn sort_value(row: &Row, col: &Col) -> Value {
    match col {
        Col::Column(c) => row.get(c).clone(),
        Col::Custom { key, ty } => {
            let v = row
                .get("custom")
                .as_json()
                .and_then(|j| j.get(key))
                .cloned()
                .unwrap_or(Json::Null);
            match (ty, v) {
                (CustomType::Number, Json::Number(n)) => {
                    Value::Float(n.as_f64().unwrap_or_default())
                }
                (CustomType::Bool, Json::Bool(b)) => Value::Bool(b),
                (CustomType::Text, Json::String(s)) => Value::Text(s),
                _ => Value::Null,
            }
        }
    }
}

/// Turns [`ExportBatch`]es into rows of [`ExportValue`]s, applying the
/// actor's field rules (hidden fields are empty, masked ones masked); cheap
/// to clone and can be sent to another thread.
#[derive(Clone)]
pub struct ExportConverter(Arc<Converter>);

impl std::fmt::Debug for ExportConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportConverter")
            .field("columns", &self.0.columns.len())
            .finish_non_exhaustive()
    }
}

impl ExportConverter {
    /// The cells one stored row gives, without the names of the records it
    /// refers to (for the columns [`Crm::masked_view`] picks, whose values
    /// name nothing).
    pub(crate) fn stored_cells(&self, row: Row) -> Vec<ExportValue> {
        let mut out = Vec::with_capacity(self.0.plans.len());
        self.0
            .store_row(row, &HashMap::new(), &HashMap::new(), &mut out);
        out
    }

    /// The rows of a batch.
    pub fn rows(&self, batch: ExportBatch) -> Vec<Vec<ExportValue>> {
        let mut out = Vec::with_capacity(batch.len());
        let _ = self.for_each_row(batch, |row| {
            out.push(std::mem::take(row));
            Ok::<(), std::convert::Infallible>(())
        });
        out
    }

    /// Calls `f` with each row of a batch in turn, in one buffer that `f`
    /// may empty (e.g. by draining it); stops at the first error.
    pub fn for_each_row<E>(
        &self,
        batch: ExportBatch,
        mut f: impl FnMut(&mut Vec<ExportValue>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let c = &*self.0;
        let refs = &batch.refs;
        let codes = &batch.codes;
        let mut row = Vec::with_capacity(c.plans.len());
        match batch.items {
            Items::Records(recs) => {
                for rec in recs {
                    row.clear();
                    c.record_row(rec, refs, codes, &mut row);
                    f(&mut row)?;
                }
            }
            Items::Rows(rows) => {
                for r in rows {
                    row.clear();
                    c.store_row(r, refs, codes, &mut row);
                    f(&mut row)?;
                }
            }
        }
        Ok(())
    }
}

/// How one column's value is found.
enum Plan {
    Code(Option<usize>),
    /// The record's version.
    Version(Option<usize>),
    Owner(Option<usize>),
    Department(Option<usize>),
    Created(Option<usize>),
    Updated(Option<usize>),
    /// A contact's customer (`customer_id` at the index) by its code.
    CustomerCode(Option<usize>),
    /// A customer's pool (`pool_id`), by the pool's name.
    Pool {
        index: Option<usize>,
        masked: bool,
    },
    Field {
        def: &'static FieldDef,
        index: Option<usize>,
        masked: bool,
        take: bool,
    },
    Custom {
        key: String,
        ty: CustomFieldType,
        masked: bool,
        take: bool,
    },
    /// A hidden or unknown field.
    Empty,
}

struct RefField {
    def: &'static FieldDef,
    target: Entity,
    index: Option<usize>,
    access: FieldAccess,
}

/// The names an export shows for the ids a record holds.
struct Labels {
    users: HashMap<Uuid, String>,
    departments: HashMap<Uuid, String>,
    pools: HashMap<Uuid, String>,
}

struct Converter {
    columns: Vec<ExportColumn>,
    plans: Vec<Plan>,
    /// Whether the actor sees contacts' customers in full (not masked):
    /// only then is a customer code column filled.
    customer_shown: bool,
    /// Whether this is a contact export (see [`Converter::ref_value`]).
    contact_export: bool,
    ref_fields: Vec<RefField>,
    custom_index: Option<usize>,
    users: HashMap<Uuid, String>,
    departments: HashMap<Uuid, String>,
    pools: HashMap<Uuid, String>,
    offset: FixedOffset,
}

impl Converter {
    fn new(
        entity: Entity,
        actor: &Actor,
        columns: Vec<ExportColumn>,
        customs: &[CustomFieldDef],
        labels: Labels,
        offset: FixedOffset,
    ) -> Converter {
        let table_columns = entity.table().columns();
        let index = |name: &str| table_columns.iter().position(|c| c.name == name);
        // A value read by one column only is moved, not copied (the
        // customer code column reads the customer too).
        let with_code = columns.iter().any(|c| c.key == CUSTOMER_CODE_KEY);
        let once = |key: &str| {
            columns.iter().filter(|c| c.key == key).count() == 1
                && !(with_code && key == "customer_id")
        };
        let plans = columns
            .iter()
            .map(|c| match c.key.as_str() {
                "code" => Plan::Code(index("code")),
                VERSION_KEY => Plan::Version(index(VERSION_KEY)),
                "owner_id" => Plan::Owner(index("owner_id")),
                "department_id" => Plan::Department(index("department_id")),
                "created_at" => Plan::Created(index("created_at")),
                "updated_at" => Plan::Updated(index("updated_at")),
                CUSTOMER_CODE_KEY if entity == Entity::Contact => {
                    Plan::CustomerCode(index("customer_id"))
                }
                key => match key.strip_prefix("custom.") {
                    Some(k) => match customs.iter().find(|d| d.key == k) {
                        Some(d) => match actor.field_access(entity, &format!("custom.{}", d.key)) {
                            FieldAccess::Hidden => Plan::Empty,
                            access => Plan::Custom {
                                key: d.key.clone(),
                                ty: d.field_type,
                                masked: access == FieldAccess::Masked,
                                take: once(key),
                            },
                        },
                        None => Plan::Empty,
                    },
                    None => match entity.fields().iter().find(|d| d.name == key) {
                        Some(def) => match actor.field_access(entity, def.name) {
                            FieldAccess::Hidden => Plan::Empty,
                            access if entity == Entity::Customer && def.name == "pool_id" => {
                                Plan::Pool {
                                    index: index(def.name),
                                    masked: access == FieldAccess::Masked,
                                }
                            }
                            access => Plan::Field {
                                def,
                                index: index(def.name),
                                masked: access == FieldAccess::Masked,
                                take: once(key),
                            },
                        },
                        None => Plan::Empty,
                    },
                },
            })
            .collect();
        let picked: Vec<&str> = columns
            .iter()
            .filter_map(|c| entity.field(&c.key).map(|d| d.name))
            .collect();
        let ref_fields = entity
            .fields()
            .iter()
            .filter_map(|def| match def.kind {
                FieldKind::Ref(target) if picked.contains(&def.name) => Some(RefField {
                    def,
                    target,
                    index: index(def.name),
                    access: actor.field_access(entity, def.name),
                }),
                _ => None,
            })
            .collect();
        let customer_shown = entity == Entity::Contact
            && matches!(
                actor.field_access(entity, "customer_id"),
                FieldAccess::Full | FieldAccess::ReadOnly
            );
        Converter {
            custom_index: index("custom"),
            columns,
            plans,
            customer_shown,
            contact_export: entity == Entity::Contact,
            ref_fields,
            users: labels.users,
            departments: labels.departments,
            pools: labels.pools,
            offset,
        }
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.offset).naive_local()
    }

    fn user(&self, id: Option<Uuid>) -> ExportValue {
        id.and_then(|o| self.users.get(&o).cloned())
            .map(ExportValue::Text)
            .unwrap_or(ExportValue::Empty)
    }

    fn department(&self, id: Option<Uuid>) -> ExportValue {
        id.and_then(|d| self.departments.get(&d).cloned())
            .map(ExportValue::Text)
            .unwrap_or(ExportValue::Empty)
    }

    /// A customer's pool by its name; a pool no longer there stays empty
    /// rather than an id. A masked pool is `***` (as a masked product cost
    /// is): the list hands out a masked field without its id, so both
    /// ways of reading rows give the same cell.
    ///
    /// `stored` is the pool as either way of reading rows holds it: an id
    /// (or its text) from the store, the listed text from a record (which
    /// for a masked pool is no id).
    fn pool(&self, stored: Option<&Value>, masked: bool) -> ExportValue {
        match stored {
            None | Some(Value::Null) => ExportValue::Empty,
            Some(_) if masked => ExportValue::Text("***".into()),
            Some(v) => stored_id(v)
                .and_then(|p| self.pools.get(&p).cloned())
                .map(ExportValue::Text)
                .unwrap_or(ExportValue::Empty),
        }
    }

    /// A row from a record as [`Crm::list_records`] shows it (field rules
    /// already applied).
    fn record_row(
        &self,
        mut rec: Record,
        refs: &HashMap<Uuid, String>,
        codes: &HashMap<Uuid, String>,
        out: &mut Vec<ExportValue>,
    ) {
        for p in &self.plans {
            let v = match p {
                Plan::Code(_) => rec
                    .code
                    .clone()
                    .map(ExportValue::Text)
                    .unwrap_or(ExportValue::Empty),
                Plan::Version(_) => ExportValue::Number(rec.version as f64),
                Plan::Owner(_) => self.user(rec.owner_id.map(|o| o.0)),
                Plan::CustomerCode(_) => customer_code(
                    codes,
                    rec.fields
                        .get("customer_id")
                        .and_then(Json::as_str)
                        .and_then(|s| Uuid::parse_str(s).ok()),
                ),
                Plan::Department(_) => self.department(rec.department_id.map(|d| d.0)),
                Plan::Created(_) => ExportValue::DateTime(self.local(rec.created_at)),
                Plan::Updated(_) => ExportValue::DateTime(self.local(rec.updated_at)),
                Plan::Pool { masked, .. } => {
                    let listed = rec
                        .fields
                        .get("pool_id")
                        .and_then(Json::as_str)
                        .map(|s| Value::Text(s.to_string()));
                    self.pool(listed.as_ref(), *masked)
                }
                Plan::Field { def, take, .. } => {
                    let v = if *take {
                        rec.fields.remove(def.name)
                    } else {
                        rec.fields.get(def.name).cloned()
                    };
                    match v {
                        Some(v) if !v.is_null() => self.builtin_value(def.kind, v, refs),
                        _ => ExportValue::Empty,
                    }
                }
                Plan::Custom { key, ty, take, .. } => {
                    let v = if *take {
                        rec.custom.remove(key)
                    } else {
                        rec.custom.get(key).cloned()
                    };
                    match v {
                        Some(v) if !v.is_null() => self.custom_value(*ty, v),
                        _ => ExportValue::Empty,
                    }
                }
                Plan::Empty => ExportValue::Empty,
            };
            out.push(v);
        }
    }

    /// A row straight from the store, with the field rules applied here as
    /// [`Crm::list_records`] applies them.
    fn store_row(
        &self,
        mut row: Row,
        refs: &HashMap<Uuid, String>,
        codes: &HashMap<Uuid, String>,
        out: &mut Vec<ExportValue>,
    ) {
        let mut custom = match self
            .custom_index
            .and_then(|i| row.values.get_mut(i))
            .map(|v| std::mem::replace(v, Value::Null))
        {
            Some(Value::Json(Json::Object(m))) => m,
            _ => serde_json::Map::new(),
        };
        for p in &self.plans {
            let v = match p {
                Plan::Code(i) => match value_at(&row, *i) {
                    Some(Value::Text(s)) => ExportValue::Text(s.clone()),
                    _ => ExportValue::Empty,
                },
                Plan::Version(i) => value_at(&row, *i)
                    .and_then(Value::as_int)
                    .map(|v| ExportValue::Number(v as f64))
                    .unwrap_or(ExportValue::Empty),
                Plan::Owner(i) => self.user(value_at(&row, *i).and_then(Value::as_id)),
                Plan::CustomerCode(i) => customer_code(
                    codes,
                    value_at(&row, *i)
                        .filter(|_| self.customer_shown)
                        .and_then(stored_id),
                ),
                Plan::Department(i) => self.department(value_at(&row, *i).and_then(Value::as_id)),
                Plan::Pool { index, masked } => self.pool(value_at(&row, *index), *masked),
                Plan::Created(i) | Plan::Updated(i) => ExportValue::DateTime(
                    self.local(
                        value_at(&row, *i)
                            .and_then(Value::as_timestamp)
                            .unwrap_or_default(),
                    ),
                ),
                Plan::Field {
                    def,
                    index,
                    masked,
                    take,
                } => {
                    let v = match index.and_then(|i| row.values.get_mut(i)) {
                        Some(v) if *take => std::mem::replace(v, Value::Null),
                        Some(v) => v.clone(),
                        None => Value::Null,
                    };
                    self.stored_builtin(def, v, *masked, refs)
                }
                Plan::Custom {
                    key,
                    ty,
                    masked,
                    take,
                } => {
                    let mut v = if *take {
                        custom.remove(key)
                    } else {
                        custom.get(key).cloned()
                    }
                    .unwrap_or(Json::Null);
                    if *ty == CustomFieldType::MultiSelect
                        && let Json::String(joined) = v
                    {
                        v = tags_json(Some(&joined));
                    }
                    if *masked {
                        v = crate::records::mask_json(MaskStyle::Text, v);
                    }
                    if v.is_null() {
                        ExportValue::Empty
                    } else {
                        self.custom_value(*ty, v)
                    }
                }
                Plan::Empty => ExportValue::Empty,
            };
            out.push(v);
        }
    }

    /// A built-in field's stored value, shown as [`Crm::list_records`]
    /// shows it (tags as a list, masked text masked).
    fn stored_builtin(
        &self,
        def: &FieldDef,
        v: Value,
        masked: bool,
        refs: &HashMap<Uuid, String>,
    ) -> ExportValue {
        if def.kind == FieldKind::Tags {
            let tags = tags_json(v.as_text());
            let tags = if masked {
                crate::records::mask_json(def.mask_style(), tags)
            } else {
                tags
            };
            return self.builtin_value(def.kind, tags, refs);
        }
        if !masked {
            // The common cases without the detour through JSON text.
            match (def.kind, &v) {
                (_, Value::Null) => return ExportValue::Empty,
                (FieldKind::Date, Value::Date(d)) => return ExportValue::Date(*d),
                (FieldKind::DateTime, Value::Timestamp(t)) => {
                    // As listed: RFC 3339 with microseconds.
                    let t = *t
                        - chrono::Duration::nanoseconds(i64::from(
                            t.timestamp_subsec_nanos() % 1000,
                        ));
                    return ExportValue::DateTime(self.local(t));
                }
                (FieldKind::Ref(target), Value::Id(u)) => {
                    return self.ref_value(refs, target, *u);
                }
                _ => {}
            }
        }
        let mut j = into_json(v);
        if masked {
            j = crate::records::mask_json(def.mask_style(), j);
        }
        if j.is_null() {
            ExportValue::Empty
        } else {
            self.builtin_value(def.kind, j, refs)
        }
    }

    /// A referenced record (a contact's customer, a follow-up's customer
    /// or contact) by the name the actor may read; else a contact's
    /// customer as [`NOT_SHOWN`], which the contact import reads back, and
    /// the others as [`hidden_record`] says, as the lists show them: never
    /// by id (which would tell what the actor may not read).
    fn ref_value(&self, refs: &HashMap<Uuid, String>, target: Entity, id: Uuid) -> ExportValue {
        ExportValue::Text(match refs.get(&id) {
            Some(name) => name.clone(),
            None if self.contact_export => NOT_SHOWN.to_string(),
            None => hidden_record(target),
        })
    }

    /// A built-in field's (non-null) value as listed.
    fn builtin_value(&self, kind: FieldKind, v: Json, refs: &HashMap<Uuid, String>) -> ExportValue {
        match (kind, v) {
            (FieldKind::Date, Json::String(s)) => match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
                Ok(d) => ExportValue::Date(d),
                Err(_) => ExportValue::Text(s),
            },
            (FieldKind::DateTime, Json::String(s)) => {
                match chrono::DateTime::parse_from_rfc3339(&s) {
                    Ok(t) => ExportValue::DateTime(self.local(t.with_timezone(&Utc))),
                    Err(_) => ExportValue::Text(s),
                }
            }
            (FieldKind::Enum(opts), Json::String(s)) => ExportValue::Text(
                opts.iter()
                    .find(|(a, _)| *a == s)
                    .map(|(_, zh)| zh.to_string())
                    .unwrap_or(s),
            ),
            // (A masked reference is no id: it stays as masked.)
            (FieldKind::Ref(target), Json::String(s)) => match Uuid::parse_str(&s) {
                Ok(u) => self.ref_value(refs, target, u),
                Err(_) => ExportValue::Text(s),
            },
            (_, Json::Array(a)) => {
                ExportValue::Text(a.iter().filter_map(json_text).collect::<Vec<_>>().join(","))
            }
            // Flags (锁定) and counts (进行中商机数) as a spreadsheet's
            // booleans and numbers, as custom fields of those types are.
            (_, Json::Bool(b)) => ExportValue::Bool(b),
            (_, Json::Number(n)) => match exact_number(&n) {
                Some(f) => ExportValue::Number(f),
                None => text_value(Json::Number(n)),
            },
            (_, other) => text_value(other),
        }
    }

    /// A custom field's (non-null) value as listed.
    fn custom_value(&self, ty: CustomFieldType, v: Json) -> ExportValue {
        match (ty, v) {
            (CustomFieldType::Number, Json::Number(n)) => {
                ExportValue::Number(n.as_f64().unwrap_or_default())
            }
            (CustomFieldType::Money, Json::Number(n)) => match n.as_i64() {
                Some(m) => ExportValue::Money(m),
                None => ExportValue::Number(n.as_f64().unwrap_or_default()),
            },
            (CustomFieldType::Boolean, Json::Bool(b)) => ExportValue::Bool(b),
            (CustomFieldType::Date, Json::String(s)) => {
                match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
                    Ok(d) => ExportValue::Date(d),
                    Err(_) => ExportValue::Text(s),
                }
            }
            (CustomFieldType::User, Json::String(s)) => ExportValue::Text(
                Uuid::parse_str(&s)
                    .ok()
                    .and_then(|u| self.users.get(&u).cloned())
                    .unwrap_or(s),
            ),
            (_, Json::Array(a)) => ExportValue::Text(
                a.iter()
                    .filter_map(json_text)
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
            (_, other) => text_value(other),
        }
    }
}

/// The code of a contact's customer, empty when the actor may not read it.
fn customer_code(codes: &HashMap<Uuid, String>, id: Option<Uuid>) -> ExportValue {
    id.and_then(|c| codes.get(&c).cloned())
        .map(ExportValue::Text)
        .unwrap_or(ExportValue::Empty)
}

/// An id as a store hands it out (an id, or its text).
fn stored_id(v: &Value) -> Option<Uuid> {
    match v {
        Value::Text(s) => Uuid::parse_str(s).ok(),
        other => other.as_id(),
    }
}

fn value_at(row: &Row, i: Option<usize>) -> Option<&Value> {
    i.and_then(|i| row.values.get(i))
}

/// What a built-in field's exported values are: its kind's, but for the
/// customer fields the store keeps as a flag or a count (read-only text
/// fields to the record path), exported as a boolean and a number.
fn stored_kind(entity: Entity, d: &FieldDef) -> ValueKind {
    match (entity, d.name) {
        (Entity::Customer, "locked") => ValueKind::Bool,
        (Entity::Customer, "open_opportunities") => ValueKind::Number,
        _ => kind_value(d.kind),
    }
}

/// A JSON number as a spreadsheet number, when the spreadsheet keeps it
/// exactly (integers up to 2^53; a spreadsheet holds doubles).
fn exact_number(n: &serde_json::Number) -> Option<f64> {
    const EXACT: u64 = 1 << 53;
    if let Some(i) = n.as_i64() {
        (i.unsigned_abs() <= EXACT).then_some(i as f64)
    } else if let Some(u) = n.as_u64() {
        (u <= EXACT).then_some(u as f64)
    } else {
        n.as_f64().filter(|f| f.is_finite())
    }
}

/// A value as text (trimmed, without NUL), moving the string when it is
/// already clean.
fn text_value(v: Json) -> ExportValue {
    match v {
        Json::String(s) if !s.is_empty() && s.trim().len() == s.len() && !s.contains('\0') => {
            ExportValue::Text(s)
        }
        other => json_text(&other)
            .map(ExportValue::Text)
            .unwrap_or(ExportValue::Empty),
    }
}

/// A tags column (`a,b,c`) as the list the API shows.
fn tags_json(s: Option<&str>) -> Json {
    match s {
        Some(s) => Json::Array(
            s.split(',')
                .filter(|t| !t.is_empty())
                .map(|t| Json::String(t.to_string()))
                .collect(),
        ),
        None => Json::Array(Vec::new()),
    }
}

/// [`Value::to_json`], moving text and documents.
fn into_json(v: Value) -> Json {
    match v {
        Value::Text(s) => Json::String(s),
        Value::Json(j) => j,
        other => other.to_json(),
    }
}

// ---------------------------------------------------------------------------
// Product exports
// ---------------------------------------------------------------------------

impl Crm {
    /// The columns of a product export: the product import's fields with
    /// its headers, so that an exported price list imports back (prices
    /// as money, the category as `parent/child`, the tax rate as `13%`, the
    /// status as 在售/停售). Needs `product:export`.
    fn product_export_columns(&self, actor: &Actor, picks: &[String]) -> Result<Vec<ExportColumn>> {
        if !actor.can(Entity::Product, Action::Export) {
            return Err(Error::Forbidden(format!(
                "{} may not export products",
                actor.display_name
            )));
        }
        let column = |d: &FieldDef| ExportColumn {
            key: d.name.to_string(),
            header_zh: d.zh.to_string(),
            header_en: d.en.to_string(),
            kind: crate::import::field_value_kind(Entity::Product, d),
        };
        // Read back by a price-list import (update policy): a row exported
        // before the product's latest change is refused, not written over it.
        let version = || ExportColumn {
            key: VERSION_KEY.to_string(),
            header_zh: VERSION_HEADERS.0.to_string(),
            header_en: VERSION_HEADERS.1.to_string(),
            kind: ValueKind::Number,
        };
        // A cost a field rule hides is no column; a masked one shows `***`.
        // Without a pick, the cost is a column only for who may set it, so
        // that the default export imports back as a price list.
        let cost = |d: &FieldDef| d.name == crate::sales::product::COST_FIELD;
        let access = actor.field_access(Entity::Product, crate::sales::product::COST_FIELD);
        let hidden = |d: &FieldDef| cost(d) && access == FieldAccess::Hidden;
        if picks.is_empty() {
            return Ok(crate::import::PRODUCT_FIELDS
                .iter()
                .filter(|d| !cost(d) || access == FieldAccess::Full)
                .map(column)
                .chain([version()])
                .collect());
        }
        picks
            .iter()
            .map(|p| {
                let n = p.trim();
                if n.eq_ignore_ascii_case(VERSION_KEY)
                    || crate::import::is_version_header(Entity::Product, n)
                {
                    return Ok(version());
                }
                match crate::import::find_field(Entity::Product, n) {
                    Some(d) if hidden(d) => Err(Error::Forbidden(format!(
                        "{} may not see product.{} (column '{n}')",
                        actor.display_name, d.name
                    ))),
                    Some(d) => Ok(column(d)),
                    None => Err(Error::invalid(
                        "fields",
                        format!("products have no field '{n}'"),
                    )),
                }
            })
            .collect()
    }

    /// One page of a product export: the products `query` finds (its
    /// `page` and `per_page`), each as the values of `columns`, and whether
    /// more pages follow.
    pub async fn product_export_page(
        &self,
        actor: &Actor,
        columns: &[ExportColumn],
        query: &crate::sales::product::ProductQuery,
    ) -> Result<(Vec<Vec<ExportValue>>, bool)> {
        if !actor.can(Entity::Product, Action::Export) {
            return Err(Error::Forbidden(format!(
                "{} may not export products",
                actor.display_name
            )));
        }
        let cats = self.list_product_categories(actor).await?;
        let names: HashMap<Uuid, (String, Option<Uuid>)> = cats
            .iter()
            .map(|c| (c.id, (c.name.clone(), c.parent_id)))
            .collect();
        let path = |id: Uuid| -> String {
            match names.get(&id) {
                Some((name, Some(parent))) => match names.get(parent) {
                    Some((p, _)) => format!("{p}/{name}"),
                    None => name.clone(),
                },
                Some((name, None)) => name.clone(),
                None => id.to_string(),
            }
        };
        let page = self.list_products(actor, query).await?;
        let cost = actor.field_access(Entity::Product, crate::sales::product::COST_FIELD);
        let text = |s: &str| ExportValue::Text(s.to_string());
        let opt = |s: &Option<String>| s.as_deref().map_or(ExportValue::Empty, text);
        let rows = page
            .items
            .iter()
            .map(|p| {
                columns
                    .iter()
                    .map(|c| match c.key.as_str() {
                        "code" => text(&p.code),
                        "name" => text(&p.name),
                        "category_id" => p
                            .category_id
                            .map_or(ExportValue::Empty, |id| ExportValue::Text(path(id))),
                        "unit" => text(&p.unit),
                        "list_price" => ExportValue::Money(p.list_price.minor),
                        "cost" => match cost {
                            FieldAccess::Hidden => ExportValue::Empty,
                            FieldAccess::Masked => text("***"),
                            _ => p
                                .cost
                                .map_or(ExportValue::Empty, |m| ExportValue::Money(m.minor)),
                        },
                        "tax_rate" => ExportValue::Text(tax_rate_text(p.tax_rate)),
                        "spec" => opt(&p.spec),
                        "description" => opt(&p.description),
                        "status" => crate::import::PRODUCT_STATUSES
                            .iter()
                            .find(|(api, _)| *api == p.status.name())
                            .map_or(ExportValue::Empty, |(_, zh)| text(zh)),
                        VERSION_KEY => ExportValue::Number(p.version as f64),
                        _ => ExportValue::Empty,
                    })
                    .collect()
            })
            .collect();
        Ok((rows, page.has_more))
    }
}

/// A tax rate in basis points as a person writes it: `13%`, `13.5%`.
fn tax_rate_text(bp: i64) -> String {
    format!("{}%", bp as f64 / 100.0)
}

/// Rows' names by their ids (departments, pools).
fn names_by_id(rows: &[Row]) -> HashMap<Uuid, String> {
    rows.iter()
        .map(|r| {
            (
                r.id(),
                r.get("name").as_text().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
