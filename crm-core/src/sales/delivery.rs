//! Deliveries (发货) of an executing contract's lines: the order is the
//! contract's lines, each delivery takes quantities from them, and nothing
//! is delivered beyond what was ordered. A delivery also bumps the contract's
//! version, so two concurrent deliveries cannot both pass the check.

use super::contract::{ContractStatus, contract_from_row};
use super::opt_text;
use crate::auth::Actor;
use crate::crm::Crm;
use crate::error::{Error, Result, ValidationErrors};
use crate::schema::Table;
use crate::store::{ChangeSet, CmpOp, Col, FieldChange, Filter, Op, Row, Select, Sort};
use crate::value::Value;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// A quantity of one contract line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryLine {
    /// The contract line, from 1.
    pub line: usize,
    /// The quantity delivered.
    pub quantity: i64,
}

/// A recorded delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The id.
    pub id: Uuid,
    /// When it left.
    pub delivered_on: NaiveDate,
    /// What it carried.
    pub lines: Vec<DeliveryLine>,
    /// Notes (carrier, waybill …).
    pub notes: Option<String>,
}

/// How much of a contract line has been delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineProgress {
    /// The line, from 1.
    pub line: usize,
    /// The product name.
    pub name: String,
    /// Ordered.
    pub ordered: i64,
    /// Delivered so far.
    pub delivered: i64,
    /// Still to deliver.
    pub remaining: i64,
}

fn delivery_from_row(r: &Row) -> Delivery {
    Delivery {
        id: r.id(),
        delivered_on: r.get("delivered_on").as_date().unwrap_or_default(),
        lines: r
            .get("lines")
            .as_json()
            .cloned()
            .and_then(|j| serde_json::from_value(j).ok())
            .unwrap_or_default(),
        notes: r.get("notes").as_text().map(str::to_string),
    }
}

/// What remains of each ordered line after the deliveries.
pub fn progress(ordered: &[(String, i64)], deliveries: &[Delivery]) -> Vec<LineProgress> {
    ordered
        .iter()
        .enumerate()
        .map(|(i, (name, qty))| {
            let delivered: i64 = deliveries
                .iter()
                .flat_map(|d| d.lines.iter())
                .filter(|l| l.line == i + 1)
                .fold(0i64, |sum, l| sum.saturating_add(l.quantity));
            LineProgress {
                line: i + 1,
                name: name.clone(),
                ordered: *qty,
                delivered,
                remaining: qty.saturating_sub(delivered),
            }
        })
        .collect()
}

impl Crm {
    async fn delivery_rows(&self, actor: &Actor, contract: Uuid) -> Result<Vec<Delivery>> {
        let mut sel = Select::all(Table::Deliveries, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(Col::Column("contract_id"), CmpOp::Eq, Value::Id(contract));
        sel.sort = vec![Sort {
            col: Col::Column("created_at"),
            desc: false,
        }];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(delivery_from_row)
            .collect())
    }

    /// A contract's deliveries and what remains to deliver per line.
    pub async fn deliveries(
        &self,
        actor: &Actor,
        contract: Uuid,
    ) -> Result<(Vec<Delivery>, Vec<LineProgress>)> {
        let c = contract_from_row(&self.contract_row(actor, contract).await?);
        let ds = self.delivery_rows(actor, contract).await?;
        let ordered: Vec<(String, i64)> = c
            .lines
            .iter()
            .map(|l| (l.name.clone(), l.quantity))
            .collect();
        let p = progress(&ordered, &ds);
        Ok((ds, p))
    }

    /// Records a delivery of an executing contract's lines; refuses
    /// quantities beyond what remains of a line, and a `delivered_on` after
    /// today (the company's local date). The caller gives no version: a
    /// contract another delivery (or payment) changed meanwhile is read
    /// again and every check made again, so deliveries recorded at once are
    /// each saved or refused on the merits (as more than remains).
    pub async fn record_delivery(
        &self,
        actor: &Actor,
        contract: Uuid,
        delivered_on: NaiveDate,
        lines: Vec<DeliveryLine>,
        notes: Option<String>,
    ) -> Result<Vec<LineProgress>> {
        let mut tries = 1;
        loop {
            match self
                .record_delivery_once(actor, contract, delivered_on, lines.clone(), notes.clone())
                .await
            {
                Err(Error::Conflict { .. }) if tries < crate::crm::WRITE_TRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// One try of [`Crm::record_delivery`].
    async fn record_delivery_once(
        &self,
        actor: &Actor,
        contract: Uuid,
        delivered_on: NaiveDate,
        lines: Vec<DeliveryLine>,
        notes: Option<String>,
    ) -> Result<Vec<LineProgress>> {
        let row = self
            .contract_for_records(actor, contract, "deliveries")
            .await?;
        let c = contract_from_row(&row);
        // Goods still owed are delivered after the money is in too (a
        // finished contract); a terminated one takes none.
        if !matches!(
            c.status,
            ContractStatus::Executing | ContractStatus::Finished
        ) {
            return Err(Error::InvalidState(format!(
                "contract {} is {}; deliveries follow approval, and a terminated contract takes none",
                c.code,
                c.status.label_zh()
            )));
        }
        super::payment::not_after_today(
            self.today(),
            "delivered_on (发货日期)",
            "a delivery",
            delivered_on,
        )?;
        super::payment::not_before_contract(
            self,
            &row,
            "delivered_on (发货日期)",
            "a delivery",
            delivered_on,
        )?;
        if lines.is_empty() {
            return Err(Error::invalid(
                "lines",
                "a delivery carries at least one line",
            ));
        }
        let (_, before) = self.deliveries(actor, contract).await?;
        let mut errors = ValidationErrors::default();
        for (i, l) in lines.iter().enumerate() {
            let field = format!("lines[{}]", i + 1);
            let Some(p) = l.line.checked_sub(1).and_then(|k| before.get(k)) else {
                errors.push(field, format!("contract {} has no line {}", c.code, l.line));
                continue;
            };
            // Saturating: quantities near i64::MAX must not wrap around to
            // something under what remains.
            let asked: i64 = lines
                .iter()
                .filter(|o| o.line == l.line)
                .fold(0i64, |sum, o| sum.saturating_add(o.quantity.max(0)));
            if l.quantity <= 0 {
                errors.push(field, format!("quantity {} is not positive", l.quantity));
            } else if asked > p.remaining {
                errors.push(
                    field,
                    format!(
                        "line {} {}: delivering {asked} would exceed the {} still to deliver",
                        p.line, p.name, p.remaining
                    ),
                );
            }
        }
        errors.into_result()?;
        let id = self.new_id();
        let now = self.now();
        let lines_json = json!(lines);
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Insert {
            table: Table::Deliveries,
            values: vec![
                ("id", Value::Id(id)),
                ("company_id", Value::Id(actor.company_id.0)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
                ("contract_id", Value::Id(contract)),
                ("delivered_on", Value::Date(delivered_on)),
                ("lines", Value::Json(lines_json.clone())),
                ("notes", opt_text(notes)),
            ],
        });
        // Serialises deliveries of the same contract.
        cs.ops.push(Op::Update {
            table: Table::Contracts,
            id: contract,
            expected_version: row.version(),
            values: vec![("updated_at", Value::Timestamp(now))],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Contracts,
            contract,
            "delivery",
            vec![FieldChange {
                field: "delivery".into(),
                before: serde_json::Value::Null,
                after: lines_json.clone(),
            }],
        ));
        cs.events.push(self.event(
            actor.company_id.0,
            Table::Contracts,
            contract,
            "contract.delivered".into(),
            json!({"code": c.code, "delivery_id": id, "delivered_on": delivered_on, "lines": lines_json}),
        ));
        self.apply(cs).await?;
        Ok(self.deliveries(actor, contract).await?.1)
    }
}
