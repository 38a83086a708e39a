//! Upkeep of stored derived values after the rules that make them change.
//!
//! Pinyin search keys (`pinyin_keys`) are made when a record is written. When
//! a release changes how they are made (it did: the commonest reading of
//! each character plus a table of name heteronyms replaced every reading of
//! every character), rows written before keep their old keys until they are
//! written again. [`Crm::rebuild_search_keys`] brings every row up to the
//! current rule.
//!
//! Sort keys (`name_sort`, `title_sort`: [`SORT_KEYS`]) are made on every
//! write that sets the name or title. Rows written before their column
//! existed (SQLite migration 0014, PostgreSQL 0013) have none: they sort
//! after every row that has one, by their name, on both stores alike, until
//! [`Crm::rebuild_search_keys`] fills them (and brings any key made under
//! an older rule up to date).
//!
//! Customers' name keys (`name_key`, the duplicate key of a company's name)
//! are made on every write too. A release changed them (Latin accents and
//! ligatures folded, traditional Chinese read as simplified: `Müller GmbH`
//! and `Muller GmbH`, `華為技術有限公司` and `华为技术有限公司` now share
//! one), so customers saved before keep keys that miss such duplicates;
//! [`Crm::rebuild_search_keys`] recomputes them and the duplicate key rows
//! and flags with them, and the customers that became duplicates show in
//! the duplicate report. Run it once after upgrading.

use crate::auth::Actor;
use crate::crm::Crm;
use crate::error::{Error, Result};
use crate::schema::{SORT_KEYS, Table};
use crate::store::{ChangeSet, FieldChange, Lifecycle, Op, Paging, Row, Select};
use crate::value::Value;
use serde::Serialize;
use serde_json::Value as Json;

/// The tables with pinyin search keys and the columns the keys are made of,
/// in order (a customer's short name follows its name).
pub const SEARCH_KEY_SOURCES: &[(Table, &[&str])] = &[
    (Table::Users, &["display_name"]),
    (Table::Customers, &["name", "short_name"]),
    (Table::Contacts, &["name"]),
    (Table::Products, &["name"]),
    (Table::Opportunities, &["name"]),
    (Table::Quotes, &["title"]),
    (Table::Contracts, &["title"]),
];

/// Rows read and written per step.
const PAGE: u64 = 1000;

/// What [`Crm::rebuild_search_keys`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SearchKeyStats {
    /// Rows looked at (every table, deleted and archived rows included).
    pub rows: u64,
    /// Rows whose search or sort keys changed.
    pub updated: u64,
}

/// The sort keys of a row of `table` under the current rule, with the
/// column of each (see [`SORT_KEYS`]): NULL when the text is.
pub fn sort_keys_of(table: Table, row: &Row) -> Vec<(&'static str, Value)> {
    SORT_KEYS
        .iter()
        .filter(|(t, _, _)| *t == table)
        .map(|(_, text, key)| (*key, crate::crm::sort_key_value(row.get(text).as_text())))
        .collect()
}

/// The search keys of a row under the current rule: the keys of each
/// non-empty source column, separated by a space.
pub fn search_keys_of(row: &Row, sources: &[&str]) -> String {
    let mut out = String::new();
    for col in sources {
        let Some(text) = row.get(col).as_text().map(str::trim) else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&crate::pinyin::search_keys(text));
    }
    out
}

impl Crm {
    /// Recomputes the pinyin search keys, the sort keys and the customers'
    /// name keys (an individual's marked as no duplicate key, see
    /// `dedupe::customer_name_key`; accents and traditional Chinese folded,
    /// see [`crate::validate::company_name_key`]) of every row of the
    /// actor's company that has them (administrators): rows written
    /// under an older rule are found by the current one afterwards, and
    /// rows without a sort key get one. A customer whose name key changes
    /// has its duplicate key rows and the duplicate flags of the customers
    /// sharing its old and new keys brought into line as any write of a
    /// customer does (`Crm::apply_indexed`), so customers that became
    /// duplicates under the new key show in the duplicate report: none is
    /// merged, and the rebuild is never refused as a duplicate (only new
    /// customers are). Page by page, each page in one
    /// transaction; a row changed meanwhile by someone else fails the page
    /// with a conflict, and running it again finishes the work (rows already
    /// up to date are left alone). Rewritten rows get a new version. One
    /// audit entry on the company records the run.
    pub async fn rebuild_search_keys(&self, actor: &Actor) -> Result<SearchKeyStats> {
        if !actor.is_admin() {
            return Err(Error::Forbidden(format!(
                "{} may not rebuild the search keys: administrators only",
                actor.display_name
            )));
        }
        let company = actor.company_id.0;
        let mut stats = SearchKeyStats::default();
        for (table, sources) in SEARCH_KEY_SOURCES {
            let mut after: Option<Vec<Value>> = None;
            loop {
                let mut sel = Select::all(*table, company, self.now());
                sel.lifecycle = Lifecycle::Any;
                sel.paging = Paging::Keyset {
                    after: after.clone(),
                    limit: PAGE,
                };
                let page = self.store.select(&sel).await?;
                let Some(last) = page.rows.last() else {
                    break;
                };
                after = Some(vec![Value::Id(last.id())]);
                stats.rows += page.rows.len() as u64;
                let mut cs = ChangeSet::default();
                for r in &page.rows {
                    let keys = search_keys_of(r, sources);
                    let mut values = Vec::new();
                    if r.get("pinyin_keys").as_text() != Some(keys.as_str()) {
                        values.push(("pinyin_keys", Value::Text(keys)));
                    }
                    for (col, key) in sort_keys_of(*table, r) {
                        if r.get(col) != &key {
                            values.push((col, key));
                        }
                    }
                    if *table == Table::Customers {
                        // The name key under the current rule: an
                        // individual's is no duplicate key.
                        let key = crate::dedupe::customer_name_key(
                            r.get("name").as_text().unwrap_or_default(),
                            r.get("kind").as_text() == Some("individual"),
                        );
                        if r.get("name_key").as_text() != Some(key.as_str()) {
                            values.push(("name_key", Value::Text(key)));
                        }
                    }
                    if !values.is_empty() {
                        cs.ops.push(Op::Update {
                            table: *table,
                            id: r.id(),
                            expected_version: r.version(),
                            values,
                        });
                    }
                }
                stats.updated += cs.ops.len() as u64;
                if *table == Table::Customers {
                    // A changed name key changes the duplicate keys' rows:
                    // indexed as any write of customers is (the rows of the
                    // old key and the new one, and the flags of the other
                    // customers holding them), refusing nothing, since
                    // these customers exist already.
                    self.apply_indexed(cs).await?;
                } else {
                    self.apply(cs).await?;
                }
                if !page.has_more {
                    break;
                }
            }
        }
        self.apply(ChangeSet {
            audit: vec![self.audit(
                Some(actor),
                company,
                Table::Companies,
                company,
                "rebuild_search_keys",
                vec![FieldChange {
                    field: "search_keys_updated".into(),
                    before: Json::Null,
                    after: Json::from(stats.updated),
                }],
            )],
            ..ChangeSet::default()
        })
        .await?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rebuild_visits_every_table_with_sort_keys() {
        for (table, text, key) in SORT_KEYS {
            assert!(
                SEARCH_KEY_SOURCES.iter().any(|(t, _)| t == table),
                "{table} has sort keys but is not rebuilt"
            );
            assert!(table.column(text).is_some(), "{table}.{text}");
            assert!(
                table.column(key).is_some_and(|c| c.nullable),
                "{table}.{key}"
            );
            assert_eq!(table.sort_key_of(text), Some(*key));
        }
    }
}
