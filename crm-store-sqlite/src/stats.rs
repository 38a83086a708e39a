//! Planner statistics written by hand: the shape of the data, not its size.
//!
//! Without statistics SQLite assumes that an equality on the first column of
//! any index finds about ten rows. Most indexes here begin with
//! `company_id`, which one company's rows all share, so the planner takes
//! "company_id = ?" for a selective filter: for the duplicate check of a new
//! customer (`company_id = ? AND name_key = ? ORDER BY id LIMIT 1`) it
//! walked the whole company through `(company_id, id)`, which is in id
//! order, instead of reading the one row through the name key's index —
//! 33 ms instead of 0.1 ms at 100 000 customers. Real statistics (`ANALYZE`) fix
//! that but cost a scan of every index, go stale as a table grows, and taken
//! early in a bulk import mislead the planner for the rest of it (measured:
//! an import of 100 000 rows 40 % slower).
//!
//! So the store writes `sqlite_stat1` rows that say what holds at any size
//! (SQLite documents this use of the table): a large table; `company_id`
//! narrows nothing; any other column narrows to a few rows; a unique index
//! ends at one row; a partial index holds a small part of its table. Rows
//! are added at open for indexes that have none, so new migrations' indexes
//! get theirs; rows already there (a user's own `ANALYZE`) are kept.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// The table size the statistics describe.
const ROWS: u64 = 1_000_000;
/// Rows an equality on any column but `company_id` is taken to find.
const NARROW: u64 = 10;
/// How much smaller than its table a partial index is taken to be.
const PARTIAL_SHARE: u64 = 1000;

/// The `stat` text of an index over `columns`.
fn shape(columns: &[String], unique: bool, partial: bool) -> String {
    let rows = if partial { ROWS / PARTIAL_SHARE } else { ROWS };
    let mut out = vec![rows];
    let mut now = rows;
    for c in columns {
        if c != "company_id" {
            now = now.min(NARROW);
        }
        out.push(now);
    }
    if unique && let Some(last) = out.last_mut() {
        *last = 1;
    }
    out.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

/// Adds the statistics of every index that has none, in one transaction
/// (two programs opening a new database at once add them once). Returns how
/// many it added; a connection reads them when it next loads the schema.
pub(crate) fn write(conn: &mut Connection) -> rusqlite::Result<usize> {
    // Read first: when every index has its row (every open but the first
    // after a migration), no write lock is taken, so opening the file
    // never waits on another process's long write.
    if complete(conn)? {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let added = write_in(&tx)?;
    tx.commit()?;
    Ok(added)
}

/// Whether `sqlite_stat1` exists and has a row for every index.
fn complete(conn: &Connection) -> rusqlite::Result<bool> {
    let has_table: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'",
        [],
        |r| r.get(0),
    )?;
    if has_table == 0 {
        return Ok(false);
    }
    let missing: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_schema s WHERE s.type = 'index' \
         AND s.tbl_name NOT LIKE 'sqlite_%' \
         AND NOT EXISTS (SELECT 1 FROM sqlite_stat1 t WHERE t.tbl = s.tbl_name AND t.idx = s.name)",
        [],
        |r| r.get(0),
    )?;
    Ok(missing == 0)
}

fn write_in(conn: &Connection) -> rusqlite::Result<usize> {
    let has_table: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'",
        [],
        |r| r.get(0),
    )?;
    if has_table == 0 {
        // Creates `sqlite_stat1` (and analyzes nothing else).
        conn.execute_batch("ANALYZE sqlite_schema")?;
    }
    let indexes: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, tbl_name FROM sqlite_schema \
             WHERE type = 'index' AND tbl_name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut added = 0;
    for (index, table) in indexes {
        let known = conn
            .query_row(
                "SELECT 1 FROM sqlite_stat1 WHERE tbl = ?1 AND idx = ?2",
                params![table, index],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if known {
            continue;
        }
        let (unique, partial): (bool, bool) = conn.query_row(
            "SELECT \"unique\", partial FROM pragma_index_list(?1) WHERE name = ?2",
            params![table, index],
            |r| Ok((r.get::<_, i64>(0)? == 1, r.get::<_, i64>(1)? == 1)),
        )?;
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
            .query_map([&index], |r| r.get::<_, Option<String>>(0))?
            .map(|c| c.map(Option::unwrap_or_default))
            .collect::<rusqlite::Result<_>>()?;
        conn.execute(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?1, ?2, ?3)",
            params![table, index, shape(&columns, unique, partial)],
        )?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn company_narrows_nothing_other_columns_do_and_unique_ends_at_one() {
        assert_eq!(
            shape(&cols(&["company_id", "name_key"]), false, false),
            "1000000 1000000 10"
        );
        assert_eq!(
            shape(&cols(&["company_id", "code"]), true, true),
            "1000 1000 1"
        );
        assert_eq!(shape(&cols(&["id"]), true, false), "1000000 1");
        assert_eq!(
            shape(&cols(&["customer_id", "company_id"]), false, false),
            "1000000 10 10"
        );
    }
}
