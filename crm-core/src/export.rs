//! The core side of exports (导出): [`Crm::export_columns`] picks and labels
//! the columns and [`Crm::export_cursor`] walks the list the actor can see —
//! the same list query as the API (filters plus the actor's scope in one
//! store query, keyset paged), the field rules applied to every value, one
//! page in memory at a time. `crm-io` writes the workbook.
//!
//! Architecture invariant: nothing here writes files or names a backend; the
//! store is reached only through [`crate::store::Store`].

use crate::auth::{Action, Actor, FieldAccess};
use crate::crm::Crm;
use crate::custom::{CustomFieldDef, CustomFieldType};
use crate::entity::Entity;
use crate::entity::{FieldDef, FieldKind};
use crate::error::{Error, Result};
use crate::import::{ValueKind, custom_value_kind, kind_value, row_label_name};
use crate::query::{ListQuery, PageRequest};
use crate::records::json_text;
use crate::schema::Table;
use crate::store::{Col, Filter, Lifecycle, Select};
use crate::value::Value;
use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::HashMap;
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
    ("department_id", "所属部门", "Department", ValueKind::Text),
    ("created_at", "创建时间", "Created", ValueKind::DateTime),
    ("updated_at", "更新时间", "Updated", ValueKind::DateTime),
];

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
        if !entity.is_record() {
            return Err(Error::invalid(
                "entity",
                format!("{entity} is not a business record"),
            ));
        }
        if !actor.can(entity, Action::Export) {
            return Err(Error::Forbidden(format!(
                "{} may not export {} records",
                actor.display_name, entity
            )));
        }
        let customs = self.custom_fields(actor, entity).await?;
        let std_col = |k: &str| {
            EXPORT_STANDARD
                .iter()
                .find(|(n, zh, en, _)| *n == k || *zh == k || en.eq_ignore_ascii_case(k))
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
            kind: kind_value(d.kind),
        };
        let custom_col = |d: &CustomFieldDef| ExportColumn {
            key: format!("custom.{}", d.key),
            header_zh: d.label.clone(),
            header_en: d.label_en.clone().unwrap_or_else(|| d.key.clone()),
            kind: custom_value_kind(d.field_type),
        };
        let mut out = Vec::new();
        if picks.is_empty() {
            out.extend(std_col("code"));
            for d in entity.fields() {
                if d.kind != FieldKind::Attachments
                    && actor.field_access(entity, d.name) != FieldAccess::Hidden
                {
                    out.push(builtin(d));
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
        let now = self.now();
        let users = self
            .store
            .select(&Select::all(Table::Users, actor.company_id.0, now))
            .await?
            .rows
            .iter()
            .map(|r| {
                (
                    r.id(),
                    r.get("display_name")
                        .as_text()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        let departments = self
            .store
            .select(&Select::all(Table::Departments, actor.company_id.0, now))
            .await?
            .rows
            .iter()
            .map(|r| {
                (
                    r.id(),
                    r.get("name").as_text().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let customs = self.custom_fields(actor, entity).await?;
        let mut query = query;
        // Without a sort, pages go by id: ids are time-ordered (UUIDv7), so
        // this is creation order, and each page is one index range read
        // (`id > last`) instead of a sort of the whole list.
        let by_id = query.sort.is_empty();
        if by_id {
            query.sort = vec![crate::query::SortBy {
                field: "id".into(),
                desc: false,
            }];
        }
        Ok(ExportCursor {
            by_id,
            last_id: None,
            crm: self,
            actor: actor.clone(),
            entity,
            query,
            columns,
            customs,
            users,
            departments,
            page_size: page_size.clamp(1, crate::query::MAX_PAGE_SIZE),
            after: None,
            done: false,
        })
    }
}

/// Reads an export page by page; only one page is in memory at a time.
pub struct ExportCursor<'a> {
    crm: &'a Crm,
    actor: Actor,
    entity: Entity,
    query: ListQuery,
    columns: Vec<ExportColumn>,
    customs: Vec<CustomFieldDef>,
    users: HashMap<Uuid, String>,
    departments: HashMap<Uuid, String>,
    page_size: u64,
    after: Option<String>,
    by_id: bool,
    last_id: Option<Uuid>,
    done: bool,
}

impl std::fmt::Debug for ExportCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportCursor")
            .field("entity", &self.entity)
            .field("columns", &self.columns.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ExportCursor<'_> {
    /// The columns.
    pub fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    /// The next page of rows, `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Vec<ExportValue>>>> {
        if self.done {
            return Ok(None);
        }
        let mut q = self.query.clone();
        if self.by_id {
            if let Some(last) = self.last_id {
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
                after: self.after.clone(),
                limit: self.page_size,
            };
        }
        q.with_total = false;
        let page = self.crm.list_records(&self.actor, self.entity, &q).await?;
        if self.by_id {
            self.last_id = page.items.last().map(|r| r.id.0);
            self.done = !page.has_more || self.last_id.is_none();
        } else {
            self.after = page.next_cursor.clone();
            self.done = !page.has_more || self.after.is_none();
        }
        // Names of referenced customers (contacts' customer), one query.
        let mut refs: HashMap<Uuid, String> = HashMap::new();
        let ref_cols: Vec<&str> = self
            .columns
            .iter()
            .filter_map(|c| {
                self.entity
                    .field(&c.key)
                    .filter(|d| matches!(d.kind, FieldKind::Ref(_)))
                    .map(|d| d.name)
            })
            .collect();
        if !ref_cols.is_empty() {
            for d in self.entity.fields() {
                let FieldKind::Ref(target) = d.kind else {
                    continue;
                };
                if !ref_cols.contains(&d.name) {
                    continue;
                }
                let ids: Vec<Value> = page
                    .items
                    .iter()
                    .filter_map(|r| r.fields.get(d.name).and_then(Json::as_str))
                    .filter_map(|s| Uuid::parse_str(s).ok())
                    .map(Value::Id)
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let mut sel = Select::all(target.table(), self.actor.company_id.0, self.crm.now());
                sel.lifecycle = Lifecycle::Any;
                sel.filter = Filter::In(Col::Column("id"), ids);
                for r in self.crm.store.select(&sel).await?.rows {
                    refs.insert(r.id(), row_label_name(&r));
                }
            }
        }
        let offset = self.crm.config.utc_offset;
        let local = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&offset).naive_local();
        let mut out = Vec::with_capacity(page.items.len());
        for rec in &page.items {
            let mut row = Vec::with_capacity(self.columns.len());
            for c in &self.columns {
                let v = match c.key.as_str() {
                    "code" => rec
                        .code
                        .clone()
                        .map(ExportValue::Text)
                        .unwrap_or(ExportValue::Empty),
                    "owner_id" => rec
                        .owner_id
                        .and_then(|o| self.users.get(&o.0).cloned())
                        .map(ExportValue::Text)
                        .unwrap_or(ExportValue::Empty),
                    "department_id" => rec
                        .department_id
                        .and_then(|d| self.departments.get(&d.0).cloned())
                        .map(ExportValue::Text)
                        .unwrap_or(ExportValue::Empty),
                    "created_at" => ExportValue::DateTime(local(rec.created_at)),
                    "updated_at" => ExportValue::DateTime(local(rec.updated_at)),
                    key => match key.strip_prefix("custom.") {
                        Some(k) => self.custom_value(k, rec.custom.get(k)),
                        None => self.builtin_value(key, rec.fields.get(key), &refs, &local),
                    },
                };
                row.push(v);
            }
            out.push(row);
        }
        if out.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(out))
    }

    fn builtin_value(
        &self,
        key: &str,
        v: Option<&Json>,
        refs: &HashMap<Uuid, String>,
        local: &dyn Fn(chrono::DateTime<chrono::Utc>) -> NaiveDateTime,
    ) -> ExportValue {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return ExportValue::Empty;
        };
        let kind = self.entity.field(key).map(|d| d.kind);
        match (kind, v) {
            (Some(FieldKind::Date), Json::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(ExportValue::Date)
                .unwrap_or_else(|_| ExportValue::Text(s.clone())),
            (Some(FieldKind::DateTime), Json::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| ExportValue::DateTime(local(t.with_timezone(&chrono::Utc))))
                .unwrap_or_else(|_| ExportValue::Text(s.clone())),
            (Some(FieldKind::Enum(opts)), Json::String(s)) => ExportValue::Text(
                opts.iter()
                    .find(|(a, _)| a == s)
                    .map(|(_, zh)| zh.to_string())
                    .unwrap_or_else(|| s.clone()),
            ),
            (Some(FieldKind::Ref(_)), Json::String(s)) => ExportValue::Text(
                Uuid::parse_str(s)
                    .ok()
                    .and_then(|u| refs.get(&u).cloned())
                    .unwrap_or_else(|| s.clone()),
            ),
            (_, Json::Array(a)) => {
                ExportValue::Text(a.iter().filter_map(json_text).collect::<Vec<_>>().join(","))
            }
            (_, other) => json_text(other)
                .map(ExportValue::Text)
                .unwrap_or(ExportValue::Empty),
        }
    }

    fn custom_value(&self, key: &str, v: Option<&Json>) -> ExportValue {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return ExportValue::Empty;
        };
        let ty = self
            .customs
            .iter()
            .find(|d| d.key == key)
            .map(|d| d.field_type);
        match (ty, v) {
            (Some(CustomFieldType::Number), Json::Number(n)) => {
                ExportValue::Number(n.as_f64().unwrap_or_default())
            }
            (Some(CustomFieldType::Money), Json::Number(n)) => match n.as_i64() {
                Some(m) => ExportValue::Money(m),
                None => ExportValue::Number(n.as_f64().unwrap_or_default()),
            },
            (Some(CustomFieldType::Boolean), Json::Bool(b)) => ExportValue::Bool(*b),
            (Some(CustomFieldType::Date), Json::String(s)) => {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(ExportValue::Date)
                    .unwrap_or_else(|_| ExportValue::Text(s.clone()))
            }
            (Some(CustomFieldType::User), Json::String(s)) => ExportValue::Text(
                Uuid::parse_str(s)
                    .ok()
                    .and_then(|u| self.users.get(&u).cloned())
                    .unwrap_or_else(|| s.clone()),
            ),
            (_, Json::Array(a)) => ExportValue::Text(
                a.iter()
                    .filter_map(json_text)
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
            (_, other) => json_text(other)
                .map(ExportValue::Text)
                .unwrap_or(ExportValue::Empty),
        }
    }
}
