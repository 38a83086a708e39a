//! The product catalogue (产品): a two-level category tree with generated
//! codes and products with prices in minor units, tax rates in basis points,
//! status, logical delete, search (code, name, pinyin) and paging.
//!
//! Every user of the company may read the catalogue (it is the price list
//! quotes and contracts pick from); changing it needs `product:create`,
//! `product:update` or `product:delete`. Stock, purchasing and production
//! will reference products by id from their own tables.

use super::{money_json, opt_int, opt_text, req_text};
use crate::auth::{Action, Actor, FieldAccess};
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::{Error, Result, ValidationErrors};
use crate::money::Money;
use crate::query::Page;
use crate::schema::Table;
use crate::store::{
    AuditEntry, ChangeSet, CmpOp, Col, FieldChange, Filter, Lifecycle, Op, Paging, Row, Select,
    Sort,
};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// The VAT rates products and quote lines may carry, in basis points: the
/// general taxpayer's 13 %, 9 %, 6 %, the small-scale taxpayer's levy rates
/// 5 %, 3 % and the reduced 1 %, and 0 %.
pub const TAX_RATES: [i64; 7] = [1300, 900, 600, 500, 300, 100, 0];

/// [`TAX_RATES`] as a user reads them.
pub const TAX_RATES_TEXT: &str = "13%, 9%, 6%, 5%, 3%, 1%, 0%";

/// A product category (产品类别).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Category {
    /// The id.
    pub id: Uuid,
    /// The generated code: `01` at the top level, `0103` below `01`.
    pub code: String,
    /// The name.
    pub name: String,
    /// The parent (top-level categories have none).
    pub parent_id: Option<Uuid>,
}

/// Whether a product is sold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// On sale (在售).
    OnSale,
    /// Discontinued (停售): kept for old documents, not offered.
    Discontinued,
}

impl ProductStatus {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            ProductStatus::OnSale => "on_sale",
            ProductStatus::Discontinued => "discontinued",
        }
    }

    /// Parses an API name or Chinese label.
    pub fn parse(s: &str) -> Option<ProductStatus> {
        match s.trim() {
            "on_sale" | "在售" => Some(ProductStatus::OnSale),
            "discontinued" | "停售" => Some(ProductStatus::Discontinued),
            _ => None,
        }
    }
}

/// A product (产品).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// The id.
    pub id: Uuid,
    /// The code (given or generated, `CP-20261127-0001`).
    pub code: String,
    /// The name.
    pub name: String,
    /// The category.
    pub category_id: Option<Uuid>,
    /// The unit (台, 套, 个 …).
    pub unit: String,
    /// The list price (标准价), tax included.
    pub list_price: Money,
    /// The cost (成本), if known.
    pub cost: Option<Money>,
    /// The VAT rate in basis points.
    pub tax_rate: i64,
    /// Specification (规格型号).
    pub spec: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Status.
    pub status: ProductStatus,
    /// Whether it is in the recycle bin.
    pub deleted: bool,
    /// The row version.
    pub version: i64,
}

/// Input for a new product or a change (for a change, `None` keeps a value).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductInput {
    /// The code; generated when absent on create.
    pub code: Option<String>,
    /// The name (required on create).
    pub name: Option<String>,
    /// The category.
    pub category_id: Option<Uuid>,
    /// The unit (default `个`).
    pub unit: Option<String>,
    /// The list price (required on create).
    pub list_price: Option<Money>,
    /// The cost.
    pub cost: Option<Money>,
    /// The VAT rate in basis points (default 1300).
    pub tax_rate: Option<i64>,
    /// Specification.
    pub spec: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Status.
    pub status: Option<ProductStatus>,
}

/// The `product.created` event's payload, from the product's insert
/// ([`Crm::product_insert`]): what a host mirroring the catalogue needs
/// (code, name, category, unit, list price in fen, VAT rate in basis
/// points, specification, status) — not the cost, which field rules may
/// hide.
pub(crate) fn product_created_payload(insert: &Op) -> serde_json::Value {
    let Op::Insert { values, .. } = insert else {
        return json!({});
    };
    let mut out = serde_json::Map::new();
    for (col, v) in values {
        if matches!(
            *col,
            "code"
                | "name"
                | "category_id"
                | "unit"
                | "list_price"
                | "tax_rate"
                | "spec"
                | "status"
        ) {
            out.insert((*col).to_string(), v.to_json());
        }
    }
    serde_json::Value::Object(out)
}

impl ProductInput {
    /// The input with NUL characters dropped from its texts, as record
    /// fields drop them (no store keeps one), and invisible characters from
    /// its single-line texts (code, name, unit, spec).
    pub(crate) fn without_nul(mut self) -> Self {
        for t in [
            &mut self.code,
            &mut self.name,
            &mut self.unit,
            &mut self.spec,
            &mut self.description,
        ]
        .into_iter()
        .flatten()
        {
            t.retain(|c| c != '\0');
        }
        // Single-line values lose their invisible characters (two product
        // codes that look alike would be two products).
        for t in [
            &mut self.code,
            &mut self.name,
            &mut self.unit,
            &mut self.spec,
        ]
        .into_iter()
        .flatten()
        {
            *t = crate::validate::single_line(t);
        }
        // A code is kept in half-width letters and digits (`ＳＶ－１` is
        // saved as `SV-1`), so that the stores' case-insensitive prefix
        // searches find it however it is typed again.
        if let Some(c) = &mut self.code {
            *c = c.trim().chars().map(crate::validate::halfwidth).collect();
        }
        self
    }
}

/// A product search.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductQuery {
    /// Code, name or pinyin initials.
    pub search: Option<String>,
    /// Only this category and its sub-categories.
    pub category_id: Option<Uuid>,
    /// Only this status.
    pub status: Option<ProductStatus>,
    /// The recycle bin instead of the working set.
    pub deleted: bool,
    /// The page, from 1 (default 1).
    pub page: u64,
    /// Items per page (default 10).
    pub per_page: u64,
}

/// The product field that roles may hide or mask (`product.cost`): the
/// catalogue is read by everyone, its cost only by whom the roles allow.
pub const COST_FIELD: &str = "cost";

/// Whether `actor` sees products' cost: as their roles' rules allow; a
/// user without any role (who holds no right but shares and the catalogue)
/// does not.
pub(crate) fn sees_cost(actor: &Actor) -> bool {
    matches!(
        actor.field_access(Entity::Product, COST_FIELD),
        FieldAccess::Full | FieldAccess::ReadOnly
    )
}

/// A product as `actor` sees it: without its cost when a field rule hides
/// or masks it.
fn product_seen(actor: &Actor, r: &Row) -> Product {
    let mut p = product_from_row(r);
    if !sees_cost(actor) {
        p.cost = None;
    }
    p
}

fn product_from_row(r: &Row) -> Product {
    Product {
        id: r.id(),
        code: r.get("code").as_text().unwrap_or_default().to_string(),
        name: r.get("name").as_text().unwrap_or_default().to_string(),
        category_id: r.get("category_id").as_id(),
        unit: r.get("unit").as_text().unwrap_or_default().to_string(),
        list_price: Money::cny(r.get("list_price").as_int().unwrap_or(0)),
        cost: r.get("cost").as_int().map(Money::cny),
        tax_rate: r.get("tax_rate").as_int().unwrap_or(0),
        spec: r.get("spec").as_text().map(str::to_string),
        description: r.get("description").as_text().map(str::to_string),
        status: r
            .get("status")
            .as_text()
            .and_then(ProductStatus::parse)
            .unwrap_or(ProductStatus::OnSale),
        deleted: !r.get("deleted_at").is_null(),
        version: r.version(),
    }
}

fn category_from_row(r: &Row) -> Category {
    Category {
        id: r.id(),
        code: r.get("code").as_text().unwrap_or_default().to_string(),
        name: r.get("name").as_text().unwrap_or_default().to_string(),
        parent_id: r.get("parent_id").as_id(),
    }
}

impl Crm {
    fn require_product(&self, actor: &Actor, action: Action) -> Result<()> {
        if actor.can(Entity::Product, action) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{} may not {action} products",
                actor.display_name
            )))
        }
    }

    /// Creates a category at the top level or below a top-level one; the
    /// code is generated (`01`, `0101`).
    pub async fn create_product_category(
        &self,
        actor: &Actor,
        name: &str,
        parent: Option<Uuid>,
    ) -> Result<Category> {
        self.require_product(actor, Action::Create)?;
        let name = req_text("name", name, 64)?;
        let company = actor.company_id.0;
        let prefix = match parent {
            Some(p) => {
                let row = self.live_row(actor, Table::ProductCategories, p).await?;
                if !row.get("parent_id").is_null() {
                    return Err(Error::invalid(
                        "parent_id",
                        "product categories have two levels; the parent must be a top-level category",
                    ));
                }
                row.get("code").as_text().unwrap_or_default().to_string()
            }
            None => String::new(),
        };
        let guard = self.category_name_free(actor, &name, parent).await?;
        let n = self
            .store
            .next_sequence(company, &format!("product_category:{prefix}"))
            .await?;
        if n > 99 {
            return Err(Error::InvalidState(
                "at most 99 categories per level".into(),
            ));
        }
        let code = format!("{prefix}{n:02}");
        let id = self.new_id();
        let now = self.now();
        let mut cs = ChangeSet::default();
        cs.guards.push(guard);
        cs.ops.push(Op::Insert {
            table: Table::ProductCategories,
            values: vec![
                ("id", Value::Id(id)),
                ("company_id", Value::Id(company)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
                ("name", Value::Text(name.clone())),
                ("code", Value::Text(code.clone())),
                ("parent_id", parent.map_or(Value::Null, Value::Id)),
                ("position", Value::Int(n)),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::ProductCategories,
            id,
            "create",
            vec![FieldChange {
                field: "name".into(),
                before: serde_json::Value::Null,
                after: json!(name),
            }],
        ));
        self.apply(cs).await?;
        Ok(Category {
            id,
            code,
            name,
            parent_id: parent,
        })
    }

    /// Refuses a category name a sibling (a category with the same parent,
    /// or another top-level one) already has, trimmed, letter case and
    /// full-width letters aside:
    /// categories are named by their names (and `parent/child` paths) in
    /// imports and exports, so two siblings of one name could not be told
    /// apart. Returns the guard that keeps it so until the write: two
    /// siblings created at once under one name are serialised on the
    /// name's key, and the later one is refused by name.
    async fn category_name_free(
        &self,
        actor: &Actor,
        name: &str,
        parent: Option<Uuid>,
    ) -> Result<crate::store::Guard> {
        let company = actor.company_id.0;
        let cats = self.list_product_categories(actor).await?;
        let key = crate::org::fold_name(name);
        let under = match parent.and_then(|p| cats.iter().find(|c| c.id == p)) {
            Some(p) => format!("under {} {}", p.code, p.name),
            None => "at the top level".to_string(),
        };
        if let Some(c) = cats
            .iter()
            .find(|c| c.parent_id == parent && crate::org::fold_name(&c.name) == key)
        {
            return Err(Error::Duplicate {
                entity: "product category".into(),
                message: format!(
                    "product category (产品类别) {} already exists {under} (code {}); give the new category another name",
                    c.name, c.code
                ),
            });
        }
        let mut sel = Select::all(Table::ProductCategories, company, self.now());
        sel.filter = Filter::And(vec![
            match parent {
                Some(p) => Filter::Cmp(Col::Column("parent_id"), CmpOp::Eq, Value::Id(p)),
                None => Filter::IsNull(Col::Column("parent_id")),
            },
            Filter::Cmp(Col::Column("name"), CmpOp::Eq, Value::Text(name.into())),
        ]);
        Ok(crate::store::Guard {
            kind: crate::store::GuardKind::Duplicate,
            keys: vec![format!(
                "{company}:product_category:{}:{key}",
                parent.map_or_else(|| "top".to_string(), |p| p.to_string())
            )],
            select: sel,
            message: format!(
                "product category (产品类别) {name} was just created {under} by another user; give the new category another name"
            ),
        })
    }

    /// Every live category, ordered by code (so children follow parents).
    pub async fn list_product_categories(&self, actor: &Actor) -> Result<Vec<Category>> {
        let mut sel = Select::all(Table::ProductCategories, actor.company_id.0, self.now());
        sel.sort = vec![Sort {
            col: Col::Column("code"),
            desc: false,
        }];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(category_from_row)
            .collect())
    }

    /// The problems of a product's fields that need no lookup (required
    /// name and price on creation, a name never blank, lengths, amounts,
    /// tax rate, code).
    pub(crate) fn product_errors(input: &ProductInput, creating: bool) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if (creating && input.name.is_none())
            || input.name.as_deref().is_some_and(|n| n.trim().is_empty())
        {
            errors.push("name (产品名称)", "is required");
        }
        if input
            .name
            .as_deref()
            .is_some_and(|n| n.chars().count() > 128)
        {
            errors.push("name (产品名称)", "is longer than 128 characters");
        }
        // As the import template holds them: an export cell, a document
        // line, a list column each take what a product's texts may be.
        for (field, text, max) in [
            ("unit (单位)", &input.unit, 16),
            ("spec (规格型号)", &input.spec, 200),
            ("description (描述)", &input.description, 2000),
        ] {
            if text
                .as_deref()
                .is_some_and(|t| t.trim().chars().count() > max)
            {
                errors.push(field, format!("is longer than {max} characters"));
            }
        }
        if creating && input.list_price.is_none() {
            errors.push("list_price (标准价)", "is required");
        }
        for (field, m) in [
            ("list_price (标准价)", input.list_price),
            ("cost (成本)", input.cost),
        ] {
            if let Some(m) = m {
                if m.is_negative() {
                    errors.push(field, format!("{m} is negative"));
                }
                if m.currency.code() != "CNY" {
                    errors.push(field, format!("{m} is not in CNY"));
                }
                // A price no sales document could take makes the product
                // unusable.
                if m.minor > super::MAX_SALES_AMOUNT_MINOR {
                    errors.push(
                        field,
                        format!(
                            "{m} is more than {} (10万亿元), the most a sales amount may be \
                             (超过销售金额上限)",
                            Money::cny(super::MAX_SALES_AMOUNT_MINOR)
                        ),
                    );
                }
            }
        }
        if let Some(r) = input.tax_rate
            && !TAX_RATES.contains(&r)
        {
            // (Its shape is what imports translate: see `import`.)
            errors.push(
                "tax_rate (税率)",
                format!(
                    "{} is not one of {TAX_RATES_TEXT}",
                    crate::money::percent(r)
                ),
            );
        }
        if let Some(code) = &input.code
            && (code.trim().is_empty() || code.chars().count() > 40)
        {
            errors.push("code (产品编号)", "must have 1 to 40 characters");
        }
        errors
    }

    async fn check_product(
        &self,
        actor: &Actor,
        input: &ProductInput,
        creating: bool,
    ) -> Result<()> {
        Self::product_errors(input, creating).into_result()?;
        if let Some(c) = input.category_id {
            self.live_row(actor, Table::ProductCategories, c)
                .await
                .map_err(|_| {
                    Error::invalid("category_id (产品类别)", format!("no category {c}"))
                })?;
        }
        Ok(())
    }

    /// Creates a product; its code must be free among the live products
    /// and the recycle bin's: a binned product keeps its code.
    pub async fn create_product(&self, actor: &Actor, input: ProductInput) -> Result<Product> {
        let input = input.without_nul();
        self.require_product(actor, Action::Create)?;
        may_set_cost(actor, &input)?;
        self.check_product(actor, &input, true).await?;
        let code = match &input.code {
            Some(c) => c.trim().to_string(),
            None => self.next_code(actor.company_id, "CP").await?,
        };
        let id = self.new_id();
        let guard = self.product_code_free(actor, &code, None, false).await?;
        let (op, audit) = self.product_insert(actor, id, code.clone(), &input);
        let payload = product_created_payload(&op);
        let mut cs = ChangeSet::default();
        cs.guards.push(guard);
        cs.audit.push(audit);
        cs.ops.push(op);
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Products,
            id,
            "product.created".into(),
            payload,
        ));
        self.apply(cs).await?;
        self.product(actor, id).await
    }

    /// Refuses a product code another product of the company has (`except`
    /// the product being changed), and returns the guard that keeps it so
    /// until the write: two products created, recoded or restored at once
    /// with the same code are serialised on the company's code key, and
    /// the later one is refused by name instead of by the stores' index.
    ///
    /// A product in the recycle bin keeps its code: a new or recoded
    /// product may not take it (the binned product could never come back
    /// under it, and products are not purged), and is told to restore that
    /// product or choose another code. `restoring` checks only the live
    /// products (the code of the product coming back), for codes two
    /// products came to share before the recycle bin held them; such a
    /// restore is refused until the live holder gets another code.
    pub(crate) async fn product_code_free(
        &self,
        actor: &Actor,
        code: &str,
        except: Option<Uuid>,
        restoring: bool,
    ) -> Result<crate::store::Guard> {
        let company = actor.company_id.0;
        let mut sel = Select::all(Table::Products, company, self.now());
        if !restoring {
            sel.lifecycle = Lifecycle::Any;
        }
        // Codes are typed to find products: one differing only in letter
        // case (or full-width letters) would be another product to the
        // store and the same one to a person. Found by a case-insensitive
        // prefix and compared folded; the guard looks for the spellings a
        // code is typed again in (the keys are folded, so such creations
        // take turns).
        let not_except = |f: Filter| match except {
            Some(id) => Filter::And(vec![
                f,
                Filter::Not(Box::new(Filter::Cmp(
                    Col::Column("id"),
                    CmpOp::Eq,
                    Value::Id(id),
                ))),
            ]),
            None => f,
        };
        let key = code_key(code);
        sel.filter = not_except(codes_keyed(vec![key.clone()]));
        let rows = self.store.select(&sel).await?.rows;
        if let Some(r) = rows.first() {
            let name = r.get("name").as_text().unwrap_or_default();
            let held = r.get("code").as_text().unwrap_or_default();
            let name = if held == code.trim() {
                name.to_string()
            } else {
                format!("{name} (as {held})")
            };
            let message = if restoring {
                format!(
                    "product {code} cannot be restored: its product code (产品编号) is now used by {name}; give that product another code first"
                )
            } else if !r.get("deleted_at").is_null() {
                format!(
                    "product code (产品编号) {code} is held by {name} in the recycle bin (回收站); restore that product, or give this product another code"
                )
            } else {
                format!(
                    "product code (产品编号) {code} is already used by {name}; give the product another code"
                )
            };
            return Err(Error::Duplicate {
                entity: "product".into(),
                message,
            });
        }
        Ok(crate::store::Guard {
            kind: crate::store::GuardKind::Duplicate,
            keys: vec![code_lock(company, &key)],
            select: sel,
            message: format!(
                "product code (产品编号) {code} was just given to another product; give the product another code"
            ),
        })
    }

    /// The insert of a new product and its audit entry (fields already
    /// checked).
    pub(crate) fn product_insert(
        &self,
        actor: &Actor,
        id: Uuid,
        code: String,
        input: &ProductInput,
    ) -> (Op, AuditEntry) {
        let company = actor.company_id.0;
        let name = input.name.clone().unwrap_or_default().trim().to_string();
        let now = self.now();
        let values = vec![
            ("id", Value::Id(id)),
            ("company_id", Value::Id(company)),
            ("version", Value::Int(1)),
            ("created_at", Value::Timestamp(now)),
            ("updated_at", Value::Timestamp(now)),
            ("code", Value::Text(code)),
            (
                "pinyin_keys",
                Value::Text(crate::pinyin::search_keys(&name)),
            ),
            ("name", Value::Text(name)),
            (
                "category_id",
                input.category_id.map_or(Value::Null, Value::Id),
            ),
            ("unit", unit_value(input.unit.as_deref())),
            (
                "list_price",
                Value::Int(input.list_price.map_or(0, |m| m.minor)),
            ),
            ("cost", opt_int(input.cost.map(|m| m.minor))),
            ("tax_rate", Value::Int(input.tax_rate.unwrap_or(1300))),
            ("spec", opt_text(input.spec.clone())),
            ("description", opt_text(input.description.clone())),
            (
                "status",
                Value::Text(input.status.unwrap_or(ProductStatus::OnSale).name().into()),
            ),
            ("custom", Value::Json(json!({}))),
        ];
        let audit = self.audit(
            Some(actor),
            company,
            Table::Products,
            id,
            "create",
            values
                .iter()
                .filter(|(k, v)| {
                    !v.is_null()
                        && !matches!(
                            *k,
                            "id" | "company_id"
                                | "version"
                                | "created_at"
                                | "updated_at"
                                | "pinyin_keys"
                                | "custom"
                        )
                })
                .map(|(k, v)| FieldChange {
                    field: (*k).into(),
                    before: serde_json::Value::Null,
                    after: v.to_json(),
                })
                .collect(),
        );
        (
            Op::Insert {
                table: Table::Products,
                values,
            },
            audit,
        )
    }

    /// A product, live or in the recycle bin.
    pub async fn product(&self, actor: &Actor, id: Uuid) -> Result<Product> {
        self.store
            .get(Table::Products, id)
            .await?
            .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
            .map(|r| product_seen(actor, &r))
            .ok_or_else(|| Error::not_found("product", id))
    }

    /// Finds a live product by code: the one spelled so (full-width letters
    /// and digits as their ASCII twins), else the one
    /// equal but for letter case (codes are unique so compared).
    pub async fn product_by_code(&self, actor: &Actor, code: &str) -> Result<Product> {
        let mut sel = Select::all(Table::Products, actor.company_id.0, self.now());
        sel.filter = code_spellings(code);
        let rows = self.store.select(&sel).await?.rows;
        crate::org::spelled_or_folded(&rows, "code", code)
            .map(|r| product_seen(actor, r))
            .ok_or_else(|| Error::not_found("product", code))
    }

    /// Changes a product if it is still at `expected_version`.
    pub async fn update_product(
        &self,
        actor: &Actor,
        id: Uuid,
        expected_version: i64,
        input: ProductInput,
    ) -> Result<Product> {
        let input = input.without_nul();
        self.require_product(actor, Action::Update)?;
        may_set_cost(actor, &input)?;
        self.check_product(actor, &input, false).await?;
        let row = self.live_row(actor, Table::Products, id).await?;
        let (mut values, changes) = product_changes(&row, &input);
        if changes.is_empty() {
            return Ok(product_seen(actor, &row));
        }
        values.push(("updated_at", Value::Timestamp(self.now())));
        let mut cs = ChangeSet::default();
        if let Some(code) = changes
            .iter()
            .find(|c| c.field == "code")
            .and_then(|c| c.after.as_str())
        {
            cs.guards
                .push(self.product_code_free(actor, code, Some(id), false).await?);
        }
        cs.ops.push(Op::Update {
            table: Table::Products,
            id,
            expected_version,
            values,
        });
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Products,
            id,
            "product.updated".into(),
            json!({ "version": expected_version + 1, "changes": &changes }),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Products,
            id,
            "update",
            changes,
        ));
        self.apply(cs).await?;
        self.product(actor, id).await
    }

    /// Moves a product to the recycle bin, or restores it. A binned product
    /// keeps its code, so a restore is refused only where a live product
    /// came to share it before that rule (that product must be recoded
    /// first).
    pub async fn set_product_deleted(
        &self,
        actor: &Actor,
        id: Uuid,
        deleted: bool,
    ) -> Result<Product> {
        self.require_product(actor, Action::Delete)?;
        let row = self
            .store
            .get(Table::Products, id)
            .await?
            .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
            .ok_or_else(|| Error::not_found("product", id))?;
        if row.get("deleted_at").is_null() != deleted {
            return Err(Error::InvalidState(format!(
                "product {} is {}in the recycle bin",
                row.get("code").as_text().unwrap_or_default(),
                if deleted { "already " } else { "not " }
            )));
        }
        let now = self.now();
        let value = if deleted {
            Value::Timestamp(now)
        } else {
            Value::Null
        };
        let mut cs = ChangeSet::default();
        if !deleted {
            let code = row.get("code").as_text().unwrap_or_default().to_string();
            cs.guards
                .push(self.product_code_free(actor, &code, Some(id), true).await?);
        }
        cs.ops.push(Op::Update {
            table: Table::Products,
            id,
            expected_version: row.version(),
            values: vec![
                ("deleted_at", value.clone()),
                ("updated_at", Value::Timestamp(now)),
            ],
        });
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Products,
            id,
            if deleted {
                "product.deleted".into()
            } else {
                "product.restored".into()
            },
            json!({ "code": row.get("code").as_text() }),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Products,
            id,
            if deleted { "delete" } else { "restore" },
            vec![FieldChange {
                field: "deleted_at".into(),
                before: row.get("deleted_at").to_json(),
                after: value.to_json(),
            }],
        ));
        self.apply(cs).await?;
        self.product(actor, id).await
    }

    /// Searches products: one query for the page and the total.
    pub async fn list_products(&self, actor: &Actor, q: &ProductQuery) -> Result<Page<Product>> {
        let mut filters = Vec::new();
        filters.extend(super::search_filter(q.search.as_deref(), "name"));
        if let Some(cat) = q.category_id {
            let subs: Vec<Value> = self
                .list_product_categories(actor)
                .await?
                .into_iter()
                .filter(|c| c.id == cat || c.parent_id == Some(cat))
                .map(|c| Value::Id(c.id))
                .collect();
            filters.push(Filter::In(Col::Column("category_id"), subs));
        }
        if let Some(st) = q.status {
            filters.push(Filter::Cmp(
                Col::Column("status"),
                CmpOp::Eq,
                Value::Text(st.name().into()),
            ));
        }
        let per_page = if q.per_page == 0 {
            10
        } else {
            q.per_page.min(1000)
        };
        let page = q.page.max(1);
        let mut sel = Select::all(Table::Products, actor.company_id.0, self.now());
        sel.lifecycle = if q.deleted {
            Lifecycle::Deleted
        } else {
            Lifecycle::Active
        };
        sel.filter = Filter::And(filters);
        sel.sort = vec![Sort {
            col: Col::Column("code"),
            desc: false,
        }];
        sel.paging = Paging::Offset {
            offset: (page - 1).saturating_mul(per_page),
            limit: per_page,
        };
        sel.with_total = true;
        let got = self.store.select(&sel).await?;
        Ok(Page {
            items: got.rows.iter().map(|r| product_seen(actor, r)).collect(),
            total: got.total,
            has_more: got.has_more,
            next_cursor: None,
        })
    }
}

/// The column values an update sets and the audited changes among them
/// (values equal to the stored ones are not changes).
pub(crate) fn product_changes(
    row: &Row,
    input: &ProductInput,
) -> (Vec<(&'static str, Value)>, Vec<FieldChange>) {
    let mut values: Vec<(&'static str, Value)> = Vec::new();
    if let Some(c) = &input.code {
        values.push(("code", Value::Text(c.trim().into())));
    }
    if let Some(n) = &input.name {
        values.push(("name", Value::Text(n.trim().into())));
        values.push((
            "pinyin_keys",
            Value::Text(crate::pinyin::search_keys(n.trim())),
        ));
    }
    if let Some(c) = input.category_id {
        values.push(("category_id", Value::Id(c)));
    }
    if let Some(u) = &input.unit {
        values.push(("unit", unit_value(Some(u))));
    }
    if let Some(m) = input.list_price {
        values.push(("list_price", Value::Int(m.minor)));
    }
    if let Some(m) = input.cost {
        values.push(("cost", Value::Int(m.minor)));
    }
    if let Some(r) = input.tax_rate {
        values.push(("tax_rate", Value::Int(r)));
    }
    // As a create stores them: trimmed, and blank clears them.
    if let Some(s) = &input.spec {
        values.push(("spec", opt_text(Some(s.clone()))));
    }
    if let Some(d) = &input.description {
        values.push(("description", opt_text(Some(d.clone()))));
    }
    if let Some(s) = input.status {
        values.push(("status", Value::Text(s.name().into())));
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
    (values, changes)
}

/// A product's unit as stored: trimmed, `个` when none or blank.
fn unit_value(unit: Option<&str>) -> Value {
    let u = unit.map(|u| u.replace('\0', "")).unwrap_or_default();
    let u = u.trim();
    Value::Text(if u.is_empty() { "个".into() } else { u.into() })
}

/// Refuses a cost from who may not change it (a field rule makes it
/// read-only, masked or hidden for them); leaving it out keeps it.
fn may_set_cost(actor: &Actor, input: &ProductInput) -> Result<()> {
    if input.cost.is_some() && actor.field_access(Entity::Product, COST_FIELD) != FieldAccess::Full
    {
        return Err(Error::Forbidden(format!(
            "{} may not change product.cost (成本)",
            actor.display_name
        )));
    }
    Ok(())
}

/// A product as JSON for documents and the CLI.
pub fn product_json(p: &Product) -> serde_json::Value {
    json!({
        "id": p.id,
        "code": p.code,
        "name": p.name,
        "unit": p.unit,
        "list_price": money_json(p.list_price),
        "tax_rate": p.tax_rate,
        "status": p.status.name(),
    })
}

/// The key product codes are unique by: letter case, width and runs of
/// spaces aside ([`crate::validate::text_key`]), so that `sv-1`, `SV-1`
/// and `ＳＶ－１` are one code, to a search, a create and a concurrent
/// create alike.
pub(crate) fn code_key(code: &str) -> String {
    crate::validate::text_key(code.trim())
}

/// The products whose code has one of `keys` ([`code_key`]), whatever the
/// spelling stored: what a code's guard looks for inside the write.
pub(crate) fn codes_keyed(keys: Vec<String>) -> Filter {
    Filter::TextKeyIn(Col::Column("code"), keys)
}

/// The lock key two writes giving a company's products the code keyed
/// `key` take turns on.
pub(crate) fn code_lock(company: Uuid, key: &str) -> String {
    format!("{company}:product_code:{key}")
}

/// The products whose code may equal `typed` but for letter case and
/// full-width letters and digits, found by a case-insensitive prefix (the
/// stores fold ASCII letters only) as typed, in half- and in full-width
/// letters: the caller compares them folded (`ＳＶ－１` is SV-1).
fn code_spellings(typed: &str) -> Filter {
    Filter::Or(
        prefix_spellings(typed)
            .into_iter()
            .map(|p| Filter::StartsWith(Col::Column("code"), p))
            .collect(),
    )
}

/// The spellings a case-insensitive prefix probe (the stores fold ASCII
/// letters only) looks for `typed` in so as to find it whatever its width
/// and letter case: as typed, in half-width letters, and in full-width
/// ones upper and lower case; the caller compares what it finds folded.
pub(crate) fn prefix_spellings(typed: &str) -> Vec<String> {
    let typed = typed.trim();
    let half: String = typed.chars().map(crate::validate::halfwidth).collect();
    let full = |s: &str| -> String { s.chars().map(crate::validate::fullwidth).collect() };
    let mut probes: Vec<String> = Vec::new();
    for p in [
        typed.to_string(),
        full(&half.to_uppercase()),
        full(&half.to_lowercase()),
        half,
    ] {
        if !probes.contains(&p) {
            probes.push(p);
        }
    }
    probes
}
