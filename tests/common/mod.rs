//! Helpers shared by the CLI end-to-end tests: find the example binary cargo
//! built, run it against a database and check its output and errors.
#![allow(dead_code)] // each test file uses its own subset

use chrono::Datelike;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The example binary cargo built next to the running test.
pub fn cli() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target directory");
    let bin = dir
        .join("examples")
        .join(format!("crm{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "example binary missing at {}; build with `cargo test --workspace --all-features`",
        bin.display()
    );
    bin
}

/// Runs the CLI on `db`, optionally in a working directory, with the
/// identity variables cleared.
pub fn run_in(dir: Option<&Path>, db: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(cli());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CRM_USER")
        .env_remove("CRM_PASSWORD")
        .env_remove("CRM_COMPANY")
        .output()
        .expect("run the CLI")
}

/// Runs the CLI on `db`.
pub fn run(db: &str, args: &[&str]) -> Output {
    run_in(None, db, args)
}

/// The standard output of a run that must succeed.
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "crm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs the CLI and expects success; returns standard output.
pub fn ok(db: &str, args: &[&str]) -> String {
    succeeded(args, run(db, args))
}

/// Runs the CLI with `--json` and parses the output.
pub fn json(db: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(db, &all)).expect("json output")
}

/// Runs the CLI and expects a failure reported as one line `error: …`,
/// never a panic or a backtrace; returns that line.
pub fn fails(db: &str, args: &[&str]) -> String {
    let out = run(db, args);
    assert!(!out.status.success(), "crm {args:?} should have failed");
    let err = String::from_utf8(out.stderr).expect("utf-8 errors");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one line, no backtrace: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A stored instant (RFC 3339, as the JSON output gives it) as the CLI's
/// tables show it: in the companies' local time (UTC+8 by default), with
/// this `chrono` format.
pub fn local_time(rfc3339: &str, format: &str) -> String {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .with_timezone(&offset)
        .format(format)
        .to_string()
}

/// Today in the companies' local time (UTC+8 by default), as the CLI reads
/// dates: the tests date what they make from it, so that they hold on
/// whatever day they run.
pub fn today() -> chrono::NaiveDate {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
    chrono::Utc::now().with_timezone(&offset).date_naive()
}

/// The date `days` days after today (before it when negative), as
/// `YYYY-MM-DD`.
pub fn days_from_today(days: i64) -> String {
    (today() + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// The month `months` months after this one, as `YYYY-MM`.
pub fn month_from_now(months: u32) -> String {
    let first = today().with_day(1).expect("the first of the month");
    (first + chrono::Months::new(months))
        .format("%Y-%m")
        .to_string()
}

/// Runs `f` with the address of a PostgreSQL schema of its own
/// (`CRM_TEST_PG_URL`, else the local server), named after `name` and the
/// process, then drops the schema.
#[cfg(feature = "postgres")]
pub fn on_postgres(name: &str, f: impl FnOnce(&str)) {
    let base = std::env::var("CRM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let schema = format!("crm_{name}_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    f(&format!("{base}{sep}schema={schema}"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = crm::postgres::PgStore::connect(
            &base,
            crm::postgres::PgOptions {
                schema: schema.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("connect");
        store.drop_schema().await.expect("drop schema");
    });
}
