//! The files the CLI's spreadsheet commands write (feature `xlsx`): a
//! failed write is an error naming the file and leaves no truncated
//! workbook; no output replaces the workbook imported, the database or a
//! file that is not an `.xlsx` workbook; an import's error workbook path is
//! checked before importing; templates are always importable; unknown
//! stages are refused.
#![cfg(feature = "xlsx")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

/// A fresh directory for one test.
fn fresh(name: &str) -> PathBuf {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    tmp
}

/// Runs the CLI in `dir` on its `crm.db`.
fn run(dir: &Path, args: &[&str]) -> Output {
    let db = dir.join("crm.db");
    common::run_in(Some(dir), db.to_str().expect("utf-8 path"), args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    common::succeeded(args, run(dir, args))
}

/// Runs the CLI in `dir` and expects a one-line error; returns it.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "crm {args:?} should have failed"
    );
    let err = String::from_utf8(out.stderr).expect("utf-8 errors");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    err
}

/// The names of the files in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn no_partial_files(dir: &Path) {
    let names = names(dir);
    assert!(
        !names.iter().any(|n| n.ends_with(".partial")),
        "no hidden partial file left: {names:?}"
    );
}

/// Writes a one-sheet workbook of text cells.
fn write_sheet(path: &Path, rows: &[&[&str]]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            ws.write_string(r as u32, c as u16, *v).expect("cell");
        }
    }
    book.save(path).expect("save");
}

/// How many imports `import --list` shows.
fn imports(dir: &Path) -> usize {
    let v: serde_json::Value =
        serde_json::from_str(&ok(dir, &["--json", "import", "--list"])).expect("json");
    v.as_array().expect("a list").len()
}

/// Whether a customer of that name exists.
fn has_customer(dir: &Path, name: &str) -> bool {
    ok(dir, &["customer", "list", "--per-page", "100"]).contains(name)
}

#[test]
fn outputs_never_replace_the_database_or_the_workbook_imported() {
    let tmp = fresh("protect");
    ok(&tmp, &["demo"]);
    ok(&tmp, &["export", "customer", "-o", "d.xlsx"]);
    let workbook = std::fs::read(tmp.join("d.xlsx")).expect("exported");
    let db = tmp.join("crm.db");
    let absolute = db.to_str().expect("utf-8 path").to_string();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&db, tmp.join("link.xlsx")).expect("symlink");
    let mut refused: Vec<Vec<&str>> = vec![
        vec!["export", "customer", "-o", "crm.db"],
        vec!["export", "customer", "-o", "./crm.db"],
        vec!["export", "customer", "-o", &absolute],
        vec!["export", "customer", "-o", "crm.db-wal"],
        vec!["export", "customer", "-o", "crm.db-shm"],
        vec!["export", "customer", "-o", "crm.db-journal"],
        vec!["template", "customer", "-o", "crm.db"],
        vec!["import", "customer", "d.xlsx", "--errors", "crm.db"],
        vec!["import", "customer", "d.xlsx", "--errors", "d.xlsx"],
        vec!["import", "customer", "d.xlsx", "--errors", "./d.xlsx"],
    ];
    #[cfg(unix)]
    refused.push(vec!["export", "customer", "-o", "link.xlsx"]);
    for args in &refused {
        let err = fails(&tmp, args);
        assert!(err.contains("refusing to write"), "{args:?}: {err}");
        assert!(
            err.contains("the database") || err.contains("the workbook being imported"),
            "{args:?}: {err}"
        );
    }
    // Nothing was imported, the workbook is as it was and the database
    // still opens.
    assert_eq!(imports(&tmp), 0);
    assert_eq!(std::fs::read(tmp.join("d.xlsx")).expect("kept"), workbook);
    assert!(
        std::fs::read(&db)
            .expect("database")
            .starts_with(b"SQLite format 3"),
        "the database file is a database still"
    );
    assert!(ok(&tmp, &["customer", "list"]).contains("KH-"));
    no_partial_files(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn existing_files_other_than_xlsx_workbooks_are_not_replaced() {
    let tmp = fresh("replace");
    ok(&tmp, &["demo"]);
    let notes = tmp.join("notes.txt");
    std::fs::write(&notes, b"the user's own notes").expect("write");
    std::fs::create_dir(tmp.join("folder.xlsx")).expect("dir");
    for args in [
        &["export", "customer", "-o", "notes.txt"][..],
        &["template", "customer", "-o", "notes.txt"],
    ] {
        let err = fails(&tmp, args);
        assert!(
            err.contains("notes.txt") && err.contains("not an .xlsx file"),
            "{args:?}: {err}"
        );
    }
    ok(&tmp, &["export", "customer", "-o", "d.xlsx"]);
    write_sheet(
        &tmp.join("new.xlsx"),
        &[&["客户名称"], &["替换测试有限公司"], &["替换测试有限公司"]],
    );
    let err = fails(
        &tmp,
        &["import", "customer", "new.xlsx", "--errors", "notes.txt"],
    );
    assert!(err.contains("not an .xlsx file"), "{err}");
    assert!(!has_customer(&tmp, "替换测试有限公司"), "nothing imported");
    assert_eq!(
        std::fs::read(&notes).expect("kept"),
        b"the user's own notes"
    );
    let err = fails(&tmp, &["export", "customer", "-o", "folder.xlsx"]);
    assert!(err.contains("is a directory"), "{err}");
    assert!(tmp.join("folder.xlsx").is_dir());
    // A pipe (or a device) is no file to replace: a rename would put the
    // workbook in its place.
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let status = std::process::Command::new("mkfifo")
            .arg(tmp.join("pipe.xlsx"))
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let err = fails(&tmp, &["export", "customer", "-o", "pipe.xlsx"]);
        assert!(err.contains("not a regular file"), "{err}");
        let kind = std::fs::symlink_metadata(tmp.join("pipe.xlsx"))
            .expect("still there")
            .file_type();
        assert!(kind.is_fifo(), "the pipe is a pipe still");
    }
    // A workbook is replaced, keeping its permissions.
    std::fs::write(tmp.join("old.xlsx"), b"an older export").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.join("old.xlsx"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    ok(&tmp, &["export", "customer", "-o", "old.xlsx"]);
    let after = std::fs::read(tmp.join("old.xlsx")).expect("exported");
    assert!(after.starts_with(b"PK"), "a workbook (a zip file)");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.join("old.xlsx"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the permissions are kept");
    }
    no_partial_files(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_error_workbook_path_is_checked_before_importing() {
    let tmp = fresh("errors-path");
    ok(&tmp, &["demo"]);
    write_sheet(
        &tmp.join("new.xlsx"),
        &[&["客户名称"], &["路径测试有限公司"], &["路径测试有限公司"]],
    );
    let missing = tmp.join("no-such-dir").join("e.xlsx");
    let missing = missing.to_str().expect("utf-8 path");
    for extra in [&[][..], &["--batches", "--batch-size", "1"][..]] {
        let mut args = vec!["import", "customer", "new.xlsx", "--errors", missing];
        args.extend_from_slice(extra);
        let err = fails(&tmp, &args);
        assert!(
            err.contains("cannot write")
                && err.contains("e.xlsx")
                && err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }
    assert!(!has_customer(&tmp, "路径测试有限公司"), "nothing imported");
    assert_eq!(imports(&tmp), 0);
    // With a writable path the same import goes through.
    let i = ok(
        &tmp,
        &["import", "customer", "new.xlsx", "--errors", "e.xlsx"],
    );
    assert!(i.contains("1 created") && i.contains("1 skipped"), "{i}");
    assert!(tmp.join("e.xlsx").exists());
    no_partial_files(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn templates_are_always_importable() {
    let tmp = fresh("template");
    ok(&tmp, &["demo"]);
    for n in 1..=25 {
        ok(
            &tmp,
            &[
                "field",
                "add",
                "customer",
                &format!("wide{n}"),
                &format!("宽表字段{n}"),
                "--type",
                "text",
            ],
        );
    }
    ok(
        &tmp,
        &[
            "template",
            "customer",
            "--contacts",
            "20",
            "-o",
            "wide.xlsx",
        ],
    );
    let d = ok(&tmp, &["import", "customer", "wide.xlsx", "--dry-run"]);
    assert!(d.starts_with("dry run of wide.xlsx: 0 rows"), "{d}");
    // More contact groups than a row may have are refused, not cut.
    for n in ["21", "1000"] {
        let err = fails(
            &tmp,
            &["template", "customer", "--contacts", n, "-o", "t.xlsx"],
        );
        assert!(err.contains("at most 20 contact column groups"), "{err}");
    }
    assert!(!tmp.join("t.xlsx").exists());
    // A template wider than an import reads is refused.
    for n in 1..=40 {
        ok(
            &tmp,
            &[
                "field",
                "add",
                "contact",
                &format!("wide{n}"),
                &format!("联系人宽表字段{n}"),
                "--type",
                "text",
            ],
        );
    }
    let err = fails(
        &tmp,
        &["template", "customer", "--contacts", "20", "-o", "t.xlsx"],
    );
    assert!(
        err.contains("columns") && err.contains("exceeds the limit of"),
        "{err}"
    );
    assert!(!tmp.join("t.xlsx").exists());
    no_partial_files(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn unknown_stages_are_refused() {
    let tmp = fresh("stage");
    ok(&tmp, &["demo"]);
    let export = |stage: &str| {
        run(
            &tmp,
            &["export", "opportunity", "--stage", stage, "-o", "o.xlsx"],
        )
    };
    let err = fails(
        &tmp,
        &["export", "opportunity", "--stage", "bogus", "-o", "o.xlsx"],
    );
    assert!(
        err.contains("unknown opportunity stage 'bogus'") && err.contains("initial"),
        "{err}"
    );
    assert!(!tmp.join("o.xlsx").exists());
    // The list refuses it alike, rather than listing nothing.
    let err = fails(&tmp, &["opportunity", "list", "--stage", "bogus"]);
    assert!(
        err.contains("unknown opportunity stage 'bogus'") && err.contains("initial"),
        "{err}"
    );
    // An opportunity in the standard pipeline's first stage.
    let customers: serde_json::Value =
        serde_json::from_str(&ok(&tmp, &["--json", "customer", "list"])).expect("json");
    let customer = customers["items"][0]["code"]
        .as_str()
        .expect("a customer")
        .to_string();
    ok(
        &tmp,
        &[
            "opportunity",
            "add",
            "--customer",
            &customer,
            "--name",
            "阶段测试商机",
        ],
    );
    let e = common::succeeded(&[], export("initial"));
    assert!(e.starts_with("exported 1 "), "{e}");
    // The company and a department get pipelines of their own.
    ok(
        &tmp,
        &[
            "opportunity",
            "pipeline",
            "--name",
            "公司流程",
            "--stage",
            "first_call:初访:10",
            "--stage",
            "closing:成交:90",
        ],
    );
    let depts: serde_json::Value =
        serde_json::from_str(&ok(&tmp, &["--json", "dept", "list"])).expect("json");
    let dept = depts
        .as_array()
        .and_then(|a| a.iter().find(|d| !d["parent_id"].is_null()))
        .and_then(|d| d["name"].as_str())
        .expect("a department")
        .to_string();
    ok(
        &tmp,
        &[
            "opportunity",
            "pipeline",
            "--name",
            "部门流程",
            "--dept",
            &dept,
            "--stage",
            "dept_call:部门初访:10",
            "--stage",
            "dept_close:部门成交:90",
        ],
    );
    // Their stages are stages; so is a stage an opportunity is still in.
    for (stage, rows) in [("first_call", 0), ("dept_call", 0), ("initial", 1)] {
        let e = common::succeeded(&[], export(stage));
        assert!(e.starts_with(&format!("exported {rows} ")), "{stage}: {e}");
    }
    // A stage of the standard pipeline that no pipeline has now and no
    // opportunity is in is not.
    let err = fails(
        &tmp,
        &["export", "opportunity", "--stage", "needs", "-o", "o.xlsx"],
    );
    assert!(
        err.contains("unknown opportunity stage 'needs'")
            && err.contains("first_call")
            && err.contains("dept_call"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Runs the CLI on `db` in `dir` with the files it may write limited to
/// 4 KiB (`ulimit -f 8`, SIGXFSZ ignored): a write past that fails with
/// EFBIG, as on a full disk. The store must be PostgreSQL, whose files are
/// the server's.
#[cfg(all(unix, feature = "postgres"))]
fn run_limited(dir: &Path, db: &str, args: &[&str]) -> Output {
    std::process::Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg("ulimit -f 8 && trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(common::cli())
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CRM_USER")
        .env_remove("CRM_PASSWORD")
        .env_remove("CRM_COMPANY")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run the CLI")
}

#[cfg(all(unix, feature = "postgres"))]
#[test]
fn failed_writes_are_errors_naming_the_file() {
    let tmp = fresh("full");
    common::on_postgres("cli_io_files", |db| {
        let ok = |args: &[&str]| common::succeeded(args, common::run_in(Some(&tmp), db, args));
        ok(&["demo"]);
        // An export of one column (about 6 KiB) fails only when its last
        // bytes are flushed.
        std::fs::write(tmp.join("keep.xlsx"), b"an older export").expect("write");
        for out in ["keep.xlsx", "new.xlsx"] {
            let args = ["export", "customer", "--fields", "客户名称", "-o", out];
            let o = run_limited(&tmp, db, &args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.starts_with(&format!("error: cannot write {out}: ")),
                "{args:?}: {err}"
            );
            assert!(o.stdout.is_empty(), "nothing said exported: {args:?}");
        }
        assert_eq!(
            std::fs::read(tmp.join("keep.xlsx")).expect("kept"),
            b"an older export"
        );
        assert!(!tmp.join("new.xlsx").exists(), "no truncated workbook");
        // A whole export fails on the sheet's temporary file already: an
        // error too, not a crash.
        let o = run_limited(&tmp, db, &["export", "customer", "-o", "all.xlsx"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.lines()
                .last()
                .is_some_and(|l| l.starts_with("error: cannot write all.xlsx: ")),
            "{err}"
        );
        assert!(!tmp.join("all.xlsx").exists());
        let o = run_limited(&tmp, db, &["template", "customer", "-o", "t.xlsx"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.starts_with("error: cannot write t.xlsx: "), "{err}");
        assert!(!tmp.join("t.xlsx").exists());
        // The import is committed before its error workbook is written: the
        // error says so, with the import to undo.
        write_sheet(
            &tmp.join("new-customers.xlsx"),
            &[&["客户名称"], &["写满测试有限公司"], &["写满测试有限公司"]],
        );
        let o = run_limited(
            &tmp,
            db,
            &[
                "import",
                "customer",
                "new-customers.xlsx",
                "--errors",
                "e.xlsx",
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("error: cannot write e.xlsx: "), "{err}");
        assert!(err.contains("the import was committed"), "{err}");
        let list: serde_json::Value =
            serde_json::from_str(&ok(&["--json", "import", "--list"])).expect("json");
        let id = list[0]["id"].as_str().expect("the import").to_string();
        assert!(err.contains(&format!("crm import --undo {id}")), "{err}");
        assert!(!tmp.join("e.xlsx").exists());
        let u = ok(&["import", "--undo", &id]);
        assert!(u.contains("1 records removed"), "{u}");
        no_partial_files(&tmp);
    });
    let _ = std::fs::remove_dir_all(&tmp);
}
