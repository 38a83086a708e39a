//! Compiles a [`Select`] into one statement (plus one `COUNT(*)` when a total
//! is asked for), behaving exactly like the SQLite backend:
//!
//! - text compares byte-wise (`COLLATE "C"`, like SQLite's `BINARY`);
//! - NULLs sort last in both directions (blanks after every value, as in a
//!   spreadsheet), and `id` ascending always breaks ties;
//! - `Contains`/`StartsWith` are `LIKE` with `%`, `_` and `\` taken
//!   literally, case-insensitive for ASCII letters only (`lower()` in the
//!   `"C"` collation, like SQLite's `lower()`).
//!
//! Values are bound parameters, except a boolean compared for (in)equality,
//! which is written as `TRUE` or `FALSE` (see [`Expr::bool_literal`]).

use crate::sql::{Sql, Ty, column, column_list, ident, indexed_in_c, invalid};
use crm_core::schema::{ColType, ColumnDef, Table};
use crm_core::store::{
    CmpOp, Col, CustomType, Filter, Lifecycle, Paging, Scope, Select, Sort, StoreError,
};
use crm_core::value::Value;

/// A resolved column reference.
#[derive(Clone, Debug)]
enum Target {
    Column(ColumnDef),
    Custom { key: String, ty: CustomType },
}

/// A compiled column expression.
struct Expr {
    target: Target,
    /// The SQL expression, typed: a custom field whose JSON value has another
    /// type than the field's is NULL (like the SQLite backend's `json_type`
    /// check), so that casts never fail.
    sql: String,
    /// Its type.
    ty: Ty,
}

impl Expr {
    /// The expression for comparisons and sorting: text in byte order.
    fn ordered(&self) -> String {
        if self.ty == Ty::Text {
            format!("{} COLLATE \"C\"", self.sql)
        } else {
            self.sql.clone()
        }
    }

    /// The expression for equality (`=`, `IS DISTINCT FROM`, `IN`): in the
    /// collation of the column's indexes, so that they serve it (see
    /// [`indexed_in_c`]); equality itself is the same in every collation.
    fn equality(&self, table: Table) -> String {
        match &self.target {
            Target::Column(c) if self.ty == Ty::Text && indexed_in_c(table, c.name) => {
                self.ordered()
            }
            _ => self.sql.clone(),
        }
    }

    /// The SQL literal (`TRUE` or `FALSE`) of `v` compared for equality or
    /// inequality with this expression, when both are boolean; `None` for
    /// anything else, which is bound as usual.
    ///
    /// PostgreSQL uses a partial index (`customer_keys_duplicate_rows_idx …
    /// WHERE duplicate`) only when the query's WHERE clause implies the
    /// index's condition. A generic plan of a prepared statement, which the
    /// store's statements get after five executions, cannot prove that from
    /// `duplicate = $n`; from `duplicate = TRUE` it always can. The literal
    /// is one of two fixed words, so no caller-provided text reaches the SQL.
    fn bool_literal(&self, v: &Value) -> Option<&'static str> {
        match v {
            Value::Bool(b) if self.ty == Ty::Bool => Some(if *b { "TRUE" } else { "FALSE" }),
            _ => None,
        }
    }

    /// Whether the expression may be NULL: a custom field always (missing
    /// or of another type), a column when the schema allows it.
    fn nullable(&self) -> bool {
        match &self.target {
            Target::Column(c) => c.nullable,
            Target::Custom { .. } => true,
        }
    }

    fn describe(&self, table: Table) -> String {
        match &self.target {
            Target::Column(c) => format!("{table}.{}", c.name),
            Target::Custom { key, .. } => format!("{table}.custom.{key}"),
        }
    }

    /// Binds `v` for comparison with this expression.
    fn param(&self, sql: &mut Sql, table: Table, v: &Value) -> Result<String, StoreError> {
        match &self.target {
            Target::Column(c) => sql.col_param(table, c, v),
            Target::Custom { key, ty } => sql.custom_param(key, *ty, v),
        }
    }

    /// Refuses comparing or sorting JSON documents: their order differs
    /// between backends.
    fn check_ordered(&self, table: Table) -> Result<(), StoreError> {
        match &self.target {
            Target::Column(c) if c.ty == ColType::Json => Err(invalid(format!(
                "{}: JSON columns cannot be compared or sorted",
                self.describe(table)
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses text matching on anything but text.
    fn check_textual(&self, table: Table) -> Result<(), StoreError> {
        if self.ty == Ty::Text {
            Ok(())
        } else {
            Err(invalid(format!(
                "{}: text matching needs a text column",
                self.describe(table)
            )))
        }
    }
}

fn valid_custom_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn expr(sql: &mut Sql, table: Table, alias: &str, col: &Col) -> Result<Expr, StoreError> {
    match col {
        Col::Column(name) => {
            let def = column(table, name)?;
            Ok(Expr {
                sql: format!("{alias}.{}", ident(def.name)),
                ty: Ty::of_col(def.ty),
                target: Target::Column(def),
            })
        }
        Col::Custom { key, ty } => {
            if table.column("custom").is_none() {
                return Err(invalid(format!(
                    "{table} has no custom fields (asked for {key:?})"
                )));
            }
            if !valid_custom_key(key) {
                return Err(invalid(format!("invalid custom field key {key:?}")));
            }
            let p = sql.param(key.clone());
            let (json_type, cast) = match ty {
                CustomType::Text => ("string", ""),
                CustomType::Number => ("number", "::double precision"),
                CustomType::Bool => ("boolean", "::boolean"),
            };
            Ok(Expr {
                sql: format!(
                    "(CASE WHEN jsonb_typeof({alias}.\"custom\" -> {p}) = '{json_type}' \
                     THEN ({alias}.\"custom\" ->> {p}){cast} END)"
                ),
                ty: Ty::of_custom(*ty),
                target: Target::Custom {
                    key: key.clone(),
                    ty: *ty,
                },
            })
        }
    }
}

/// Appends `cond` for the rows of `sel` (company, lifecycle, scope, filter),
/// for the main table aliased `t`.
pub(crate) fn where_clause(sql: &mut Sql, schema: &str, sel: &Select) -> Result<(), StoreError> {
    let table = sel.table;
    sql.push("t.\"company_id\" = ").bind(sel.company);
    let owned = table.is_owned();
    match sel.lifecycle {
        Lifecycle::Active => {
            sql.push(" AND t.\"deleted_at\" IS NULL");
            if owned {
                sql.push(" AND t.\"archived_at\" IS NULL");
            }
        }
        Lifecycle::Deleted => {
            sql.push(" AND t.\"deleted_at\" IS NOT NULL");
        }
        Lifecycle::Archived => {
            if owned {
                sql.push(" AND t.\"deleted_at\" IS NULL AND t.\"archived_at\" IS NOT NULL");
            } else {
                sql.push(" AND FALSE");
            }
        }
        Lifecycle::Any => {}
    }
    if let (
        true,
        Scope::Restricted {
            owners,
            departments,
            shared_with,
        },
    ) = (owned, &sel.scope)
    {
        let mut parts = Vec::new();
        if !owners.is_empty() {
            let p = sql.param(owners.clone());
            parts.push(format!("t.\"owner_id\" = ANY({p})"));
        }
        if !departments.is_empty() {
            let p = sql.param(departments.clone());
            parts.push(format!("t.\"department_id\" = ANY({p})"));
        }
        if let Some(user) = shared_with {
            let entity = sql.param(table.name().to_string());
            let user = sql.param(*user);
            let now = sql.param(sel.now);
            let shared = format!(
                "SELECT s.\"record_id\" FROM {schema}.\"shares\" s \
                 WHERE s.\"user_id\" = {user} AND s.\"entity\" = {entity} \
                 AND s.\"deleted_at\" IS NULL \
                 AND (s.\"expires_at\" IS NULL OR s.\"expires_at\" > {now})"
            );
            // `id = ANY(ARRAY(…))` reads the shared ids once and makes every
            // term of the OR an index condition (every owned table has owner
            // and department indexes, 0007): a BitmapOr, so a scoped list or
            // count does not scan the company (a correlated EXISTS did:
            // 190 ms → 3 ms for 5 000 of 100 000 customers and a few shares).
            parts.push(format!("t.\"id\" = ANY(ARRAY({shared}))"));
        }
        if parts.is_empty() {
            sql.push(" AND FALSE");
        } else {
            sql.push(" AND (").push(&parts.join(" OR ")).push(")");
        }
    }
    if let Some(m) = sel.filter.nul_refusal(table) {
        return Err(StoreError::Invalid { table, detail: m });
    }
    sql.push(" AND ");
    filter(sql, schema, table, "t", &sel.filter)
}

/// Escapes `%`, `_` and `\` for `LIKE … ESCAPE E'\\'` (a backslash).
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn filter(
    sql: &mut Sql,
    schema: &str,
    table: Table,
    alias: &str,
    f: &Filter,
) -> Result<(), StoreError> {
    match f {
        Filter::True => {
            sql.push("TRUE");
        }
        Filter::Cmp(col, op, value) => {
            let e = expr(sql, table, alias, col)?;
            e.check_ordered(table)?;
            let p = match e.bool_literal(value) {
                Some(l) if matches!(op, CmpOp::Eq | CmpOp::Ne) => l.to_string(),
                _ => e.param(sql, table, value)?,
            };
            // Equality in the collation of the column's indexes (a plain
            // `COLLATE "C"` would hide `customers.code` from its unique index,
            // and a `code = $1` lookup would read the whole company); order
            // comparisons in byte order.
            let lhs = if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                e.equality(table)
            } else {
                e.ordered()
            };
            let op = match op {
                CmpOp::Eq => "=",
                CmpOp::Ne => "IS DISTINCT FROM",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            sql.push(&format!("({lhs} {op} {p})"));
        }
        Filter::In(col, values) => {
            let e = expr(sql, table, alias, col)?;
            e.check_ordered(table)?;
            if values.is_empty() {
                sql.push("FALSE");
            } else if let Some(p) = array_param(sql, &e, values) {
                sql.push(&format!("({} = ANY({p}))", e.equality(table)));
            } else {
                let ps = values
                    .iter()
                    .map(|v| e.param(sql, table, v))
                    .collect::<Result<Vec<_>, _>>()?;
                sql.push(&format!("({} IN ({}))", e.equality(table), ps.join(", ")));
            }
        }
        Filter::Contains(col, needle) => {
            like(sql, table, alias, col, format!("%{}%", escape_like(needle)))?;
        }
        Filter::StartsWith(col, needle) => {
            like(sql, table, alias, col, format!("{}%", escape_like(needle)))?;
        }
        Filter::TextKeyLike {
            col,
            needle,
            prefix,
        } => {
            let e = expr(sql, table, alias, col)?;
            e.check_textual(table)?;
            let key = crm_core::validate::search_key(needle);
            let folded = search_key_sql(sql, &e.sql, &key);
            let key = escape_like(&key);
            let pattern = if *prefix {
                format!("{key}%")
            } else {
                format!("%{key}%")
            };
            let p = sql.param(pattern);
            // The key is folded already; `LIKE` compares it as is. The
            // escape is an E'' literal (see `like`).
            sql.push(&format!("({folded} LIKE {p} ESCAPE E'\\\\')"));
        }
        Filter::TextKeyIn(col, keys) => {
            let e = expr(sql, table, alias, col)?;
            e.check_textual(table)?;
            if keys.is_empty() {
                sql.push("FALSE");
            } else {
                let keys: Vec<String> = keys
                    .iter()
                    .map(|k| crm_core::validate::text_key(k))
                    .collect();
                let p = sql.param(keys);
                sql.push(&format!("({} = ANY({p}))", text_key_sql(&e.sql)));
            }
        }
        Filter::IsNull(col) => {
            let e = expr(sql, table, alias, col)?;
            sql.push(&format!("({} IS NULL)", e.sql));
        }
        Filter::NotNull(col) => {
            let e = expr(sql, table, alias, col)?;
            sql.push(&format!("({} IS NOT NULL)", e.sql));
        }
        Filter::And(fs) | Filter::Or(fs) if fs.is_empty() => {
            sql.push(if matches!(f, Filter::And(_)) {
                "TRUE"
            } else {
                "FALSE"
            });
        }
        Filter::And(fs) | Filter::Or(fs) => {
            let joiner = if matches!(f, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push("(");
            for (i, sub) in fs.iter().enumerate() {
                if i > 0 {
                    sql.push(joiner);
                }
                filter(sql, schema, table, alias, sub)?;
            }
            sql.push(")");
        }
        Filter::HoldsId(col, id) => {
            let def = match col {
                Col::Column(name) => column(table, name)?,
                Col::Custom { key, .. } => {
                    return Err(invalid(format!(
                        "{table}.custom.{key}: looking for an id inside needs a JSON column"
                    )));
                }
            };
            if def.ty != ColType::Json {
                return Err(invalid(format!(
                    "{table}.{}: looking for an id inside needs a JSON column",
                    def.name
                )));
            }
            // Every value inside the document, the root and every array
            // element or member below it, compared as text; a NULL column
            // holds nothing (as SQLite's `json_tree` of NULL has no rows,
            // also under `Not`).
            let p = sql.param(id.to_string());
            sql.push(&format!(
                "COALESCE(jsonb_path_exists({alias}.{}, '$.** ? (@ == $id)', jsonb_build_object('id', {p}::text)), FALSE)",
                ident(def.name)
            ));
        }
        Filter::Not(inner) => {
            sql.push("(NOT ");
            filter(sql, schema, table, alias, inner)?;
            sql.push(")");
        }
        Filter::Related {
            table: related,
            fk,
            filter: inner,
        } => {
            let fk = column(*related, fk)?;
            if fk.ty != ColType::Id {
                return Err(invalid(format!("{related}.{} is not a reference", fk.name)));
            }
            let r = sql.alias();
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM {schema}.{} {r} WHERE {r}.{} = {alias}.\"id\" \
                 AND {r}.\"deleted_at\" IS NULL AND ",
                ident(related.name()),
                ident(fk.name),
            ));
            filter(sql, schema, *related, &r, inner)?;
            sql.push(")");
        }
        Filter::Refers {
            fk,
            table: referred,
            filter: inner,
        } => {
            let fk = column(table, fk)?;
            if fk.ty != ColType::Id {
                return Err(invalid(format!("{table}.{} is not a reference", fk.name)));
            }
            let r = sql.alias();
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM {schema}.{} {r} WHERE {r}.\"id\" = {alias}.{} AND ",
                ident(referred.name()),
                ident(fk.name),
            ));
            filter(sql, schema, *referred, &r, inner)?;
            sql.push(")");
        }
    }
    Ok(())
}

/// Lists longer than this are bound as one array (`= ANY($n)`) rather than
/// one parameter per value, staying far below PostgreSQL's 65 535 parameters.
const IN_LIST_MAX: usize = 64;

/// Binds a long `In` list as one typed array, when every value fits the
/// expression's type; `None` leaves it to the per-value path (which reports
/// a mismatch). `x = ANY(array)` treats NULL elements as `x IN (…)` does.
fn array_param(sql: &mut Sql, e: &Expr, values: &[Value]) -> Option<String> {
    if values.len() <= IN_LIST_MAX {
        return None;
    }
    fn typed<T>(values: &[Value], f: impl Fn(&Value) -> Option<T>) -> Option<Vec<Option<T>>> {
        values
            .iter()
            .map(|v| {
                if v.is_null() {
                    Some(None)
                } else {
                    f(v).map(Some)
                }
            })
            .collect()
    }
    let ty = match &e.target {
        Target::Column(c) => c.ty,
        Target::Custom {
            ty: CustomType::Number,
            ..
        } => {
            let floats = typed(values, |v| match v {
                Value::Int(i) => Some(*i as f64),
                Value::Float(f) => Some(*f),
                _ => None,
            })?;
            return Some(sql.param(floats));
        }
        Target::Custom {
            ty: CustomType::Text,
            ..
        } => ColType::Text,
        Target::Custom {
            ty: CustomType::Bool,
            ..
        } => ColType::Bool,
    };
    Some(match ty {
        ColType::Id => sql.param(typed(values, Value::as_id)?),
        ColType::Text => sql.param(typed(values, |v| v.as_text().map(str::to_string))?),
        ColType::Int => sql.param(typed(values, Value::as_int)?),
        ColType::Bool => sql.param(typed(values, Value::as_bool)?),
        ColType::Date => sql.param(typed(values, Value::as_date)?),
        ColType::Timestamp => sql.param(typed(values, |v| {
            v.as_timestamp().map(crate::sql::floor_micros)
        })?),
        ColType::Json => return None,
    })
}

/// The whitespace [`crm_core::validate::text_key`] collapses (Rust's
/// [`char::is_whitespace`], the Unicode `White_Space` property), as a
/// regular expression: PostgreSQL's `\s` follows the locale, and misses the
/// no-break spaces in glibc's.
const WHITESPACE_RUN: &str =
    r"[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+";

/// `expr` folded as [`crm_core::validate::text_key`] folds text, in SQL
/// ([`Filter::TextKeyIn`]): full-width ASCII and the ideographic space
/// translated to ASCII, whitespace runs made one space, trimmed, lowered.
/// `lower` lowers in the expression's collation (the database's): ASCII
/// (which is what full-width letters are by then) in every one, other
/// letters where the collation knows their case, as Rust does. The
/// constants are dollar-quoted: no escape processing, whatever
/// `standard_conforming_strings` says.
fn text_key_sql(expr: &str) -> String {
    let full: String = ('\u{FF01}'..='\u{FF5E}').chain(['\u{3000}']).collect();
    let half: String = ('!'..='~').chain([' ']).collect();
    format!(
        "lower(btrim(regexp_replace(translate({expr}, $tk${full}$tk$, $tk${half}$tk$), \
         $tk${WHITESPACE_RUN}$tk$, ' ', 'g'), ' '))"
    )
}

/// `expr` folded so that it holds the search key `key` exactly where
/// [`crm_core::validate::search_key`] of it does ([`Filter::TextKeyLike`]):
/// the characters folding to several characters of the key replaced, those
/// folding to one translated, those the folding drops deleted
/// ([`crm_core::validate::search_translation`], bound as parameters),
/// whitespace runs made one space, trimmed. Only characters that can be
/// part of a match are folded, so the maps stay a few characters per
/// character of the key, and the folding needs neither a function in the
/// database nor its collation's idea of letter case.
fn search_key_sql(sql: &mut Sql, expr: &str, key: &str) -> String {
    let t = crm_core::validate::search_translation(key);
    let mut folded = expr.to_string();
    for (c, with) in t.replace {
        let (c, with) = (sql.param(c.to_string()), sql.param(with.to_string()));
        folded = format!("replace({folded}, {c}, {with})");
    }
    let (from, to) = (sql.param(t.from), sql.param(t.to));
    format!(
        "btrim(regexp_replace(translate({folded}, {from}, {to}), \
         $tk${WHITESPACE_RUN}$tk$, ' ', 'g'), ' ')"
    )
}

fn like(
    sql: &mut Sql,
    table: Table,
    alias: &str,
    col: &Col,
    pattern: String,
) -> Result<(), StoreError> {
    let e = expr(sql, table, alias, col)?;
    e.check_textual(table)?;
    let p = sql.param(pattern);
    // Both sides lowered in the "C" collation, where `lower()` folds ASCII
    // letters only, like SQLite's: in the column's own collation it would
    // fold `É`, `Ä` or `Д` too. No index serves this expression. The
    // escape is an E'' literal: a host's database may still have
    // `standard_conforming_strings` off, where '\' would not end.
    sql.push(&format!(
        "(lower(({}) COLLATE \"C\") LIKE lower({p} COLLATE \"C\") ESCAPE E'\\\\')",
        e.sql
    ));
    Ok(())
}

/// The main statement of a select: the page's rows, with one extra row
/// fetched to tell whether more follow.
pub(crate) fn page_query(sql: &mut Sql, schema: &str, sel: &Select) -> Result<(), StoreError> {
    let table = sel.table;
    sql.push(&format!(
        "SELECT {} FROM {schema}.{} t WHERE ",
        column_list(table, "t"),
        ident(table.name())
    ));
    where_clause(sql, schema, sel)?;

    let keys: Vec<(Expr, bool)> = sel
        .sort
        .iter()
        .map(|Sort { col, desc }| {
            let e = expr(sql, table, "t", col)?;
            e.check_ordered(table)?;
            Ok((e, *desc))
        })
        .collect::<Result<_, _>>()?;

    if let Paging::Keyset {
        after: Some(after), ..
    } = &sel.paging
    {
        keyset(sql, table, &keys, after)?;
    }

    sql.push(" ORDER BY ");
    for (e, desc) in &keys {
        // A column that holds no NULL is sorted descending as a backward
        // scan of an ascending index reads it (NULLS FIRST, the same order
        // without NULLs), so that an index on it, where there is one, still
        // serves the sort; any other expression puts NULLs last, which an
        // ascending index cannot deliver backwards (PostgreSQL sorts the
        // matching rows instead, a top-N sort under a LIMIT).
        let dir = match (desc, e.nullable()) {
            (true, true) => "DESC NULLS LAST",
            (true, false) => "DESC NULLS FIRST",
            (false, _) => "ASC NULLS LAST",
        };
        sql.push(&format!("{} {dir}, ", e.ordered()));
    }
    sql.push("t.\"id\" ASC");

    match &sel.paging {
        Paging::All => {}
        Paging::Offset { offset, limit } => {
            sql.push(" LIMIT ")
                .bind(fetch_limit(*limit))
                .push(" OFFSET ")
                .bind(i64::try_from(*offset).unwrap_or(i64::MAX));
        }
        Paging::Keyset { limit, .. } => {
            sql.push(" LIMIT ").bind(fetch_limit(*limit));
        }
    }
    Ok(())
}

/// `limit + 1`, to learn whether more rows follow.
fn fetch_limit(limit: u64) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

/// Appends the condition "strictly after `after` in sort order". NULLs sort
/// after every value in both directions (NULLS LAST, ascending and
/// descending), then `id` ascending decides.
fn keyset(
    sql: &mut Sql,
    table: Table,
    keys: &[(Expr, bool)],
    after: &[Value],
) -> Result<(), StoreError> {
    if after.len() != keys.len() + 1 {
        return Err(invalid(format!(
            "keyset cursor has {} values, expected {} (one per sort key, then the id)",
            after.len(),
            keys.len() + 1
        )));
    }
    let last_id = match after.last() {
        Some(Value::Id(id)) => *id,
        other => {
            return Err(invalid(format!(
                "keyset cursor must end with the row id, found {other:?}"
            )));
        }
    };
    // For each key: (strictly after, equal) as SQL.
    let mut steps: Vec<(String, String)> = Vec::with_capacity(keys.len() + 1);
    for ((e, desc), v) in keys.iter().zip(after) {
        let x = e.ordered();
        let step = if v.is_null() {
            // Nothing sorts after NULL but other NULLs (equal here).
            ("FALSE".to_string(), format!("{} IS NULL", e.sql))
        } else {
            let p = e.param(sql, table, v)?;
            let op = if *desc { "<" } else { ">" };
            // A value is followed by the values past it, then by NULL
            // (which a NOT NULL column never holds).
            let gt = if e.nullable() {
                format!("({x} {op} {p} OR {} IS NULL)", e.sql)
            } else {
                format!("{x} {op} {p}")
            };
            (gt, format!("{x} = {p}"))
        };
        steps.push(step);
    }
    let id = sql.param(last_id);
    steps.push((format!("t.\"id\" > {id}"), String::new()));

    let mut disjuncts = Vec::with_capacity(steps.len());
    for i in 0..steps.len() {
        let mut conj: Vec<&str> = steps[..i].iter().map(|(_, eq)| eq.as_str()).collect();
        conj.push(&steps[i].0);
        disjuncts.push(format!("({})", conj.join(" AND ")));
    }
    sql.push(" AND (").push(&disjuncts.join(" OR ")).push(")");
    Ok(())
}

/// `SELECT COUNT(*)` over the same rows, without paging.
pub(crate) fn count_query(sql: &mut Sql, schema: &str, sel: &Select) -> Result<(), StoreError> {
    sql.push(&format!(
        "SELECT COUNT(*) FROM {schema}.{} t WHERE ",
        ident(sel.table.name())
    ));
    where_clause(sql, schema, sel)
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

    fn compile(s: &Select) -> Result<String, StoreError> {
        let mut sql = Sql::new();
        page_query(&mut sql, "\"crm\"", s)?;
        Ok(sql.text)
    }

    #[test]
    fn values_and_custom_keys_are_bound_never_inlined() {
        let s = select(Filter::And(vec![
            Filter::Cmp(
                Col::Column("name"),
                CmpOp::Eq,
                Value::from("x'); DROP TABLE customers; --"),
            ),
            Filter::Contains(
                Col::Custom {
                    key: "region".into(),
                    ty: CustomType::Text,
                },
                "华东".into(),
            ),
        ]));
        let text = compile(&s).expect("compiles");
        assert!(!text.contains("DROP"), "{text}");
        assert!(!text.contains("region"), "{text}");
        assert!(!text.contains("华东"), "{text}");
    }

    #[test]
    fn unknown_columns_bad_keys_and_mismatched_values_are_refused() {
        let err = compile(&select(Filter::IsNull(Col::Column("nope")))).expect_err("refused");
        assert!(
            err.to_string().contains("customers has no column \"nope\""),
            "{err}"
        );
        let bad = Col::Custom {
            key: "a\"b".into(),
            ty: CustomType::Text,
        };
        assert!(compile(&select(Filter::IsNull(bad))).is_err());
        let mismatch = Filter::Cmp(
            Col::Column("next_follow_up"),
            CmpOp::Eq,
            Value::from("soon"),
        );
        let err = compile(&select(mismatch)).expect_err("refused");
        assert!(
            err.to_string().contains("customers.next_follow_up"),
            "{err}"
        );
        let json = Filter::Cmp(
            Col::Column("attachments"),
            CmpOp::Lt,
            Value::Json(serde_json::json!([])),
        );
        assert!(compile(&select(json)).is_err());
    }

    #[test]
    fn equality_is_written_in_the_collation_of_the_columns_indexes() {
        let keys: Vec<Value> = (0..100).map(|i| Value::from(format!("k{i}"))).collect();
        let mut s = select(Filter::And(vec![
            Filter::Cmp(Col::Column("kind"), CmpOp::Eq, Value::from("uscc")),
            Filter::In(Col::Column("key"), keys.clone()),
            Filter::In(Col::Column("key"), keys[..3].to_vec()),
        ]));
        s.table = Table::CustomerKeys;
        let text = compile(&s).expect("compiles");
        assert!(text.contains(r#"(t."kind" COLLATE "C" = $2)"#), "{text}");
        assert!(
            text.contains(r#"(t."key" COLLATE "C" = ANY($3))"#),
            "{text}"
        );
        assert!(
            text.contains(r#"(t."key" COLLATE "C" IN ($4, $5, $6))"#),
            "{text}"
        );

        let s = select(Filter::And(vec![
            Filter::Cmp(Col::Column("code"), CmpOp::Eq, Value::from("KH-1")),
            Filter::In(Col::Column("name_key"), keys),
            Filter::Cmp(Col::Column("name"), CmpOp::Lt, Value::from("m")),
        ]));
        let text = compile(&s).expect("compiles");
        assert!(text.contains(r#"(t."code" = $2)"#), "{text}");
        assert!(text.contains(r#"(t."name_key" = ANY($3))"#), "{text}");
        assert!(text.contains(r#"(t."name" COLLATE "C" < $4)"#), "{text}");
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
            Filter::Cmp(Col::Column("kind"), CmpOp::Eq, Value::from("phone")),
        ]));
        s.table = Table::CustomerKeys;
        let text = compile(&s).expect("compiles");
        assert!(text.contains(r#"(t."duplicate" = TRUE)"#), "{text}");
        assert!(
            text.contains(r#"(t."duplicate" IS DISTINCT FROM FALSE)"#),
            "{text}"
        );
        // The company is $1; the kind is the only other parameter.
        assert!(text.contains(r#"(t."kind" COLLATE "C" = $2)"#), "{text}");
        assert!(!text.contains("$3"), "{text}");

        let text =
            compile(&select(Filter::Cmp(flag, CmpOp::Eq, Value::Bool(false)))).expect("compiles");
        assert!(text.contains("::boolean END) = FALSE)"), "{text}");

        // Only booleans: order comparisons stay bound, and a boolean against
        // a column of another type is still refused.
        let text = compile(&select(Filter::Cmp(
            Col::Column("locked"),
            CmpOp::Lt,
            Value::Bool(true),
        )))
        .expect("compiles");
        assert!(text.contains(r#"(t."locked" < $2)"#), "{text}");
        let wrong = Filter::Cmp(Col::Column("name"), CmpOp::Eq, Value::Bool(true));
        assert!(compile(&select(wrong)).is_err());
    }

    /// The engine's query of a page of the duplicate report
    /// (`crm_core::dedupe::duplicate_report_page`).
    fn report_select(company: Uuid, kinds: &[&str], after: Option<Vec<Value>>) -> Select {
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        let now = select(Filter::True).now;
        crm_core::dedupe::duplicate_report_page(company, now, &kinds, None, after)
    }

    /// The report's query, planned generically (as every prepared statement
    /// of the store is after five executions) over many keys of which few are
    /// flagged, reads the partial index `customer_keys_duplicate_rows_idx`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn duplicate_report_reads_the_partial_index() {
        use crate::tests::{fresh_store, row};
        use crm_core::store::{ChangeSet, Store};
        use sqlx::AssertSqlSafe;

        let store = fresh_store("report").await;
        let company = Uuid::now_v7();
        let customer = Uuid::now_v7();
        store
            .apply(&ChangeSet {
                ops: vec![row(
                    Table::Customers,
                    company,
                    &[("id", Value::Id(customer))],
                )],
                ..ChangeSet::default()
            })
            .await
            .expect("customer");
        // 8 000 keys, 20 of them flagged.
        sqlx::raw_sql(AssertSqlSafe(format!(
            "INSERT INTO {q}.customer_keys \
                 (id, company_id, version, created_at, updated_at, deleted_at, \
                  customer_id, kind, key, duplicate) \
             SELECT gen_random_uuid(), '{company}', 1, now(), now(), NULL, '{customer}', \
                    (ARRAY['name', 'uscc', 'phone', 'email'])[i % 4 + 1], i::text, i < 20 \
             FROM generate_series(0, 7999) AS i; \
             ANALYZE {q}.customer_keys",
            q = store.quoted
        )))
        .execute(store.pool())
        .await
        .expect("keys");

        let after = vec![
            Value::from("phone"),
            Value::from("1"),
            Value::Id(Uuid::nil()),
        ];
        let cases = [
            (
                report_select(company, &[], None),
                "uuid, bigint",
                "'{company}', 501",
            ),
            (
                report_select(company, &["phone", "email"], None),
                "uuid, text, text, bigint",
                "'{company}', 'phone', 'email', 501",
            ),
            (
                report_select(company, &[], Some(after)),
                "uuid, text, text, uuid, bigint",
                "'{company}', 'phone', '1', '00000000-0000-0000-0000-000000000000', 501",
            ),
        ];
        let mut conn = store.pool().acquire().await.expect("connection");
        let mut failures = Vec::new();
        for (sel, types, args) in cases {
            let mut sql = Sql::new();
            page_query(&mut sql, &store.quoted, &sel).expect("compiles");
            sqlx::raw_sql(AssertSqlSafe(format!(
                "SET plan_cache_mode = force_generic_plan; \
                 PREPARE report ({types}) AS {}",
                sql.text
            )))
            .execute(&mut *conn)
            .await
            .expect("prepare");
            let args = args.replace("{company}", &company.to_string());
            let plan: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN EXECUTE report({args})")))
                    .fetch_all(&mut *conn)
                    .await
                    .expect("explain");
            sqlx::raw_sql("DEALLOCATE report; RESET plan_cache_mode")
                .execute(&mut *conn)
                .await
                .expect("deallocate");
            let plan = plan.join("\n");
            if !plan.contains("customer_keys_duplicate_rows_idx") {
                failures.push(format!("{}\n{plan}", sql.text));
            }
        }
        drop(conn);
        store.drop_schema().await.expect("drop schema");
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    /// A sales person's scoped count of customers (owned, or shared with
    /// them) reads through indexes — the owner's and the ids shared — in a
    /// BitmapOr, not a scan of the company.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scoped_customer_counts_read_through_indexes() {
        use crate::tests::fresh_store;
        use crm_core::store::Scope;
        use sqlx::AssertSqlSafe;

        let store = fresh_store("scope").await;
        let company = Uuid::now_v7();
        let me = Uuid::from_u128(3);
        // 20 000 customers of 20 owners, a few of them shared with me.
        sqlx::raw_sql(AssertSqlSafe(format!(
            "INSERT INTO {q}.customers \
                 (id, company_id, version, created_at, updated_at, custom, name, kind, \
                  name_key, pinyin_keys, attachments, owner_id) \
             SELECT gen_random_uuid(), '{company}', 1, now(), now(), '{{}}', 'n' || i, \
                    'enterprise', 'n' || i, '', '[]', \
                    ('00000000-0000-0000-0000-0000000000' || lpad((i % 20)::text, 2, '0'))::uuid \
             FROM generate_series(1, 20000) AS i; \
             INSERT INTO {q}.shares \
                 (id, company_id, version, created_at, updated_at, entity, record_id, \
                  user_id, access, granted_by) \
             SELECT gen_random_uuid(), '{company}', 1, now(), now(), 'customers', id, '{me}', \
                    'read', '{me}' \
             FROM {q}.customers WHERE owner_id <> '{me}' LIMIT 30; \
             ANALYZE {q}.customers; ANALYZE {q}.shares",
            q = store.quoted
        )))
        .execute(store.pool())
        .await
        .expect("customers");
        let mut sel = select(Filter::True);
        sel.company = company;
        sel.scope = Scope::Restricted {
            owners: vec![me],
            departments: Vec::new(),
            shared_with: Some(me),
        };
        let compiled = || {
            let mut sql = Sql::new();
            count_query(&mut sql, &store.quoted, &sel).expect("compiles");
            sql.finish()
                .map_err(crate::Failure::into_store)
                .expect("finish")
        };
        let (text, args) = compiled();
        let plan: Vec<String> =
            sqlx::query_scalar_with(AssertSqlSafe(format!("EXPLAIN {text}")), args)
                .fetch_all(store.pool())
                .await
                .expect("explain");
        let plan = plan.join("\n");
        let (count, args) = compiled();
        let counted: i64 = sqlx::query_scalar_with(AssertSqlSafe(count), args)
            .fetch_one(store.pool())
            .await
            .expect("count");
        store.drop_schema().await.expect("drop schema");
        assert!(plan.contains("BitmapOr"), "{text}\n{plan}");
        assert!(!plan.contains("Seq Scan on customers"), "{text}\n{plan}");
        assert_eq!(counted, 1000 + 30);
    }

    /// A page of customers sorted descending by a column with blanks (NULLs
    /// last, which a backward scan of its ascending index cannot deliver),
    /// as the CLI lists them (`--sort -next_follow_up`), on 20 000 rows: a
    /// top-N sort under the page's LIMIT, first page and keyset page alike,
    /// never a sort of every row; and a NOT NULL column sorted descending
    /// still matches its index order (NULLS FIRST, the same without NULLs).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn descending_lists_with_blanks_last_sort_top_n() {
        use crate::tests::fresh_store;
        use sqlx::AssertSqlSafe;

        let store = fresh_store("blanks").await;
        let company = Uuid::now_v7();
        // One in five without a follow-up date.
        sqlx::raw_sql(AssertSqlSafe(format!(
            "INSERT INTO {q}.customers \
                 (id, company_id, version, created_at, updated_at, custom, name, kind, \
                  name_key, pinyin_keys, attachments, next_follow_up) \
             SELECT gen_random_uuid(), '{company}', 1, now(), now(), '{{}}', 'n' || i, \
                    'enterprise', 'n' || i, '', '[]', \
                    CASE WHEN i % 5 <> 0 THEN DATE '2026-01-01' + i % 400 END \
             FROM generate_series(1, 20000) AS i; \
             ANALYZE {q}.customers",
            q = store.quoted
        )))
        .execute(store.pool())
        .await
        .expect("customers");
        let page = |after: Option<Vec<Value>>| {
            let mut sel = select(Filter::True);
            sel.company = company;
            sel.sort = vec![Sort {
                col: Col::Column("next_follow_up"),
                desc: true,
            }];
            sel.paging = match after {
                None => Paging::Offset {
                    offset: 0,
                    limit: 20,
                },
                Some(after) => Paging::Keyset {
                    after: Some(after),
                    limit: 20,
                },
            };
            sel
        };
        let date = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        let mut failures = Vec::new();
        for sel in [
            page(None),
            page(Some(vec![Value::Date(date), Value::Id(Uuid::nil())])),
            page(Some(vec![Value::Null, Value::Id(Uuid::nil())])),
        ] {
            let mut sql = Sql::new();
            page_query(&mut sql, &store.quoted, &sel).expect("compiles");
            let (text, args) = sql
                .finish()
                .map_err(crate::Failure::into_store)
                .expect("finish");
            let plan: Vec<String> =
                sqlx::query_scalar_with(AssertSqlSafe(format!("EXPLAIN ANALYZE {text}")), args)
                    .fetch_all(store.pool())
                    .await
                    .expect("explain");
            let plan = plan.join("\n");
            let sorted_all = plan.contains("Sort Method") && !plan.contains("top-N heapsort");
            if sorted_all || !text.contains("DESC NULLS LAST") {
                failures.push(format!("{text}\n{plan}"));
            }
        }
        store.drop_schema().await.expect("drop schema");
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        let mut created = select(Filter::True);
        created.sort = vec![Sort {
            col: Col::Column("created_at"),
            desc: true,
        }];
        let text = compile(&created).expect("compiles");
        assert!(text.contains("\"created_at\" DESC NULLS FIRST"), "{text}");
    }

    #[test]
    fn like_escapes_wildcards_and_backslash() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
