//! The spreadsheet import/export benchmark, shared by `cargo bench --bench
//! io` and the CLI's `crm bench-io`.
//!
//! It generates a realistic customer workbook (15 columns, every fifth row a
//! duplicate by name or by credit code) and measures, each in a child
//! process of its own so that peak memory (`VmHWM` of `/proc/self/status`)
//! belongs to that measurement alone:
//!
//! - `calamine`: calamine reading the sheet (`worksheet_range`) and nothing
//!   else; `calamine-stream` the same with the streaming cell reader;
//! - `rusqlite`: a plain rusqlite prepared-statement insert of the already
//!   parsed rows into a 16-column table, in one transaction (the parsing is
//!   not timed);
//! - `import`: `crm_io::import_workbook` end to end into a fresh store
//!   (SQLite file, or PostgreSQL), batched commits, skip duplicates;
//! - `floor`: what SQLite alone takes to write the rows that import wrote
//!   (customers, duplicate keys, audit entries, outbox events, the import's
//!   undo record), read back from its database and inserted with plain
//!   prepared statements in one transaction into a fresh database with our
//!   schema, its indexes and the writer's page cache (the reading is not
//!   timed) — the part of the
//!   import no engine code can remove without dropping an index, a key, the
//!   audit or the events;
//! - `export`: `crm_io::export` of every customer of a store to a file;
//! - `xlsxwriter`: rust_xlsxwriter writing the same cells from memory (the
//!   loading is not timed).
//!
//! and prints the figures with the ratios the issue asks for. The
//! measurements compared with each other take turns, round after round
//! (`--runs`, one run each per round), and the median run of each is
//! reported, with the import's ratio also taken within each round.

#![allow(dead_code)]

use calamine::{Data, Reader, Xlsx, open_workbook};
use crm::import::{CommitMode, ExportValue, ImportOptions};
use crm::org::NewCompany;
use crm::store::Store;
use crm::{Crm, Entity, ListQuery};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// The columns of the generated workbook.
pub const HEADERS: [&str; 15] = [
    "客户名称",
    "客户类型",
    "客户分类",
    "客户级别",
    "客户来源",
    "所属行业",
    "省份",
    "城市",
    "详细地址",
    "电话",
    "邮箱",
    "网址",
    "统一社会信用代码",
    "下次跟进日期",
    "备注",
];

const CHARS: &[char] = &[
    '华', '兴', '达', '信', '联', '通', '恒', '瑞', '泰', '盛', '鑫', '源', '宏', '嘉', '德', '安',
    '中', '新', '天', '海', '金', '龙', '凯', '博', '明', '光', '远', '科', '创', '力', '丰', '和',
    '福', '星', '宇', '云', '峰', '晨', '祥', '荣',
];
const INDUSTRY: &[&str] = &[
    "软件", "通信", "制造", "贸易", "医疗", "教育", "物流", "能源",
];
const PLACES: &[(&str, &str)] = &[
    ("北京市", "北京市"),
    ("上海市", "上海市"),
    ("广东省", "深圳市"),
    ("广东省", "广州市"),
    ("浙江省", "杭州市"),
    ("江苏省", "南京市"),
    ("四川省", "成都市"),
    ("湖北省", "武汉市"),
];
const CATEGORY: &[&str] = &["潜在", "普通", "VIP", "代理", "合作"];
const SOURCE: &[&str] = &["网络推广", "电话营销", "展会", "客户介绍", "自主开发"];
const LEVEL: &[&str] = &["A", "B", "C", "D"];

fn name_of(j: usize) -> String {
    let n = CHARS.len();
    let mut s = String::new();
    let mut k = j;
    for _ in 0..4 {
        s.push(CHARS[k % n]);
        k /= n;
    }
    format!("{s}{}有限公司", INDUSTRY[j % INDUSTRY.len()])
}

fn uscc_of(j: usize) -> String {
    let first = format!("91440300{:09}", j);
    let check = crm::validate::uscc_check_char(&first).unwrap_or('0');
    format!("{first}{check}")
}

/// The name and credit code of data row `i`: every fifth row repeats an
/// earlier row's name (or, every tenth, its credit code).
fn identity(i: usize) -> (String, String) {
    match i % 10 {
        4 => (name_of(i), uscc_of(i - 3)),
        9 => (name_of(i - 3), uscc_of(i)),
        _ => (name_of(i), uscc_of(i)),
    }
}

/// Writes the benchmark workbook of `rows` data rows.
pub fn generate(path: &Path, rows: usize) -> Result<(), String> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    for (c, h) in HEADERS.iter().enumerate() {
        ws.write_string(0, c as u16, *h).map_err(e)?;
    }
    let start = chrono::NaiveDate::from_ymd_opt(2027, 1, 1).ok_or("date")?;
    for i in 0..rows {
        let r = i as u32 + 1;
        let (name, uscc) = identity(i);
        let (province, city) = PLACES[i % PLACES.len()];
        let cells: [String; 15] = [
            name,
            "企业客户".into(),
            CATEGORY[i % CATEGORY.len()].into(),
            LEVEL[i % LEVEL.len()].into(),
            SOURCE[i % SOURCE.len()].into(),
            INDUSTRY[i % INDUSTRY.len()].into(),
            province.into(),
            city.into(),
            format!("{city}科技园{}号", i % 500 + 1),
            format!("010-6{:07}", i % 10_000_000),
            format!("contact{i}@example.com"),
            format!("https://www.c{i}.com"),
            uscc,
            String::new(),
            "展会名单导入".into(),
        ];
        for (c, v) in cells.iter().enumerate() {
            if c == 13 {
                let d = start + chrono::Duration::days((i % 300) as i64);
                ws.write_datetime_with_format(r, c as u16, d, &date)
                    .map_err(e)?;
            } else {
                ws.write_string(r, c as u16, v).map_err(e)?;
            }
        }
    }
    book.save(path).map_err(e)
}

/// Peak resident memory of this process so far, in KiB.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn arg<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == key)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn need<'a>(args: &'a [String], key: &str) -> Result<&'a str, String> {
    arg(args, key).ok_or_else(|| format!("missing {key}"))
}

fn done(secs: f64, extra: &str) -> String {
    format!(
        "{{\"secs\":{secs:.4},\"rss_kb\":{}{}{extra}}}",
        peak_rss_kb(),
        if extra.is_empty() { "" } else { "," }
    )
}

fn sqlite_err(e: rusqlite::Error) -> String {
    e.to_string()
}

/// Opens a store and its company's administrator (creating both when the
/// store is empty).
async fn crm_on(store: Arc<dyn Store>) -> Result<(Crm, crm::Actor), String> {
    let crm = Crm::new(store, Arc::new(SystemClock));
    let companies = crm.list_companies().await.map_err(|e| e.to_string())?;
    let admin = if let Some(c) = companies.first() {
        let mut sel = crm::store::Select::all(crm::schema::Table::Users, c.id.0, crm.now());
        sel.filter = crm::store::Filter::Cmp(
            crm::store::Col::Column("username"),
            crm::store::CmpOp::Eq,
            "admin".into(),
        );
        let rows = crm.store().select(&sel).await.map_err(|e| e.to_string())?;
        crm::ids::UserId(rows.rows.first().ok_or("no admin")?.id())
    } else {
        crm.bootstrap(NewCompany {
            name: "基准测试有限公司".into(),
            code: "BENCH".into(),
            admin_username: "admin".into(),
            admin_display_name: "管理员".into(),
            admin_password: None,
        })
        .await
        .map_err(|e| e.to_string())?
        .1
    };
    let actor = crm.actor(admin).await.map_err(|e| e.to_string())?;
    Ok((crm, actor))
}

/// The system clock.
pub struct SystemClock;

impl crm::Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

async fn open_sqlite(path: &str) -> Result<Arc<dyn Store>, String> {
    Ok(Arc::new(
        crm::sqlite::SqliteStore::open(path).map_err(|e| e.to_string())?,
    ))
}

#[cfg(feature = "postgres")]
async fn open_pg(url: &str, fresh: bool) -> Result<Arc<dyn Store>, String> {
    use crm::postgres::{PgOptions, PgStore};
    let options = || PgOptions {
        schema: "crm_bench_io".into(),
        ..Default::default()
    };
    if fresh {
        let old = PgStore::connect(url, options())
            .await
            .map_err(|e| e.to_string())?;
        old.drop_schema().await.map_err(|e| e.to_string())?;
    }
    Ok(Arc::new(
        PgStore::connect(url, options())
            .await
            .map_err(|e| e.to_string())?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn open_pg(_url: &str, _fresh: bool) -> Result<Arc<dyn Store>, String> {
    Err("this build has no `postgres` feature".into())
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => d.as_f64().to_string(),
        other => other.to_string(),
    }
}

/// Runs one measurement in this (child) process; returns its JSON line.
pub async fn child(kind: &str, args: &[String]) -> Result<String, String> {
    match kind {
        "calamine" => {
            let file = need(args, "--file")?;
            let t = Instant::now();
            let mut wb: Xlsx<_> = open_workbook(file).map_err(|e| format!("{e}"))?;
            let name = wb.sheet_names()[0].clone();
            let range = wb.worksheet_range(&name).map_err(|e| format!("{e}"))?;
            let cells = range.used_cells().count();
            Ok(done(
                t.elapsed().as_secs_f64(),
                &format!("\"cells\":{cells}"),
            ))
        }
        "calamine-stream" => {
            let file = need(args, "--file")?;
            let t = Instant::now();
            let mut wb: Xlsx<_> = open_workbook(file).map_err(|e| format!("{e}"))?;
            let name = wb.sheet_names()[0].clone();
            let mut r = wb
                .worksheet_cells_reader(&name)
                .map_err(|e| format!("{e}"))?;
            let mut cells = 0u64;
            while let Some(c) = r.next_cell().map_err(|e| format!("{e}"))? {
                if !matches!(c.get_value(), calamine::DataRef::Empty) {
                    cells += 1;
                }
            }
            Ok(done(
                t.elapsed().as_secs_f64(),
                &format!("\"cells\":{cells}"),
            ))
        }
        "rusqlite" => {
            let file = need(args, "--file")?;
            let db = need(args, "--db")?;
            let mut wb: Xlsx<_> = open_workbook(file).map_err(|e| format!("{e}"))?;
            let name = wb.sheet_names()[0].clone();
            let range = wb.worksheet_range(&name).map_err(|e| format!("{e}"))?;
            let rows: Vec<Vec<String>> = range
                .rows()
                .skip(1)
                .map(|r| r.iter().map(cell_text).collect())
                .collect();
            drop(range);
            let t = Instant::now();
            let mut conn = rusqlite::Connection::open(db).map_err(sqlite_err)?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(sqlite_err)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(sqlite_err)?;
            let cols: Vec<String> = (0..15).map(|i| format!("c{i} TEXT")).collect();
            conn.execute_batch(&format!(
                "CREATE TABLE plain (id INTEGER PRIMARY KEY, {}) STRICT",
                cols.join(", ")
            ))
            .map_err(sqlite_err)?;
            let tx = conn.transaction().map_err(sqlite_err)?;
            {
                let mut st = tx
                    .prepare(&format!(
                        "INSERT INTO plain ({}) VALUES ({})",
                        (0..15)
                            .map(|i| format!("c{i}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        vec!["?"; 15].join(", ")
                    ))
                    .map_err(sqlite_err)?;
                for r in &rows {
                    st.execute(rusqlite::params_from_iter(r.iter().take(15)))
                        .map_err(sqlite_err)?;
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(done(
                t.elapsed().as_secs_f64(),
                &format!("\"rows\":{}", rows.len()),
            ))
        }
        "import" => {
            let file = need(args, "--file")?;
            let store = match arg(args, "--pg") {
                Some(url) => open_pg(url, true).await?,
                None => open_sqlite(need(args, "--db")?).await?,
            };
            let (crm, admin) = crm_on(store).await?;
            let batch: usize = arg(args, "--batch")
                .and_then(|b| b.parse().ok())
                .unwrap_or(crm::import::DEFAULT_BATCH_SIZE);
            let t = Instant::now();
            let wb = crm::io::Workbook::open(file, crm::io::Limits::default())
                .map_err(|e| e.to_string())?;
            let mut o = ImportOptions::new(Entity::Customer);
            o.commit = CommitMode::Batches;
            o.batch_size = batch;
            o.file_name = "bench.xlsx".into();
            let out = crm::io::import_workbook(
                &crm,
                &admin,
                &wb,
                o,
                &crm::io::ReadOptions::default(),
                &mut |_| {},
            )
            .await
            .map_err(|e| e.to_string())?;
            let secs = t.elapsed().as_secs_f64();
            let r = &out.report;
            Ok(done(
                secs,
                &format!(
                    "\"rows\":{},\"created\":{},\"skipped\":{},\"rejected\":{}",
                    r.rows, r.created, r.skipped, r.rejected
                ),
            ))
        }
        "floor" => {
            let src = need(args, "--src")?;
            let db = need(args, "--db")?;
            // Our schema, empty: the migrations of the store.
            drop(open_sqlite(db).await?);
            let mut conn = rusqlite::Connection::open(db).map_err(sqlite_err)?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(sqlite_err)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(sqlite_err)?;
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(sqlite_err)?;
            // The page cache the store's writer has.
            conn.pragma_update(None, "cache_size", crm::sqlite::WRITER_CACHE_KIB)
                .map_err(sqlite_err)?;
            let from = rusqlite::Connection::open(src).map_err(sqlite_err)?;
            let tables: Vec<String> = from
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY rowid")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .map_err(sqlite_err)?;
            let read = |t: &str| -> Result<Vec<Vec<rusqlite::types::Value>>, String> {
                let mut st = from
                    .prepare(&format!("SELECT * FROM \"{t}\""))
                    .map_err(sqlite_err)?;
                let n = st.column_count();
                st.query_map([], |r| {
                    (0..n)
                        .map(|i| r.get::<_, rusqlite::types::Value>(i))
                        .collect()
                })
                .and_then(|rows| rows.collect())
                .map_err(sqlite_err)
            };
            let insert = |conn: &rusqlite::Transaction<'_>,
                          t: &str,
                          rows: &[Vec<rusqlite::types::Value>]|
             -> Result<(), String> {
                let Some(first) = rows.first() else {
                    return Ok(());
                };
                let mut st = conn
                    .prepare(&format!(
                        "INSERT INTO \"{t}\" VALUES ({})",
                        vec!["?"; first.len()].join(", ")
                    ))
                    .map_err(sqlite_err)?;
                for r in rows {
                    st.execute(rusqlite::params_from_iter(r.iter()))
                        .map_err(sqlite_err)?;
                }
                Ok(())
            };
            // What the import wrote, already built, inserted by plain
            // prepared statements in one transaction; the company, its
            // users and the import's own record go in first, untimed.
            const WRITTEN: [&str; 6] = [
                "customers",
                "contacts",
                "customer_keys",
                "audit_log",
                "outbox",
                "import_items",
            ];
            let mut timed = Vec::new();
            let tx = conn.transaction().map_err(sqlite_err)?;
            for t in &tables {
                let rows = read(t)?;
                if WRITTEN.contains(&t.as_str()) {
                    timed.push((t.clone(), rows));
                } else {
                    insert(&tx, t, &rows)?;
                }
            }
            tx.commit().map_err(sqlite_err)?;
            let n: usize = timed.iter().map(|(_, r)| r.len()).sum();
            let t0 = Instant::now();
            let tx = conn.transaction().map_err(sqlite_err)?;
            for name in WRITTEN {
                if let Some((t, rows)) = timed.iter().find(|(t, _)| t == name) {
                    insert(&tx, t, rows)?;
                }
            }
            tx.commit().map_err(sqlite_err)?;
            Ok(done(t0.elapsed().as_secs_f64(), &format!("\"rows\":{n}")))
        }
        "export" => {
            let db = need(args, "--db")?;
            let out = need(args, "--out")?;
            let (crm, admin) = crm_on(open_sqlite(db).await?).await?;
            let t = Instant::now();
            let file = std::fs::File::create(out).map_err(|e| e.to_string())?;
            let n = crm::io::export(
                &crm,
                &admin,
                Entity::Customer,
                ListQuery::default(),
                &[],
                crm::io::Lang::Zh,
                std::io::BufWriter::new(file),
                &mut |_| {},
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(done(t.elapsed().as_secs_f64(), &format!("\"rows\":{n}")))
        }
        "xlsxwriter" => {
            let db = need(args, "--db")?;
            let out = need(args, "--out")?;
            let (crm, admin) = crm_on(open_sqlite(db).await?).await?;
            let cols = crm
                .export_columns(&admin, Entity::Customer, &[])
                .await
                .map_err(|e| e.to_string())?;
            let mut cur = crm
                .export_cursor(
                    &admin,
                    Entity::Customer,
                    ListQuery::default(),
                    cols.clone(),
                    1000,
                )
                .await
                .map_err(|e| e.to_string())?;
            let mut rows = Vec::new();
            while let Some(p) = cur.next_page().await.map_err(|e| e.to_string())? {
                rows.extend(p);
            }
            let t = Instant::now();
            let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
            let mut book = rust_xlsxwriter::Workbook::new();
            let ws = book.add_worksheet();
            let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
            let dt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd hh:mm");
            for (c, col) in cols.iter().enumerate() {
                ws.write_string(0, c as u16, &col.header_zh).map_err(e)?;
            }
            for (r, row) in rows.iter().enumerate() {
                let r = r as u32 + 1;
                for (c, v) in row.iter().enumerate() {
                    let c = c as u16;
                    match v {
                        ExportValue::Empty => {}
                        ExportValue::Text(s) => {
                            ws.write_string(r, c, s).map_err(e)?;
                        }
                        ExportValue::Number(n) => {
                            ws.write_number(r, c, *n).map_err(e)?;
                        }
                        ExportValue::Money(m) => {
                            ws.write_number(r, c, *m as f64 / 100.0).map_err(e)?;
                        }
                        ExportValue::Date(d) => {
                            ws.write_datetime_with_format(r, c, *d, &date).map_err(e)?;
                        }
                        ExportValue::DateTime(d) => {
                            ws.write_datetime_with_format(r, c, *d, &dt).map_err(e)?;
                        }
                        ExportValue::Bool(b) => {
                            ws.write_boolean(r, c, *b).map_err(e)?;
                        }
                    }
                }
            }
            book.save(out).map_err(e)?;
            Ok(done(
                t.elapsed().as_secs_f64(),
                &format!("\"rows\":{}", rows.len()),
            ))
        }
        other => Err(format!("unknown measurement {other}")),
    }
}

/// Fills a SQLite store that already holds customers up to `rows`
/// customers by copying them (new ids and codes), for export runs.
pub fn seed(db: &Path, rows: usize) -> Result<usize, String> {
    let conn = rusqlite::Connection::open(db).map_err(sqlite_err)?;
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('customers')")
        .map_err(sqlite_err)?
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sqlite_err)?
        .collect::<Result<_, _>>()
        .map_err(sqlite_err)?;
    let uuid = "lower(hex(randomblob(4)))||'-'||lower(hex(randomblob(2)))||'-'||lower(hex(randomblob(2)))||'-'||lower(hex(randomblob(2)))||'-'||lower(hex(randomblob(6)))";
    let mut round = 0;
    loop {
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))
            .map_err(sqlite_err)?;
        let n = n as usize;
        if n >= rows || n == 0 {
            return Ok(n);
        }
        round += 1;
        let select: Vec<String> = cols
            .iter()
            .map(|c| match c.as_str() {
                "id" => uuid.to_string(),
                "code" => format!("code || '-{round}-' || lower(hex(randomblob(8)))"),
                c => format!("\"{c}\""),
            })
            .collect();
        conn.execute_batch(&format!(
            "INSERT INTO customers ({}) SELECT {} FROM customers LIMIT {}",
            cols.iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", "),
            select.join(", "),
            rows - n
        ))
        .map_err(sqlite_err)?;
    }
}

/// One measurement's figures.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Seconds.
    pub secs: f64,
    /// Peak resident memory, KiB.
    pub rss_kb: u64,
    /// The raw JSON line.
    pub json: String,
}

fn parse(json: &str) -> Figures {
    let num = |k: &str| -> f64 {
        json.split(&format!("\"{k}\":"))
            .nth(1)
            .and_then(|r| r.split([',', '}']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    Figures {
        secs: num("secs"),
        rss_kb: num("rss_kb") as u64,
        json: json.to_string(),
    }
}

/// How the parent starts a child: the executable and the arguments that
/// come before `--child`.
pub struct Launcher {
    /// The executable (normally `std::env::current_exe()`).
    pub exe: PathBuf,
    /// Arguments before `--child KIND …`.
    pub prefix: Vec<String>,
}

impl Launcher {
    /// Runs the measurements in turn, `runs` rounds of one run each (the
    /// arguments of each run made by its function, which also clears what
    /// a run leaves), and returns every measurement's runs in round order.
    /// Taking turns keeps the machine's slow and fast spells (seconds vary
    /// by a third from one minute to the next on a shared machine) from
    /// landing on one measurement and not on the one it is compared with.
    fn rounds(
        &self,
        what: &[Measure<'_>],
        runs: usize,
        log: &mut dyn FnMut(&str),
    ) -> Result<Vec<Vec<Figures>>, String> {
        let mut all: Vec<Vec<Figures>> = what.iter().map(|_| Vec::new()).collect();
        for round in 0..runs.max(1) {
            for (m, runs) in what.iter().zip(&mut all) {
                let f = self.run(m.kind, &(m.args)())?;
                log(&format!("  {} (round {}): {}", m.label, round + 1, f.json));
                runs.push(f);
            }
        }
        Ok(all)
    }
}

/// One measurement of [`Launcher::rounds`]: the child's kind, its name in
/// the log, and the arguments of each run.
struct Measure<'a> {
    kind: &'a str,
    label: &'a str,
    args: &'a dyn Fn() -> Vec<String>,
}

/// The run of median time.
fn median(runs: &[Figures]) -> Figures {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    sorted.swap_remove(sorted.len() / 2)
}

/// The median and the range of `a / (b + c)` over the rounds.
fn ratio_per_round(a: &[Figures], b: &[Figures], c: &[Figures]) -> (f64, f64, f64) {
    let mut r: Vec<f64> = a
        .iter()
        .zip(b.iter().zip(c))
        .map(|(a, (b, c))| a.secs / (b.secs + c.secs).max(1e-9))
        .collect();
    r.sort_by(f64::total_cmp);
    (
        r[r.len() / 2],
        r.first().copied().unwrap_or_default(),
        r.last().copied().unwrap_or_default(),
    )
}

impl Launcher {
    fn run(&self, kind: &str, args: &[String]) -> Result<Figures, String> {
        let out = Command::new(&self.exe)
            .args(&self.prefix)
            .arg("--child")
            .arg(kind)
            .args(args)
            .output()
            .map_err(|e| format!("cannot start {kind}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{kind} failed: {}{}",
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| format!("{kind} printed no figures: {stdout}"))?;
        Ok(parse(line))
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Data rows of the workbook (and of the export).
    pub rows: usize,
    /// Where the files go.
    pub dir: PathBuf,
    /// A PostgreSQL URL for the PostgreSQL import, if any.
    pub pg: Option<String>,
    /// Also export a million rows to compare memory.
    pub million: bool,
    /// Rows per import batch.
    pub batch: usize,
    /// Runs of each measurement (the median run is reported).
    pub runs: usize,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Runs the whole benchmark and returns the report as text.
pub fn run(l: &Launcher, plan: &Plan, log: &mut dyn FnMut(&str)) -> Result<String, String> {
    std::fs::create_dir_all(&plan.dir).map_err(|e| e.to_string())?;
    let file = plan.dir.join(format!("customers-{}.xlsx", plan.rows));
    let fresh = |name: &str| -> PathBuf {
        let p = plan.dir.join(name);
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
        }
        p
    };
    log(&format!("generating {} rows …", plan.rows));
    generate(&file, plan.rows)?;
    let f = s(&file);
    let runs = plan.runs;
    log(if plan.pg.is_some() {
        "calamine, rusqlite, import into SQLite, SQLite alone, import into PostgreSQL, in turn …"
    } else {
        "calamine, rusqlite, import into SQLite, SQLite alone, in turn …"
    });
    let db = plan.dir.join("import.db");
    let reading = || vec!["--file".to_string(), f.clone()];
    let plain_args = || {
        vec![
            "--file".into(),
            f.clone(),
            "--db".into(),
            s(&fresh("plain.db")),
        ]
    };
    let import_args = || {
        vec![
            "--file".into(),
            f.clone(),
            "--db".into(),
            s(&fresh("import.db")),
            "--batch".into(),
            plan.batch.to_string(),
        ]
    };
    // After each import: what that import wrote.
    let floor_args = || vec!["--src".into(), s(&db), "--db".into(), s(&fresh("floor.db"))];
    let pg_args = || {
        vec![
            "--file".into(),
            f.clone(),
            "--pg".into(),
            plan.pg.clone().unwrap_or_default(),
            "--batch".into(),
            plan.batch.to_string(),
        ]
    };
    let m = |kind, label, args| Measure { kind, label, args };
    let mut what = vec![
        m("calamine", "calamine", &reading),
        m("calamine-stream", "calamine stream", &reading),
        m("rusqlite", "rusqlite", &plain_args),
        m("import", "import into SQLite", &import_args),
        m(
            "floor",
            "SQLite alone writing that import's rows",
            &floor_args,
        ),
    ];
    if plan.pg.is_some() {
        what.push(m("import", "import into PostgreSQL", &pg_args));
    }
    let all = l.rounds(&what, runs, log)?;
    let (cal, cal_stream, plain, imp, floor) = (
        median(&all[0]),
        median(&all[1]),
        median(&all[2]),
        median(&all[3]),
        median(&all[4]),
    );
    let pg = all.get(5).map(|r| median(r));
    let per_round = ratio_per_round(&all[3], &all[0], &all[2]);
    log("export …");
    let ex_db = fresh("export.db");
    std::fs::copy(&db, &ex_db).map_err(|e| e.to_string())?;
    seed(&ex_db, plan.rows)?;
    let export_args = || {
        vec![
            "--db".into(),
            s(&ex_db),
            "--out".into(),
            s(&plan.dir.join("export.xlsx")),
        ]
    };
    let xlsxwriter_args = || {
        vec![
            "--db".into(),
            s(&ex_db),
            "--out".into(),
            s(&plan.dir.join("plain.xlsx")),
        ]
    };
    let all = l.rounds(
        &[
            m("export", "export", &export_args),
            m("xlsxwriter", "rust_xlsxwriter", &xlsxwriter_args),
        ],
        runs,
        log,
    )?;
    let (ex, xw) = (median(&all[0]), median(&all[1]));
    let million = if plan.million {
        log("export of 1 000 000 rows …");
        let m_db = fresh("million.db");
        std::fs::copy(&ex_db, &m_db).map_err(|e| e.to_string())?;
        seed(&m_db, 1_000_000)?;
        Some(l.run(
            "export",
            &[
                "--db".into(),
                s(&m_db),
                "--out".into(),
                s(&plan.dir.join("million.xlsx")),
            ],
        )?)
    } else {
        None
    };
    let mb = |kb: u64| kb as f64 / 1024.0;
    let mut out = String::new();
    let base = cal.secs + plain.secs;
    out.push_str(&format!(
        "rows: {} (15 columns, 20% duplicates), batch {}, median of {} run(s)\n",
        plan.rows, plan.batch, plan.runs
    ));
    out.push_str(&format!(
        "calamine read (worksheet_range)     {:>8.3} s  {:>8.1} MiB\n",
        cal.secs,
        mb(cal.rss_kb)
    ));
    out.push_str(&format!(
        "calamine read (cell stream)         {:>8.3} s  {:>8.1} MiB\n",
        cal_stream.secs,
        mb(cal_stream.rss_kb)
    ));
    out.push_str(&format!(
        "rusqlite plain insert, 1 tx         {:>8.3} s\n",
        plain.secs
    ));
    out.push_str(&format!(
        "import into SQLite (end to end)     {:>8.3} s  {:>8.1} MiB   {}\n",
        imp.secs,
        mb(imp.rss_kb),
        imp.json
    ));
    out.push_str(&format!(
        "  time / (calamine + rusqlite) = {:.2}x (target 2.0x); memory / calamine = {:.2}x (target 1.5x)\n",
        imp.secs / base,
        imp.rss_kb as f64 / cal.rss_kb.max(1) as f64
    ));
    out.push_str(&format!(
        "  the same ratio within each round: median {:.2}x, {:.2}x to {:.2}x\n",
        per_round.0, per_round.1, per_round.2
    ));
    out.push_str(&format!(
        "  of which SQLite alone would take  {:>8.3} s writing the same rows (records, keys, audit, events) \
         with plain prepared inserts into our schema; time / (calamine + that) = {:.2}x\n",
        floor.secs,
        imp.secs / (cal.secs + floor.secs).max(1e-9)
    ));
    if let Some(pg) = &pg {
        out.push_str(&format!(
            "import into PostgreSQL              {:>8.3} s  {:>8.1} MiB   {}\n",
            pg.secs,
            mb(pg.rss_kb),
            pg.json
        ));
        out.push_str(&format!(
            "  time / (calamine + rusqlite) = {:.2}x; time / SQLite import = {:.2}x\n",
            pg.secs / base,
            pg.secs / imp.secs.max(1e-9)
        ));
    }
    out.push_str(&format!(
        "rust_xlsxwriter from memory         {:>8.3} s  {:>8.1} MiB\n",
        xw.secs,
        mb(xw.rss_kb)
    ));
    out.push_str(&format!(
        "export from SQLite                  {:>8.3} s  {:>8.1} MiB   {}\n",
        ex.secs,
        mb(ex.rss_kb),
        ex.json
    ));
    out.push_str(&format!(
        "  time / rust_xlsxwriter = {:.2}x (target 1.3x)\n",
        ex.secs / xw.secs.max(1e-9)
    ));
    if let Some(m) = &million {
        out.push_str(&format!(
            "export of 1 000 000 rows            {:>8.3} s  {:>8.1} MiB   {}\n",
            m.secs,
            mb(m.rss_kb),
            m.json
        ));
        out.push_str(&format!(
            "  peak memory 1M / {} rows = {:.2}x (flat = about 1)\n",
            plan.rows,
            m.rss_kb as f64 / ex.rss_kb.max(1) as f64
        ));
    }
    Ok(out)
}

/// Parses `--rows N --dir D --pg URL --million --batch N --runs N` for the
/// parent.
pub fn plan_from_args(args: &[String]) -> Plan {
    Plan {
        rows: arg(args, "--rows")
            .and_then(|r| r.parse().ok())
            .unwrap_or(100_000),
        dir: arg(args, "--dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("crm-bench-io")),
        pg: arg(args, "--pg").map(str::to_string),
        million: args.iter().any(|a| a == "--million"),
        batch: arg(args, "--batch")
            .and_then(|r| r.parse().ok())
            .unwrap_or(crm::import::DEFAULT_BATCH_SIZE),
        runs: arg(args, "--runs")
            .and_then(|r| r.parse().ok())
            .unwrap_or(1usize)
            .max(1),
    }
}
