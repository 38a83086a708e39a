//! The example CLI: the outbox commands are for administrators and show one
//! company's events, money custom fields read in yuan, archived records come
//! back with `unarchive`, shares are listed, and a contact's values may hold
//! commas.

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
fn cli_events_are_for_administrators_of_their_company() {
    let (dir, db) = temp_db("events");
    let db = db.as_str();
    ok(db, &["demo"]);
    ok(db, &["init", "--name", "另一家有限公司", "--code", "OTHER"]);
    // A salesperson may neither read nor move the host's queue.
    for args in [
        &["--as", "liuyang", "--json", "events", "pending"][..],
        &["--as", "liuyang", "events", "ack", "999999999"][..],
    ] {
        let e = fails(db, args);
        assert!(e.contains("only an administrator"), "{e}");
    }
    // The refused ack moved nothing: DEMO's events are still pending.
    let demo = json(
        db,
        &["--company", "DEMO", "events", "pending", "--limit", "1000"],
    );
    let demo = demo.as_array().expect("events");
    assert!(!demo.is_empty());
    let demo_company = demo[0]["company_id"].clone();
    assert!(demo.iter().all(|e| e["company_id"] == demo_company));
    // Another company's administrator sees only that company's events.
    let other = json(
        db,
        &["--company", "OTHER", "events", "pending", "--limit", "1000"],
    );
    let other = other.as_array().expect("events");
    assert!(!other.is_empty());
    assert!(other.iter().all(|e| e["company_id"] != demo_company));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_unarchive_shares_money_and_commas() {
    let (dir, db) = temp_db("records");
    let db = db.as_str();
    ok(db, &["demo"]);
    let list = json(db, &["customer", "list"]);
    let code = list["items"][0]["code"].as_str().expect("code").to_string();
    // Archive, then bring back.
    ok(db, &["customer", "archive", &code]);
    let archived = json(db, &["customer", "list", "--archived"]);
    assert!(
        archived["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|r| r["code"] == code.as_str())
    );
    let out = ok(db, &["customer", "unarchive", &code]);
    assert!(out.contains("unarchived: 1 done"), "{out}");
    let r = json(db, &["customer", "show", &code]);
    assert!(r["archived_at"].is_null(), "{r}");
    assert!(fails(db, &["customer", "unarchive", &code]).starts_with("error: "));
    // Shares are listed.
    ok(db, &["customer", "share", &code, "--with", "zhangwei"]);
    let shares = json(db, &["customer", "shares", &code]);
    assert_eq!(shares.as_array().map(Vec::len), Some(1), "{shares}");
    assert_eq!(shares[0]["access"], "read");
    let out = ok(db, &["customer", "shares", &code]);
    assert!(out.contains("张伟"), "{out}");
    // A money custom field reads in yuan and round-trips.
    ok(
        db,
        &[
            "field", "add", "customer", "budget", "预算", "--type", "money",
        ],
    );
    ok(db, &["customer", "edit", &code, "budget=12345.67"]);
    let out = ok(db, &["customer", "show", &code]);
    assert!(out.contains("12345.67"), "{out}");
    assert!(!out.contains("1234567 "), "{out}");
    ok(db, &["customer", "edit", &code, "budget=12345.67"]);
    let r = json(db, &["customer", "show", &code]);
    assert_eq!(r["custom"]["budget"], 1_234_567, "{r}");
    // Commas inside a contact's values.
    ok(
        db,
        &[
            "field",
            "add",
            "contact",
            "tags",
            "标签",
            "--type",
            "multi_select",
            "--options",
            "重点,华北,华东",
        ],
    );
    ok(
        db,
        &[
            "customer",
            "add",
            "name=逗号测试有限公司",
            "--contact",
            "name=孔明,mobile=13900002222,tags=重点,华北,notes=甲,乙",
        ],
    );
    let found = json(db, &["contact", "search", "孔明"]);
    let c = &found["items"][0];
    assert_eq!(
        c["custom"]["tags"],
        serde_json::json!(["重点", "华北"]),
        "{c}"
    );
    assert_eq!(c["fields"]["notes"], "甲,乙", "{c}");
    assert_eq!(c["fields"]["mobile"], "13900002222", "{c}");
    let _ = std::fs::remove_dir_all(&dir);
}
