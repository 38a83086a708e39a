//! The example CLI: a custom field's label and options are changed with
//! `field edit`, an option records still hold is not removed (the refusal
//! names it and the records), and the administrative changes — custom
//! fields, pools, transfers — read well in `events pending`.

mod common;

use common::{fails, json, ok};

fn temp_db(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("crm-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("cli.db");
    let _ = std::fs::remove_file(&db);
    let db = db.to_str().expect("path").to_string();
    (dir, db)
}

#[test]
fn cli_field_edit_keeps_held_options_and_admin_changes_are_listed() {
    let (dir, db) = temp_db("admin-events");
    let db = db.as_str();
    ok(db, &["demo"]);
    // Everything the demo announced is acknowledged: what follows is new.
    let all = json(db, &["events", "pending", "--limit", "100000"]);
    let last = all
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["seq"].as_i64())
        .expect("events");
    ok(db, &["events", "ack", &last.to_string()]);
    ok(
        db,
        &[
            "field",
            "add",
            "customer",
            "region",
            "区域",
            "--type",
            "select",
            "--options",
            "华东,华北",
        ],
    );
    let list = json(db, &["customer", "list"]);
    let code = list["items"][0]["code"].as_str().expect("code").to_string();
    ok(db, &["customer", "edit", &code, "region=华东"]);
    let out = ok(
        db,
        &[
            "field",
            "edit",
            "customer",
            "region",
            "--label",
            "销售区域",
            "--options",
            "华东,华北,西南",
        ],
    );
    assert!(out.contains("销售区域") && out.contains("西南"), "{out}");
    let e = fails(
        db,
        &[
            "field",
            "edit",
            "customer",
            "region",
            "--options",
            "华北,西南",
        ],
    );
    assert!(
        e.contains("'华东'") && e.contains("held by 1") && e.contains(&code) && e.contains("first"),
        "{e}"
    );
    ok(db, &["customer", "edit", &code, "region=西南"]);
    ok(
        db,
        &[
            "field",
            "edit",
            "customer",
            "region",
            "--options",
            "华北,西南",
        ],
    );
    ok(db, &["customer", "transfer", &code, "--to", "zhangwei"]);
    let table = ok(db, &["events", "pending", "--limit", "100"]);
    for shown in [
        "custom_field.created",
        "custom_field.updated",
        "customer.region (销售区域)",
        "customer.transferred",
        "→ zhangwei",
    ] {
        assert!(table.contains(shown), "{shown} in {table}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
