//! Keeping the planner's statistics in step with bulk writes.
//!
//! sqlx prepares every statement and PostgreSQL switches a prepared statement
//! to a generic plan after five executions. A plan made while a table was
//! empty or never analyzed (a fresh schema, the first batches of an import)
//! believes the table holds a handful of rows: a duplicate probe
//! `company_id = $1 AND kind = $2 AND key = ANY($3)` then uses the index for
//! `(company_id, kind)` only and tests every key row of that kind against the
//! whole array — one probe per batch grows with the table and an import
//! becomes quadratic. Autovacuum analyzes such a table only after its naptime
//! and only when it notices, which a bulk import outruns.
//!
//! So the store analyzes a table itself once the rows it inserted since the
//! table's statistics were taken reach the number those statistics describe
//! (at least [`MIN_ROWS`]): statistics taken at 1,000 rows are refreshed at
//! about 2,000, then 4,000 … `ANALYZE` invalidates the cached plans of the
//! table, so the next executions are planned with the new figures.
//!
//! It stops once the statistics describe [`ENOUGH_ROWS`]: the planner scales
//! the row count of the statistics by the table's current size, so a table
//! known to be large stays large to it, and the index probes stay the
//! cheapest plan however much the table grows; the distribution (companies,
//! key kinds, unique keys) is what the sample said. Refreshing from there on
//! is autovacuum's job, in the background: an `ANALYZE` of a wide table costs
//! up to a second (a sample of 30,000 rows), which a writer should not wait
//! for once the plans are right.

use crm_core::schema::Table;
use crm_core::store::{ChangeSet, Op};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Fewer inserted rows than this never trigger an `ANALYZE`: small tables are
/// cheap whatever the plan, and autovacuum looks after steady traffic.
pub(crate) const MIN_ROWS: u64 = 500;

/// Statistics describing this many rows are left to autovacuum.
pub(crate) const ENOUGH_ROWS: f64 = 10_000.0;

/// What this store knows about one table's statistics.
#[derive(Debug, Default)]
struct Entry {
    /// The rows the table's statistics describe (`pg_class.reltuples` when
    /// first seen, 0 when never analyzed), `None` until looked up.
    described: Option<f64>,
    /// Rows this store inserted since.
    inserted: u64,
}

/// Per-table insert counters of one store (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct Growth {
    tables: Mutex<HashMap<Table, Entry>>,
}

/// What to do for a table after a committed change set.
#[derive(Debug, PartialEq)]
pub(crate) enum Next {
    /// Nothing.
    Nothing,
    /// Look up what the statistics describe, then call [`Growth::settle`].
    LookUp,
    /// Run `ANALYZE` on the table.
    Analyze,
}

impl Growth {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Table, Entry>) -> R) -> R {
        // A panic while holding the lock leaves plain counters behind: keep
        // using them.
        let mut guard = match self.tables.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Counts `rows` inserted into `table` and tells what to do next.
    pub(crate) fn record(&self, table: Table, rows: u64) -> Next {
        self.with(|tables| {
            let e = tables.entry(table).or_default();
            e.inserted = e.inserted.saturating_add(rows);
            match e.described {
                // Not worth a query before there is something to analyze.
                None if e.inserted < MIN_ROWS => Next::Nothing,
                None => Next::LookUp,
                Some(_) => due(e),
            }
        })
    }

    /// Records what `table`'s statistics describe (`reltuples`, negative when
    /// never analyzed) unless known already, and tells what to do next.
    pub(crate) fn settle(&self, table: Table, reltuples: f64) -> Next {
        self.with(|tables| {
            let e = tables.entry(table).or_default();
            if e.described.is_none() {
                e.described = Some(reltuples.max(0.0));
            }
            due(e)
        })
    }
}

/// Whether `e` has grown enough for new statistics and still needs them;
/// when so, counts them as taken (so that concurrent writers do not analyze the table again).
fn due(e: &mut Entry) -> Next {
    let described = e.described.unwrap_or(0.0);
    let inserted = e.inserted as f64;
    if described < ENOUGH_ROWS && e.inserted >= MIN_ROWS && inserted >= described {
        e.described = Some(described + inserted);
        e.inserted = 0;
        Next::Analyze
    } else {
        Next::Nothing
    }
}

/// The rows each table gains from a change set's inserts.
pub(crate) fn inserts(changes: &ChangeSet) -> BTreeMap<Table, u64> {
    let mut out = BTreeMap::new();
    for op in &changes.ops {
        if let Op::Insert { table, .. } = op {
            *out.entry(*table).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzes_when_the_inserted_rows_reach_the_described_ones() {
        let g = Growth::default();
        // Nothing to do, not even a look-up, for fewer than MIN_ROWS rows.
        assert_eq!(g.record(Table::Customers, 10), Next::Nothing);
        assert_eq!(g.record(Table::Customers, 489), Next::Nothing);
        assert_eq!(g.record(Table::Customers, 1), Next::LookUp);
        // Never analyzed: due now.
        assert_eq!(g.settle(Table::Customers, -1.0), Next::Analyze);
        // Statistics of 500 rows: due again at 1,000 rows.
        assert_eq!(g.record(Table::Customers, 499), Next::Nothing);
        assert_eq!(g.record(Table::Customers, 1), Next::Analyze);
        // 1,000 rows: the next 999 are not enough, 1,000 are.
        assert_eq!(g.record(Table::Customers, 999), Next::Nothing);
        assert_eq!(g.record(Table::Customers, 1), Next::Analyze);
        // Other tables count on their own; a looked-up figure is kept.
        assert_eq!(g.record(Table::Contacts, 600), Next::LookUp);
        assert_eq!(g.settle(Table::Contacts, 1e6), Next::Nothing);
        assert_eq!(g.settle(Table::Contacts, 0.0), Next::Nothing);
    }

    #[test]
    fn a_bulk_import_analyzes_until_the_statistics_describe_enough_rows() {
        let g = Growth::default();
        assert_eq!(g.record(Table::CustomerKeys, 4000), Next::LookUp);
        let mut at = Vec::new();
        if g.settle(Table::CustomerKeys, -1.0) == Next::Analyze {
            at.push(1);
        }
        for batch in 2..=100 {
            if g.record(Table::CustomerKeys, 4000) == Next::Analyze {
                at.push(batch);
            }
        }
        // At 4,000, 8,000 and 16,000 rows; then the statistics describe
        // more than ENOUGH_ROWS.
        assert_eq!(at, vec![1, 2, 4]);
        // A table analyzed elsewhere while large is left alone.
        assert_eq!(g.record(Table::Customers, 5000), Next::LookUp);
        assert_eq!(g.settle(Table::Customers, 20_000.0), Next::Nothing);
        assert_eq!(g.record(Table::Customers, 50_000), Next::Nothing);
    }
}
