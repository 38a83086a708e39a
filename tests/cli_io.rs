//! The CLI's spreadsheet commands end to end (feature `xlsx`): template,
//! export, dry run, import with an error workbook, undo, and one-line
//! errors for files that are no workbooks.
#![cfg(feature = "xlsx")]

mod common;

use std::path::Path;
use std::process::Output;

fn run(dir: &Path, args: &[&str]) -> Output {
    let db = dir.join("crm.db");
    common::run_in(Some(dir), db.to_str().expect("utf-8 path"), args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    common::succeeded(args, run(dir, args))
}

#[test]
fn template_export_import_and_undo_from_the_command_line() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    let t = ok(&tmp, &["template", "customer", "-o", "tpl.xlsx"]);
    assert!(t.contains("tpl.xlsx"), "{t}");
    assert!(tmp.join("tpl.xlsx").exists());
    let e = ok(
        &tmp,
        &[
            "export",
            "customer",
            "-o",
            "out.xlsx",
            "--fields",
            "客户名称,电话,负责人",
            "--where",
            "level=A",
        ],
    );
    assert!(e.starts_with("exported "), "{e}");
    // The export, imported back, finds every row a duplicate.
    let d = ok(&tmp, &["import", "customer", "out.xlsx", "--dry-run"]);
    assert!(d.contains("dry run") && d.contains("0 created"), "{d}");
    std::fs::write(tmp.join("new.csv"), "客户名称\n新客户有限公司\n".as_bytes()).expect("write");
    let out = run(&tmp, &["import", "customer", "new.csv"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(err.contains(".xlsx"), "{err}");
    // A workbook of our own: the template's sheet with two rows.
    let json = ok(&tmp, &["--json", "export", "customer", "-o", "all.xlsx"]);
    assert!(json.contains("\"rows\""), "{json}");
    let i = ok(
        &tmp,
        &[
            "--json", "import", "customer", "all.xlsx", "--policy", "update",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&i).expect("json report");
    let id = v["report"]["import_id"]
        .as_str()
        .expect("import id")
        .to_string();
    assert_eq!(v["report"]["created"], 0);
    let u = ok(&tmp, &["import", "--undo", &id]);
    assert!(u.contains("undid import"), "{u}");
    let l = ok(&tmp, &["import", "--list"]);
    assert!(l.contains("undone"), "{l}");
    let _ = std::fs::remove_dir_all(&tmp);
}
