//! Compiles a [`Select`] into SQL whose values are bound parameters.
//!
//! Column names come from the schema description ([`Table::column`]) and
//! are quoted; every value, including custom field paths, the share entity
//! and "now", is a bound parameter — except a boolean compared for
//! (in)equality, which is written as the literal `1` or `0` (see
//! [`bool_literal`]). The main table is aliased `t`, related tables `r1`,
//! `r2` … by nesting depth, the share lookup `s`.
//!
//! Filters of any size fit SQLite's limits: an `In` list of more than
//! [`IN_LIST_MAX`] values is one JSON array parameter read by `json_each`
//! ([`push_in_list`]), and an `And`/`Or` of more than [`CHAIN_MAX`] terms
//! is written as a balanced tree of groups ([`compile_chain`]).

use crate::codec::{encode, encode_custom, invalid, timestamp_text};
use crm_core::schema::{ColType, ColumnDef, Table};
use crm_core::store::{
    CmpOp, Col, CustomType, Filter, Lifecycle, Paging, Scope, Select, Sort, StoreError,
};
use crm_core::value::Value;
use rusqlite::types::Value as Sql;

/// SQL text with its positional (`?`) parameters, in order.
#[derive(Debug, Default)]
pub(crate) struct Query {
    /// The statement.
    pub(crate) text: String,
    /// The parameters, in the order of the `?`s in `text`.
    pub(crate) params: Vec<Sql>,
}

impl Query {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn bind(&mut self, v: Sql) {
        self.text.push('?');
        self.params.push(v);
    }

    fn append(&mut self, other: Query) {
        self.text.push_str(&other.text);
        self.params.extend(other.params);
    }
}

/// A compiled select: the page query, the optional count query and the
/// page size whose overflow row tells `has_more`.
#[derive(Debug)]
pub(crate) struct CompiledSelect {
    /// Selects the rows of the page (one more than `limit`, when paged).
    pub(crate) page: Query,
    /// Counts every matching row, ignoring paging.
    pub(crate) count: Option<Query>,
    /// The page size, when paged.
    pub(crate) limit: Option<u64>,
}

/// A resolved column expression.
#[derive(Clone, Debug)]
enum Expr {
    Column(ColumnDef),
    Custom { key: String, ty: CustomType },
}

fn resolve(table: Table, col: &Col) -> Result<Expr, StoreError> {
    match col {
        Col::Column(name) => table
            .column(name)
            .map(Expr::Column)
            .ok_or_else(|| invalid(format!("{table} has no column {name:?}"))),
        Col::Custom { key, ty } => {
            if table.column("custom").is_none() {
                return Err(invalid(format!(
                    "{table} has no custom fields (asked for {key:?})"
                )));
            }
            let mut chars = key.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(invalid(format!("invalid custom field key {key:?}")));
            }
            Ok(Expr::Custom {
                key: key.clone(),
                ty: *ty,
            })
        }
    }
}

fn push_expr(q: &mut Query, alias: &str, e: &Expr) {
    match e {
        Expr::Column(c) => q.push(&format!("{alias}.\"{}\"", c.name)),
        Expr::Custom { key, ty } => {
            let path = format!("$.\"{key}\"");
            let (types, value) = match ty {
                CustomType::Text => ("'text'", "json_extract"),
                CustomType::Number => ("'integer', 'real'", "CAST(json_extract"),
                CustomType::Bool => ("'true', 'false'", "json_extract"),
            };
            q.push(&format!("(CASE WHEN json_type({alias}.\"custom\", "));
            q.bind(Sql::Text(path.clone()));
            q.push(&format!(") IN ({types}) THEN {value}({alias}.\"custom\", "));
            q.bind(Sql::Text(path));
            q.push(if *ty == CustomType::Number {
                ") AS REAL) END)"
            } else {
                ") END)"
            });
        }
    }
}

fn encode_for(table: Table, e: &Expr, v: &Value) -> Result<Sql, StoreError> {
    match e {
        Expr::Column(c) => encode(table, c, v),
        Expr::Custom { key, ty } => encode_custom(key, *ty, v),
    }
}

/// Whether the expression may be NULL: a custom field always (missing or
/// of another type), a column when the schema allows it.
fn nullable(e: &Expr) -> bool {
    match e {
        Expr::Column(c) => c.nullable,
        Expr::Custom { .. } => true,
    }
}

fn describe(table: Table, e: &Expr) -> String {
    match e {
        Expr::Column(c) => format!("{table}.{}", c.name),
        Expr::Custom { key, .. } => format!("{table}.custom.{key}"),
    }
}

/// Refuses comparing or sorting JSON documents: their order differs between
/// backends.
fn ordered(table: Table, e: &Expr) -> Result<(), StoreError> {
    match e {
        Expr::Column(c) if c.ty == ColType::Json => Err(invalid(format!(
            "{}: JSON columns cannot be compared or sorted",
            describe(table, e)
        ))),
        _ => Ok(()),
    }
}

fn textual(table: Table, e: &Expr) -> Result<(), StoreError> {
    match e {
        Expr::Column(c) if c.ty == ColType::Text => Ok(()),
        Expr::Custom {
            ty: CustomType::Text,
            ..
        } => Ok(()),
        _ => Err(invalid(format!(
            "{}: text matching needs a text column",
            describe(table, e)
        ))),
    }
}

/// The SQL literal (`1` or `0`) of a boolean value compared for equality or
/// inequality with a boolean column or custom field; `None` for anything
/// else, which is bound as usual.
///
/// SQLite uses a partial index (`customer_keys_duplicate_rows … WHERE
/// duplicate = 1`) only when the query's WHERE clause implies the index's
/// condition, and `duplicate = ?` never does, whatever is bound. The literal
/// is one of two fixed strings, so no caller-provided text reaches the SQL.
fn bool_literal(e: &Expr, v: &Value) -> Option<&'static str> {
    let boolean = match e {
        Expr::Column(c) => c.ty == ColType::Bool,
        Expr::Custom { ty, .. } => *ty == CustomType::Bool,
    };
    match v {
        Value::Bool(b) if boolean => Some(if *b { "1" } else { "0" }),
        _ => None,
    }
}

/// Escapes `\`, `%` and `_` for `LIKE … ESCAPE '\'`.
fn escape_like(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len());
    for c in needle.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `In` lists of more values than this are bound as one JSON array
/// ([`push_in_list`]) rather than one parameter per value.
///
/// SQLite refuses a statement of more than 32 766 parameters, and one
/// statement may hold several lists (a duplicate guard's `Or` holds one
/// per customer), so a list must stay far below that; up to 500 values the
/// list is written as before, one `?` each, which keeps the plans of the
/// usual short lists (scopes, duplicate probes of a batch's keys) as they
/// are, while above it binding, parsing and preparing tens of thousands of
/// parameters would cost more than SQLite reading one JSON text.
const IN_LIST_MAX: usize = 500;

/// `And`/`Or` chains of more terms than this are written as a balanced
/// tree of parenthesised groups of at most this many terms
/// ([`compile_chain`]).
///
/// SQLite's parser nests a flat chain `a OR b OR c …` one level per term
/// and refuses expressions deeper than 1 000 levels; grouped, a chain of
/// `n` terms is about `64 · log₆₄ n` levels deep (about 130 for 4 000
/// terms). Shorter chains are written flat, as they always were.
const CHAIN_MAX: usize = 64;

/// The JSON array text of encoded values, when JSON carries every one of
/// them exactly as SQLite compares it: TEXT as a string, INTEGER as a
/// number (SQLite reads JSON integers back as 64-bit integers), NULL as
/// `null`. `None` for REAL (a custom number: see [`json_reals`]) and BLOB
/// values, which keep one parameter each.
fn json_array(values: &[Sql]) -> Option<String> {
    let mut out = String::with_capacity(values.len() * 40 + 2);
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Sql::Null => out.push_str("null"),
            Sql::Integer(n) => out.push_str(&n.to_string()),
            Sql::Text(t) => out.push_str(&serde_json::to_string(t).ok()?),
            Sql::Real(_) | Sql::Blob(_) => return None,
        }
    }
    out.push(']');
    Some(out)
}

/// The JSON array text of REAL (and NULL) values, each number written as
/// the shortest text that reads back as the same `f64` (as the core writes
/// custom numbers into `custom`). `None` when another type, or a number
/// JSON cannot hold (NaN, infinities), is among them.
fn json_reals(values: &[Sql]) -> Option<String> {
    let mut out = String::with_capacity(values.len() * 24 + 2);
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Sql::Null => out.push_str("null"),
            Sql::Real(x) if x.is_finite() => {
                out.push_str(&serde_json::Number::from_f64(*x)?.to_string());
            }
            _ => return None,
        }
    }
    out.push(']');
    Some(out)
}

/// Writes ` IN (…)` of encoded values (at least one) after an expression.
///
/// Up to [`IN_LIST_MAX`] values, or values JSON cannot carry
/// ([`json_array`]), are bound one `?` each. A longer list is one JSON
/// array parameter, `IN (SELECT value FROM json_each(?))`: `json_each`
/// yields each element as the SQL value it was encoded from (TEXT, INTEGER
/// or NULL) and its `value` column has no affinity, so the comparison
/// takes the column's, as for a list; `x IN (subquery)` has the same NULL
/// semantics as `x IN (list)` (NULL when `x` is NULL, or when no value is
/// equal and one is NULL), also under `NOT`; and SQLite still probes an
/// index of the column once per value of the (materialised) subquery.
///
/// A long list of REAL values (a custom number's) is one JSON array too,
/// read as `CAST(value AS REAL)` ([`json_reals`]): the number text goes
/// through the same JSON number parser as the stored custom value it is
/// compared with, which is read from the JSON text of `custom`.
fn push_in_list(q: &mut Query, values: Vec<Sql>) {
    if values.len() > IN_LIST_MAX {
        if let Some(json) = json_array(&values) {
            q.push(" IN (SELECT value FROM json_each(");
            q.bind(Sql::Text(json));
            q.push("))");
            return;
        }
        if let Some(json) = json_reals(&values) {
            q.push(" IN (SELECT CAST(value AS REAL) FROM json_each(");
            q.bind(Sql::Text(json));
            q.push("))");
            return;
        }
    }
    q.push(" IN (");
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind(v);
    }
    q.push(")");
}

/// Writes the terms of an `And` or `Or` (at least one) joined by `joiner`,
/// in parentheses: flat up to [`CHAIN_MAX`] terms, otherwise as at most
/// [`CHAIN_MAX`] groups of consecutive terms, each written the same way.
/// `AND` and `OR` are associative, also with NULLs, so the grouping changes
/// nothing but the depth of the expression.
fn compile_chain(
    q: &mut Query,
    table: Table,
    alias: &str,
    depth: usize,
    joiner: &str,
    parts: &[Filter],
) -> Result<(), StoreError> {
    q.push("(");
    if parts.len() <= CHAIN_MAX {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                q.push(joiner);
            }
            compile_filter(q, table, alias, depth, part)?;
        }
    } else {
        for (i, group) in parts.chunks(parts.len().div_ceil(CHAIN_MAX)).enumerate() {
            if i > 0 {
                q.push(joiner);
            }
            compile_chain(q, table, alias, depth, joiner, group)?;
        }
    }
    q.push(")");
    Ok(())
}

/// The SQL function [`Filter::TextKeyIn`] folds a column's text with:
/// [`crm_core::validate::text_key`] of a TEXT argument, NULL for anything
/// else. Registered on every connection the store opens
/// ([`register_functions`]); nothing in the schema uses it, so the file
/// stays readable by any SQLite.
pub(crate) const TEXT_KEY_FN: &str = "crm_text_key";

/// The SQL function [`Filter::TextKeyLike`] folds a column's text with:
/// [`crm_core::validate::search_key`] of a TEXT argument, NULL for anything
/// else. Registered beside [`TEXT_KEY_FN`].
pub(crate) const SEARCH_KEY_FN: &str = "crm_search_key";

/// Registers the store's SQL functions ([`TEXT_KEY_FN`],
/// [`SEARCH_KEY_FN`]) on a connection.
pub(crate) fn register_functions(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    type Fold = fn(&str) -> String;
    let folds: [(&str, Fold); 2] = [
        (TEXT_KEY_FN, crm_core::validate::text_key),
        (SEARCH_KEY_FN, crm_core::validate::search_key),
    ];
    for (name, fold) in folds {
        conn.create_scalar_function(
            name,
            1,
            FunctionFlags::SQLITE_UTF8
                | FunctionFlags::SQLITE_DETERMINISTIC
                | FunctionFlags::SQLITE_INNOCUOUS,
            move |ctx| {
                Ok(match ctx.get_raw(0) {
                    ValueRef::Text(bytes) => Some(fold(&String::from_utf8_lossy(bytes))),
                    _ => None,
                })
            },
        )?;
    }
    Ok(())
}

fn compile_filter(
    q: &mut Query,
    table: Table,
    alias: &str,
    depth: usize,
    f: &Filter,
) -> Result<(), StoreError> {
    match f {
        Filter::True => q.push("1"),
        Filter::Cmp(col, op, v) => {
            let e = resolve(table, col)?;
            ordered(table, &e)?;
            let literal = if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                bool_literal(&e, v)
            } else {
                None
            };
            let op = match op {
                CmpOp::Eq => " = ",
                CmpOp::Ne => " IS NOT ",
                CmpOp::Lt => " < ",
                CmpOp::Le => " <= ",
                CmpOp::Gt => " > ",
                CmpOp::Ge => " >= ",
            };
            let v = encode_for(table, &e, v)?;
            q.push("(");
            push_expr(q, alias, &e);
            q.push(op);
            match literal {
                Some(l) => q.push(l),
                None => q.bind(v),
            }
            q.push(")");
        }
        Filter::In(col, values) => {
            let e = resolve(table, col)?;
            ordered(table, &e)?;
            if values.is_empty() {
                q.push("0");
                return Ok(());
            }
            let values = values
                .iter()
                .map(|v| encode_for(table, &e, v))
                .collect::<Result<Vec<_>, _>>()?;
            q.push("(");
            push_expr(q, alias, &e);
            push_in_list(q, values);
            q.push(")");
        }
        Filter::Contains(col, needle) | Filter::StartsWith(col, needle)
            if needle.len() > LONG_NEEDLE =>
        {
            // Past what a LIKE pattern may be (SQLite refuses one of more
            // than 50 000 bytes as "too complex"): found by position, with
            // the same folding.
            let e = resolve(table, col)?;
            textual(table, &e)?;
            q.push("(instr(lower(");
            push_expr(q, alias, &e);
            q.push("), lower(");
            q.bind(Sql::Text(needle.clone()));
            q.push(if matches!(f, Filter::Contains(..)) {
                ")) > 0)"
            } else {
                ")) = 1)"
            });
        }
        Filter::Contains(col, needle) | Filter::StartsWith(col, needle) => {
            let e = resolve(table, col)?;
            textual(table, &e)?;
            let pattern = match f {
                Filter::Contains(..) => format!("%{}%", escape_like(needle)),
                _ => format!("{}%", escape_like(needle)),
            };
            // SQLite's `lower()` (no ICU in the bundled build) and `LIKE`
            // fold ASCII letters only; PostgreSQL lowers in `COLLATE "C"`
            // to match.
            q.push("(lower(");
            push_expr(q, alias, &e);
            q.push(") LIKE lower(");
            q.bind(Sql::Text(pattern));
            q.push(") ESCAPE '\\')");
        }
        Filter::TextKeyLike {
            col,
            needle,
            prefix,
        } if needle.len() > LONG_NEEDLE => {
            let e = resolve(table, col)?;
            textual(table, &e)?;
            q.push(&format!("(instr({SEARCH_KEY_FN}("));
            push_expr(q, alias, &e);
            q.push("), ");
            q.bind(Sql::Text(crm_core::validate::search_key(needle)));
            q.push(if *prefix { ") = 1)" } else { ") > 0)" });
        }
        Filter::TextKeyLike {
            col,
            needle,
            prefix,
        } => {
            let e = resolve(table, col)?;
            textual(table, &e)?;
            let key = escape_like(&crm_core::validate::search_key(needle));
            let pattern = if *prefix {
                format!("{key}%")
            } else {
                format!("%{key}%")
            };
            // SQLite's LIKE folds ASCII case too, which changes nothing:
            // both sides are lowercase already.
            q.push(&format!("({SEARCH_KEY_FN}("));
            push_expr(q, alias, &e);
            q.push(") LIKE ");
            q.bind(Sql::Text(pattern));
            q.push(" ESCAPE '\\')");
        }
        Filter::TextKeyIn(col, keys) => {
            let e = resolve(table, col)?;
            textual(table, &e)?;
            if keys.is_empty() {
                q.push("0");
                return Ok(());
            }
            let keys = keys
                .iter()
                .map(|k| Sql::Text(crm_core::validate::text_key(k)))
                .collect();
            q.push(&format!("({TEXT_KEY_FN}("));
            push_expr(q, alias, &e);
            q.push(")");
            push_in_list(q, keys);
            q.push(")");
        }
        Filter::IsNull(col) | Filter::NotNull(col) => {
            let e = resolve(table, col)?;
            q.push("(");
            push_expr(q, alias, &e);
            q.push(if matches!(f, Filter::IsNull(_)) {
                " IS NULL)"
            } else {
                " IS NOT NULL)"
            });
        }
        Filter::And(parts) | Filter::Or(parts) => {
            let (joiner, empty) = if matches!(f, Filter::And(_)) {
                (" AND ", "1")
            } else {
                (" OR ", "0")
            };
            if parts.is_empty() {
                q.push(empty);
                return Ok(());
            }
            compile_chain(q, table, alias, depth, joiner, parts)?;
        }
        Filter::HoldsId(col, id) => {
            let c = match resolve(table, col)? {
                Expr::Column(c) if c.ty == ColType::Json => c,
                e => {
                    return Err(invalid(format!(
                        "{}: looking for an id inside needs a JSON column",
                        describe(table, &e)
                    )));
                }
            };
            // Every value inside the document, at any depth; ids are
            // stored as hyphenated text, as serde writes them.
            q.push(&format!(
                "EXISTS (SELECT 1 FROM json_tree({alias}.\"{}\") WHERE json_tree.atom = ",
                c.name
            ));
            q.bind(Sql::Text(id.to_string()));
            q.push(")");
        }
        Filter::Not(inner) => {
            q.push("(NOT ");
            compile_filter(q, table, alias, depth, inner)?;
            q.push(")");
        }
        Filter::Related {
            table: related,
            fk,
            filter,
        } => {
            let fk_col = related
                .column(fk)
                .ok_or_else(|| invalid(format!("{related} has no column {fk:?}")))?;
            if fk_col.ty != ColType::Id {
                return Err(invalid(format!("{related}.{fk} is not a reference")));
            }
            let r = format!("r{}", depth + 1);
            q.push(&format!(
                "EXISTS (SELECT 1 FROM \"{}\" {r} WHERE {r}.\"{}\" = {alias}.\"id\" AND {r}.\"deleted_at\" IS NULL AND ",
                related.name(),
                fk_col.name
            ));
            compile_filter(q, *related, &r, depth + 1, filter)?;
            q.push(")");
        }
        Filter::Refers {
            fk,
            table: referred,
            filter,
        } => {
            let fk_col = table
                .column(fk)
                .ok_or_else(|| invalid(format!("{table} has no column {fk:?}")))?;
            if fk_col.ty != ColType::Id {
                return Err(invalid(format!("{table}.{fk} is not a reference")));
            }
            let r = format!("r{}", depth + 1);
            q.push(&format!(
                "EXISTS (SELECT 1 FROM \"{}\" {r} WHERE {r}.\"id\" = {alias}.\"{}\" AND ",
                referred.name(),
                fk_col.name
            ));
            compile_filter(q, *referred, &r, depth + 1, filter)?;
            q.push(")");
        }
    }
    Ok(())
}

/// The WHERE condition shared by the page and the count: company,
/// lifecycle, scope and filter.
fn compile_where(s: &Select) -> Result<Query, StoreError> {
    let table = s.table;
    let owned = table.is_owned();
    let mut q = Query::default();
    q.push("t.\"company_id\" = ");
    q.bind(Sql::Text(crate::codec::id_text(&s.company)));
    match s.lifecycle {
        Lifecycle::Active if owned => {
            q.push(" AND t.\"deleted_at\" IS NULL AND t.\"archived_at\" IS NULL")
        }
        Lifecycle::Active => q.push(" AND t.\"deleted_at\" IS NULL"),
        Lifecycle::Deleted => q.push(" AND t.\"deleted_at\" IS NOT NULL"),
        Lifecycle::Archived if owned => {
            q.push(" AND t.\"deleted_at\" IS NULL AND t.\"archived_at\" IS NOT NULL")
        }
        Lifecycle::Archived => q.push(" AND 0"),
        Lifecycle::Any => {}
    }
    if let (
        true,
        Scope::Restricted {
            owners,
            departments,
            shared_with,
        },
    ) = (owned, &s.scope)
    {
        let mut parts: Vec<Query> = Vec::new();
        for (column, ids) in [("owner_id", owners), ("department_id", departments)] {
            if ids.is_empty() {
                continue;
            }
            let mut p = Query::default();
            p.push(&format!("t.\"{column}\""));
            push_in_list(
                &mut p,
                ids.iter()
                    .map(|id| Sql::Text(crate::codec::id_text(id)))
                    .collect(),
            );
            parts.push(p);
        }
        if let Some(user) = shared_with {
            // `id IN (…)` rather than a correlated EXISTS: every term of the
            // OR can then be read through an index (owners and departments
            // through theirs, 0007; shared records by id), so a scoped list
            // or count does not walk the whole company.
            let mut p = Query::default();
            p.push("t.\"id\" IN (SELECT s.\"record_id\" FROM \"shares\" s WHERE s.\"user_id\" = ");
            p.bind(Sql::Text(crate::codec::id_text(user)));
            p.push(" AND s.\"entity\" = ");
            p.bind(Sql::Text(table.name().to_owned()));
            p.push(" AND s.\"deleted_at\" IS NULL AND (s.\"expires_at\" IS NULL OR s.\"expires_at\" > ");
            p.bind(Sql::Text(timestamp_text(&s.now)));
            p.push("))");
            parts.push(p);
        }
        if parts.is_empty() {
            q.push(" AND 0");
        } else {
            q.push(" AND (");
            for (i, p) in parts.into_iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.append(p);
            }
            q.push(")");
        }
    }
    if let Some(m) = s.filter.nul_refusal(table) {
        return Err(StoreError::Invalid { table, detail: m });
    }
    if s.filter != Filter::True {
        q.push(" AND ");
        compile_filter(&mut q, table, "t", 0, &s.filter)?;
    }
    Ok(q)
}

/// The longest text (in bytes) searched for with `LIKE`: SQLite refuses a
/// pattern of more than 50 000 bytes, so a longer one is found with
/// `instr` instead (the same folding, no index either way).
const LONG_NEEDLE: usize = 10_000;

/// The keyset condition "strictly after `after` in sort order", where NULL
/// sorts after every value in both directions (NULLS LAST, ascending and
/// descending) and `id` ascending breaks ties.
fn compile_keyset(
    table: Table,
    keys: &[(Expr, bool)],
    after: &[Value],
) -> Result<Query, StoreError> {
    if after.len() != keys.len() + 1 {
        return Err(invalid(format!(
            "keyset cursor has {} values, expected {} (one per sort key, then the id)",
            after.len(),
            keys.len() + 1
        )));
    }
    let id_col = table
        .column("id")
        .ok_or_else(|| invalid(format!("{table} has no id column")))?;
    let id = match &after[keys.len()] {
        Value::Id(_) => encode(table, &id_col, &after[keys.len()])?,
        other => {
            return Err(invalid(format!(
                "keyset cursor must end with the row id, found {other:?}"
            )));
        }
    };
    let mut q = Query::default();
    q.push("(");
    for i in 0..=keys.len() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(");
        // Equal on every earlier key …
        for ((e, _), v) in keys[..i].iter().zip(after) {
            push_expr(&mut q, "t", e);
            if v.is_null() {
                q.push(" IS NULL");
            } else {
                q.push(" = ");
                q.bind(encode_for(table, e, v)?);
            }
            q.push(" AND ");
        }
        // … and after on this one.
        if i == keys.len() {
            q.push("t.\"id\" > ");
            q.bind(id.clone());
        } else {
            let (e, desc) = &keys[i];
            let v = &after[i];
            if v.is_null() {
                // Nothing sorts after NULL but other NULLs (equal here).
                q.push("0");
            } else {
                // A value is followed by the values past it, then by NULL
                // (which a NOT NULL column never holds).
                q.push("(");
                push_expr(&mut q, "t", e);
                q.push(if *desc { " < " } else { " > " });
                q.bind(encode_for(table, e, v)?);
                if nullable(e) {
                    q.push(" OR ");
                    push_expr(&mut q, "t", e);
                    q.push(" IS NULL");
                }
                q.push(")");
            }
        }
        q.push(")");
    }
    q.push(")");
    Ok(q)
}

fn sql_limit(n: u64) -> Sql {
    Sql::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Compiles a select.
/// `SELECT COUNT(*)` of a select's rows, without order or paging (the
/// change sets' guards).
pub(crate) fn compile_count(s: &Select) -> Result<Query, StoreError> {
    let mut c = Query::default();
    c.push("SELECT COUNT(*)");
    c.push(&format!(" FROM \"{}\" t WHERE ", s.table.name()));
    c.append(compile_where(s)?);
    Ok(c)
}

pub(crate) fn compile_select(s: &Select) -> Result<CompiledSelect, StoreError> {
    let table = s.table;
    let keys = s
        .sort
        .iter()
        .map(|Sort { col, desc }| {
            let e = resolve(table, col)?;
            ordered(table, &e)?;
            Ok((e, *desc))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let where_ = compile_where(s)?;
    let from = format!(" FROM \"{}\" t WHERE ", table.name());

    let count = if s.with_total {
        let mut c = Query::default();
        c.push("SELECT COUNT(*)");
        c.push(&from);
        c.append(Query {
            text: where_.text.clone(),
            params: where_.params.clone(),
        });
        Some(c)
    } else {
        None
    };

    let mut page = Query::default();
    page.push("SELECT ");
    page.push(&crate::codec::select_list(table, "t"));
    page.push(&from);
    page.append(where_);
    if let Paging::Keyset {
        after: Some(after), ..
    } = &s.paging
    {
        page.push(" AND ");
        page.append(compile_keyset(table, &keys, after)?);
    }
    page.push(" ORDER BY ");
    for (e, desc) in &keys {
        push_expr(&mut page, "t", e);
        page.push(if *desc {
            " DESC NULLS LAST, "
        } else {
            " ASC NULLS LAST, "
        });
    }
    page.push("t.\"id\" ASC");
    let limit = match &s.paging {
        Paging::All => None,
        Paging::Offset { offset, limit } => {
            page.push(" LIMIT ");
            page.bind(sql_limit(limit.saturating_add(1)));
            page.push(" OFFSET ");
            page.bind(sql_limit(*offset));
            Some(*limit)
        }
        Paging::Keyset { limit, .. } => {
            page.push(" LIMIT ");
            page.bind(sql_limit(limit.saturating_add(1)));
            Some(*limit)
        }
    };
    Ok(CompiledSelect { page, count, limit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    fn select(filter: Filter) -> Select {
        let now = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let mut s = Select::all(Table::Customers, Uuid::nil(), now);
        s.filter = filter;
        s
    }

    #[test]
    fn values_and_custom_keys_are_bound_never_inlined() {
        let s = select(Filter::And(vec![
            Filter::Cmp(
                Col::Column("name"),
                CmpOp::Eq,
                Value::from("x'); DROP TABLE customers; --"),
            ),
            Filter::Cmp(
                Col::Custom {
                    key: "region".into(),
                    ty: CustomType::Text,
                },
                CmpOp::Eq,
                Value::from("华东"),
            ),
        ]));
        let c = compile_select(&s).expect("compiles");
        assert!(!c.page.text.contains("DROP"), "{}", c.page.text);
        assert!(!c.page.text.contains("region"), "{}", c.page.text);
        assert_eq!(c.page.text.matches('?').count(), c.page.params.len());
    }

    #[test]
    fn unknown_columns_and_bad_custom_keys_are_refused() {
        let err =
            compile_select(&select(Filter::IsNull(Col::Column("nope")))).expect_err("refused");
        assert!(
            err.to_string().contains("customers has no column \"nope\""),
            "{err}"
        );
        let bad = Col::Custom {
            key: "a\"b".into(),
            ty: CustomType::Text,
        };
        assert!(compile_select(&select(Filter::IsNull(bad))).is_err());
    }

    #[test]
    fn like_needles_escape_wildcards_and_backslash() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }

    /// The engine's query of a page of the duplicate report
    /// (`crm_core::dedupe::duplicate_report_page`).
    fn report_select(kinds: &[&str], after: Option<Vec<Value>>) -> Select {
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        let now = select(Filter::True).now;
        crm_core::dedupe::duplicate_report_page(Uuid::nil(), now, &kinds, None, after)
    }

    /// The details of `EXPLAIN QUERY PLAN` of a compiled query.
    fn plan(conn: &rusqlite::Connection, q: &Query) -> String {
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", q.text))
            .expect("prepare");
        let rows = st
            .query_map(rusqlite::params_from_iter(&q.params), |r| {
                r.get::<_, String>(3)
            })
            .expect("explain")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows");
        rows.join("\n")
    }

    /// A scoped list and its count read each term of the scope through an
    /// index (owners, departments, shared records), never the whole company,
    /// with the store's own statistics.
    #[test]
    fn scoped_lists_and_counts_read_through_indexes() {
        let store = crate::SqliteStore::open_in_memory().expect("open");
        let conn = store.writer.lock();
        let me = Uuid::from_u128(7);
        let owned = Table::ALL.into_iter().filter(|t| t.is_owned());
        for (table, departments) in owned.flat_map(|t| {
            [
                (t, Vec::new()),
                (t, vec![Uuid::from_u128(8), Uuid::from_u128(9)]),
            ]
        }) {
            let mut s = select(Filter::True);
            s.table = table;
            s.scope = Scope::Restricted {
                owners: vec![me],
                departments,
                shared_with: Some(me),
            };
            s.with_total = true;
            s.paging = Paging::Offset {
                offset: 0,
                limit: 50,
            };
            let c = compile_select(&s).expect("compiles");
            for q in [&c.page, c.count.as_ref().expect("count")] {
                let p = plan(&conn, q);
                assert!(p.contains("MULTI-INDEX OR"), "{}\n{p}", q.text);
                assert!(!p.contains("SCAN t"), "{}\n{p}", q.text);
                assert!(p.contains("shares_user"), "{table}: {}\n{p}", q.text);
            }
        }
    }

    #[test]
    fn boolean_equality_is_written_as_a_literal() {
        let flag = Col::Custom {
            key: "vip".into(),
            ty: CustomType::Bool,
        };
        let mut s = select(Filter::And(vec![
            Filter::Cmp(Col::Column("duplicate"), CmpOp::Eq, Value::Bool(true)),
            Filter::Cmp(Col::Column("duplicate"), CmpOp::Ne, Value::Bool(false)),
            Filter::Cmp(flag.clone(), CmpOp::Eq, Value::Bool(false)),
            Filter::Cmp(Col::Column("kind"), CmpOp::Eq, Value::from("phone")),
        ]));
        s.table = Table::CustomerKeys;
        let err = compile_select(&s).expect_err("customer_keys has no custom fields");
        assert!(err.to_string().contains("no custom fields"), "{err}");
        if let Filter::And(parts) = &mut s.filter {
            parts.remove(2);
        }
        let c = compile_select(&s).expect("compiles");
        let text = &c.page.text;
        assert!(text.contains(r#"(t."duplicate" = 1)"#), "{text}");
        assert!(text.contains(r#"(t."duplicate" IS NOT 0)"#), "{text}");
        assert!(text.contains(r#"(t."kind" = ?)"#), "{text}");
        assert_eq!(text.matches('?').count(), c.page.params.len());
        assert!(
            !c.page.params.contains(&Sql::Integer(1)),
            "{:?}",
            c.page.params
        );

        let c = compile_select(&select(Filter::Cmp(flag, CmpOp::Eq, Value::Bool(false))))
            .expect("compiles");
        assert!(c.page.text.contains(") END) = 0)"), "{}", c.page.text);
        assert_eq!(c.page.text.matches('?').count(), c.page.params.len());

        // Only booleans: order comparisons stay bound, and a boolean against
        // a column of another type is still refused.
        let c = compile_select(&select(Filter::Cmp(
            Col::Column("locked"),
            CmpOp::Lt,
            Value::Bool(true),
        )))
        .expect("compiles");
        assert!(
            c.page.text.contains(r#"(t."locked" < ?)"#),
            "{}",
            c.page.text
        );
        let wrong = Filter::Cmp(Col::Column("name"), CmpOp::Eq, Value::Bool(true));
        assert!(compile_select(&select(wrong)).is_err());
    }

    #[test]
    fn duplicate_report_reads_the_partial_index() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        crate::migrate::run(&mut conn, ":memory:", crate::migrate::MIGRATIONS).expect("migrate");
        let after = vec![
            Value::from("phone"),
            Value::from("01062345678"),
            Value::Id(Uuid::nil()),
        ];
        let check = |conn: &rusqlite::Connection| {
            for s in [
                report_select(&[], None),
                report_select(&["phone", "email"], None),
                report_select(&[], Some(after.clone())),
            ] {
                let c = compile_select(&s).expect("compiles");
                let plan = plan(conn, &c.page);
                assert!(
                    plan.contains("USING INDEX customer_keys_duplicate_rows (company_id=?"),
                    "{}\n{plan}",
                    c.page.text
                );
            }
            // The duplicate check's probe still goes through the full index.
            let mut probe = select(Filter::And(vec![
                Filter::Cmp(Col::Column("kind"), CmpOp::Eq, Value::from("phone")),
                Filter::In(Col::Column("key"), vec![Value::from("1"), Value::from("2")]),
            ]));
            probe.table = Table::CustomerKeys;
            let c = compile_select(&probe).expect("compiles");
            let plan = plan(conn, &c.page);
            assert!(
                plan.contains("customer_keys_by_key (key=? AND kind=?)"),
                "{plan}"
            );
        };
        // Empty, as the store leaves it (it never runs ANALYZE) …
        check(&conn);
        // … and with statistics of many keys, few of them flagged.
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF; \
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1999) \
             INSERT INTO customer_keys \
                 (id, company_id, version, created_at, updated_at, deleted_at, \
                  customer_id, kind, key, duplicate) \
             SELECT printf('00000000-0000-7000-8000-%012d', i), \
                    '00000000-0000-0000-0000-000000000000', 1, \
                    '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', NULL, \
                    printf('00000000-0000-7000-9000-%012d', i / 4), \
                    CASE i % 4 WHEN 0 THEN 'name' WHEN 1 THEN 'uscc' \
                        WHEN 2 THEN 'phone' ELSE 'email' END, \
                    CAST(i / 4 AS TEXT), i < 20 \
             FROM n; \
             ANALYZE;",
        )
        .expect("fill");
        check(&conn);
    }

    /// The filter part of the compiled page query of customers matching
    /// `filter`, and the number of its parameters.
    fn filter_text(filter: Filter) -> (String, usize) {
        let c = compile_select(&select(filter)).expect("compiles");
        let text = c.page.text;
        let marker = "t.\"archived_at\" IS NULL AND ";
        let start = text.find(marker).expect("filter") + marker.len();
        let end = text.find(" ORDER BY").expect("order");
        assert_eq!(text.matches('?').count(), c.page.params.len());
        (text[start..end].to_owned(), c.page.params.len())
    }

    /// The deepest nesting of parentheses in `text`.
    fn nesting(text: &str) -> usize {
        let (mut depth, mut max) = (0usize, 0usize);
        for c in text.chars() {
            match c {
                '(' => {
                    depth += 1;
                    max = max.max(depth);
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        max
    }

    fn id_is(n: u128) -> Filter {
        Filter::Cmp(Col::Column("id"), CmpOp::Eq, Value::Id(Uuid::from_u128(n)))
    }

    /// Runs `EXPLAIN` of a compiled page query on a migrated database: the
    /// statement prepares and binds.
    fn prepares(filter: Filter) {
        let store = crate::SqliteStore::open_in_memory().expect("open");
        let conn = store.writer.lock();
        let c = compile_select(&select(filter)).expect("compiles");
        plan(&conn, &c.page);
    }

    #[test]
    fn short_chains_stay_flat_and_long_ones_are_grouped() {
        // Up to CHAIN_MAX terms: one flat chain, as always.
        let (text, _) = filter_text(Filter::Or((0..CHAIN_MAX as u128).map(id_is).collect()));
        let flat = vec![r#"(t."id" = ?)"#; CHAIN_MAX].join(" OR ");
        assert_eq!(text, format!("({flat})"));
        // Longer: groups of at most CHAIN_MAX terms, every term kept once
        // and in order.
        let n = 100_000u128;
        let chain = |f: fn(Vec<Filter>) -> Filter| {
            f((0..n)
                .map(|i| Filter::IsNull(Col::Column(if i % 2 == 0 { "phone" } else { "email" })))
                .collect())
        };
        for (filter, joiner) in [(chain(Filter::Or), " OR "), (chain(Filter::And), " AND ")] {
            let (text, _) = filter_text(filter.clone());
            assert_eq!(text.matches(joiner).count(), n as usize - 1);
            assert_eq!(text.matches(r#"(t."phone" IS NULL)"#).count(), 50_000);
            // 64 · 64 · 64 > 100 000: three levels of groups, each term in
            // its own parentheses.
            assert_eq!(nesting(&text), 4, "{}", &text[..200]);
            let mut longest = 0;
            for group in text.split(['(', ')']) {
                longest = longest.max(group.matches(joiner).count() + 1);
            }
            assert!(longest <= CHAIN_MAX, "{longest}");
            prepares(filter);
        }
        // Nested chains group at every level.
        let nested = Filter::And(vec![
            Filter::Or((0..3_000).map(id_is).collect()),
            Filter::Not(Box::new(Filter::Or((5_000..8_000).map(id_is).collect()))),
        ]);
        let (text, params) = filter_text(nested.clone());
        assert_eq!(params, 1 + 6_000, "the company, then the ids");
        assert!(nesting(&text) <= 6, "{}", nesting(&text));
        prepares(nested);
    }

    #[test]
    fn long_in_lists_are_one_json_parameter_read_through_the_index() {
        let store = crate::SqliteStore::open_in_memory().expect("open");
        let conn = store.writer.lock();
        let keys =
            |n: usize| -> Vec<Value> { (0..n).map(|i| Value::Text(format!("k\"{i}"))).collect() };
        let probe = |n: usize, negate: bool| {
            let mut inner = Filter::In(Col::Column("key"), keys(n));
            if negate {
                inner = Filter::Not(Box::new(inner));
            }
            let mut s = select(Filter::And(vec![
                Filter::Cmp(Col::Column("kind"), CmpOp::Eq, Value::from("phone")),
                inner,
            ]));
            s.table = Table::CustomerKeys;
            compile_select(&s).expect("compiles").page
        };
        // Up to IN_LIST_MAX values: one parameter each, as always.
        let short = probe(IN_LIST_MAX, false);
        assert_eq!(short.params.len(), IN_LIST_MAX + 2);
        assert!(!short.text.contains("json_each"), "{}", short.text);
        // Longer: one JSON array, the values encoded as the column stores
        // them, still probing the index by key once per value.
        let long = probe(40_000, false);
        assert_eq!(long.params.len(), 3, "company, kind, the list");
        assert!(
            long.text
                .contains(r#"(t."key" IN (SELECT value FROM json_each(?)))"#),
            "{}",
            long.text
        );
        let Sql::Text(json) = &long.params[2] else {
            panic!("{:?}", long.params[2]);
        };
        let parsed: Vec<String> = serde_json::from_str(json).expect("a JSON array of texts");
        assert_eq!(parsed[..2], [r#"k"0"#.to_owned(), r#"k"1"#.to_owned()]);
        assert_eq!(parsed.len(), 40_000);
        let p = plan(&conn, &long);
        assert!(
            p.contains("customer_keys_by_key (key=? AND kind=?)"),
            "{}\n{p}",
            long.text
        );
        assert!(p.contains("LIST SUBQUERY"), "{p}");
        // NOT IN is written alike (there is nothing to probe by).
        let not = probe(40_000, true);
        assert_eq!(not.params.len(), 3);
        assert!(
            not.text
                .contains(r#"(NOT (t."key" IN (SELECT value FROM json_each(?))))"#)
        );
        plan(&conn, &not);

        // Ids, integers, dates, timestamps and NULL go in the array as
        // stored; custom numbers (REAL) keep one parameter each.
        let day = chrono::NaiveDate::from_ymd_opt(2026, 2, 3).expect("date");
        let at = Utc
            .with_ymd_and_hms(2026, 2, 3, 4, 5, 6)
            .single()
            .expect("valid")
            + chrono::Duration::microseconds(7);
        let cases: Vec<(&'static str, Value, &str)> = vec![
            (
                "owner_id",
                Value::Id(Uuid::from_u128(1)),
                r#""00000000-0000-0000-0000-000000000001""#,
            ),
            (
                "open_opportunities",
                Value::Int(i64::MIN),
                "-9223372036854775808",
            ),
            ("next_follow_up", Value::Date(day), r#""2026-02-03""#),
            (
                "last_follow_up_at",
                Value::Timestamp(at),
                r#""2026-02-03T04:05:06.000007Z""#,
            ),
            ("locked", Value::Bool(true), "1"),
            ("name", Value::Null, "null"),
        ];
        for (column, v, json) in cases {
            let c = compile_select(&select(Filter::In(
                Col::Column(column),
                vec![v; IN_LIST_MAX + 1],
            )))
            .expect("compiles");
            assert_eq!(c.page.params.len(), 2, "{column}: {}", c.page.text);
            assert!(c.page.text.contains("json_each(?)"), "{}", c.page.text);
            let expected = format!("[{}]", vec![json; IN_LIST_MAX + 1].join(","));
            assert_eq!(c.page.params[1], Sql::Text(expected), "{column}");
        }
        let score = Col::Custom {
            key: "score".into(),
            ty: CustomType::Number,
        };
        // Custom numbers: one JSON array of numbers, read back as REAL.
        let (text, params) = filter_text(Filter::In(
            score.clone(),
            vec![Value::Float(0.1), Value::Null, Value::Float(-2.5e-8)]
                .into_iter()
                .cycle()
                .take(1_002)
                .collect(),
        ));
        assert_eq!(params, 1 + 2 + 1, "{}", &text[..200]);
        assert!(
            text.contains("IN (SELECT CAST(value AS REAL) FROM json_each(?))"),
            "{text}"
        );
        // Short lists keep one parameter per value.
        let (text, params) = filter_text(Filter::In(score, vec![Value::Float(0.1); 500]));
        assert_eq!(params, 1 + 2 + 500, "{}", &text[..200]);
        assert!(!text.contains("json_each"));
    }

    #[test]
    fn keyset_cursor_of_wrong_length_is_refused() {
        let mut s = select(Filter::True);
        s.sort = vec![Sort {
            col: Col::Column("name"),
            desc: false,
        }];
        s.paging = Paging::Keyset {
            after: Some(vec![Value::Id(Uuid::nil())]),
            limit: 10,
        };
        let err = compile_select(&s).expect_err("refused");
        assert!(err.to_string().contains("expected 2"), "{err}");
    }
}
