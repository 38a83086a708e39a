//! The example CLI: the outbox commands are for administrators and show one
//! company's events, money custom fields read in yuan, archived records come
//! back with `unarchive`, shares are listed (to a user a record is shared
//! with, their own share only), customers are found by their contacts'
//! mobiles, and a contact's values may hold commas; batches on a filter refuse an empty one and ask for `--yes`
//! before touching several records, a partly refused batch fails, an edit
//! without changes is refused, restoring a live record says where it is, and
//! a transferred customer's follow-up opens by its code for the new owner;
//! a dozen edits without `--version` at once all land; custom values read
//! as typed in `show`, the history and the duplicate report, and users are
//! given by display name.

mod common;

use common::{fails, json, ok, run};

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
    // An acknowledgement never moves back, and says so; events show who
    // they are about by code or username, not by id.
    let third = demo[2]["seq"].as_i64().expect("seq").to_string();
    let first = demo[0]["seq"].as_i64().expect("seq").to_string();
    let out = ok(db, &["--company", "DEMO", "events", "ack", &third]);
    assert!(
        out.contains(&format!("acknowledged up to {third}")),
        "{out}"
    );
    let out = ok(db, &["--company", "DEMO", "events", "ack", &first]);
    assert!(out.contains("nothing changed"), "{out}");
    let table = ok(
        db,
        &["--company", "DEMO", "events", "pending", "--limit", "20"],
    );
    assert!(
        table.contains("role.created") && table.contains("user.created") && !table.contains("-7"),
        "{table}"
    );
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
    // Whom else it is shared with is for those who manage it: a user it is
    // shared with sees their own share only.
    ok(db, &["customer", "share", &code, "--with", "wangfang"]);
    let all = json(db, &["customer", "shares", &code]);
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    let own = json(db, &["--as", "zhangwei", "customer", "shares", &code]);
    assert_eq!(own.as_array().map(Vec::len), Some(1), "{own}");
    let out = ok(db, &["--as", "zhangwei", "customer", "shares", &code]);
    assert!(out.contains("张伟") && !out.contains("王芳"), "{out}");
    // A customer is found by its contacts' mobiles, unless they are masked.
    let found = json(db, &["customer", "search", "138 1001 0010"]);
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(
        found["items"][0]["fields"]["name"],
        "北京华信智联科技有限公司"
    );
    let masked = json(
        db,
        &["--as", "liuyang", "customer", "search", "13810010010"],
    );
    assert_eq!(masked["total"], 0, "{masked}");
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

#[test]
fn cli_pending_events_read_past_other_companies() {
    let (dir, db) = temp_db("events-window");
    let db = db.as_str();
    // Another company's events come first in the queue.
    ok(db, &["init", "--name", "另一家有限公司", "--code", "OTHER"]);
    ok(db, &["demo"]);
    let other = json(db, &["--company", "OTHER", "events", "pending"]);
    let other = other.as_array().expect("events");
    assert!(!other.is_empty());
    let other_company = other[0]["company_id"].clone();
    // DEMO's first two pending events, though OTHER's fill the first places.
    let demo = json(
        db,
        &["--company", "DEMO", "events", "pending", "--limit", "2"],
    );
    let demo = demo.as_array().expect("events");
    assert_eq!(demo.len(), 2, "{demo:?}");
    assert!(demo.iter().all(|e| e["company_id"] != other_company));
    assert!(demo[0]["seq"].as_i64() < demo[1]["seq"].as_i64());
    // A company with fewer pending events than the limit gets them all.
    let all = json(
        db,
        &["--company", "OTHER", "events", "pending", "--limit", "1000"],
    );
    assert_eq!(all.as_array().map(Vec::len), Some(other.len()), "{all}");
    let table = ok(
        db,
        &["--company", "DEMO", "events", "pending", "--limit", "1"],
    );
    assert!(table.contains("company.created"), "{table}");
    // DEMO acknowledging its newest event skips none of OTHER's, though
    // theirs come first in the queue, and moves DEMO's own position only.
    let demo_all = json(
        db,
        &[
            "--company",
            "DEMO",
            "events",
            "pending",
            "--limit",
            "100000",
        ],
    );
    let newest = demo_all
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["seq"].as_i64())
        .expect("a DEMO event");
    ok(
        db,
        &["--company", "DEMO", "events", "ack", &newest.to_string()],
    );
    let demo_left = json(db, &["--company", "DEMO", "events", "pending"]);
    assert_eq!(demo_left.as_array().map(Vec::len), Some(0), "{demo_left}");
    // With nothing pending, an older position changes nothing and says so;
    // a negative one is no position.
    let out = ok(db, &["--company", "DEMO", "events", "ack", "1"]);
    assert!(
        out.contains("nothing changed") && !out.contains("acknowledged up to"),
        "{out}"
    );
    let e = fails(db, &["--company", "DEMO", "events", "ack", "--", "-1"]);
    assert!(e.contains("not an event's position"), "{e}");
    let other_left = json(
        db,
        &["--company", "OTHER", "events", "pending", "--limit", "1000"],
    );
    assert_eq!(other_left, all, "OTHER's events stay pending");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_batches_on_a_filter_are_guarded() {
    let (dir, db) = temp_db("batch-guard");
    let db = db.as_str();
    ok(db, &["demo"]);
    let total = |db: &str| json(db, &["customer", "list"])["total"].clone();
    let before = total(db);
    let zhangwei = json(db, &["--as", "zhangwei", "customer", "list"]);
    let mine = zhangwei["items"][0].clone();
    // An empty search or condition would select everything: refused, for
    // every batch that takes a filter.
    for args in [
        &["customer", "delete", "--search", ""][..],
        &["customer", "delete", "--search", "  "],
        &["customer", "delete", "--where", ""],
        &["customer", "archive", "-s", ""],
        &["customer", "transfer", "--search", "", "--to", "wangfang"],
        &["customer", "share", "--search", "", "--with", "zhangwei"],
        &["pool", "release", "--search", "", "--reason", "测试"],
    ] {
        let e = fails(db, args);
        assert!(
            e.contains("--search is empty") || e.contains("--where is empty"),
            "{args:?}: {e}"
        );
    }
    assert_eq!(total(db), before);
    let shared = json(db, &["--as", "zhangwei", "customer", "list"]);
    assert_eq!(shared["total"], zhangwei["total"], "nothing was shared");
    // Several records selected by a filter: nothing happens without --yes.
    let c = json(db, &["customer", "list", "-w", "level=C"]);
    let selected = c["total"].as_u64().expect("total");
    assert!(selected > 1, "{c}");
    let e = fails(db, &["customer", "delete", "--where", "level=C"]);
    assert!(
        e.contains(&format!("selects {selected} customer records")) && e.contains("--yes"),
        "{e}"
    );
    let e = fails(
        db,
        &["customer", "transfer", "-w", "level=C", "--to", "wangfang"],
    );
    assert!(e.contains("--yes"), "{e}");
    assert_eq!(total(db), before);
    let out = ok(db, &["customer", "archive", "--where", "level=C", "--yes"]);
    assert!(
        out.contains(&format!(
            "selected {selected} customer record(s) by the filter"
        )) && out.contains(&format!("archived: {selected} done")),
        "{out}"
    );
    // An edit without pairs changes nothing and says so.
    let live = json(db, &["customer", "list"])["items"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let version = json(db, &["customer", "show", &live])["version"].clone();
    let e = fails(db, &["customer", "edit", &live]);
    assert!(
        e.contains("nothing to change: give field=value pairs"),
        "{e}"
    );
    assert_eq!(json(db, &["customer", "show", &live])["version"], version);
    // Restoring or purging a live record: it is not in the recycle bin.
    for verb in ["restore", "purge"] {
        let e = fails(db, &["customer", verb, &live]);
        assert!(
            e.contains(&format!("{live} is not in the recycle bin")),
            "{e}"
        );
    }
    let e = fails(db, &["customer", "unarchive", &live]);
    assert!(e.contains(&format!("{live} is not archived")), "{e}");
    let e = fails(db, &["customer", "restore", "KH-NO-SUCH"]);
    assert!(e.contains("KH-NO-SUCH not found"), "{e}");
    // A batch of named records with a refusal (a customer shared for
    // reading only) prints its report and fails.
    let (owner, mine) = (&mine["owner_id"], mine["code"].as_str().expect("code"));
    let others = json(db, &["customer", "list", "-w", "level=B"]);
    let theirs = others["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| &r["owner_id"] != owner)
        .and_then(|r| r["code"].as_str())
        .expect("another owner's customer")
        .to_string();
    ok(db, &["customer", "share", &theirs, "--with", "zhangwei"]);
    let out = run(
        db,
        &["--as", "zhangwei", "customer", "delete", mine, &theirs],
    );
    assert!(!out.status.success(), "a partly refused batch fails");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("deleted: 1 done, 1 refused"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: 1 of 2 records were not deleted"),
        "{stderr}"
    );
    // A customer purged for good: its history, by id, for administrators.
    let id = json(db, &["customer", "show", &live])["id"]
        .as_str()
        .expect("id")
        .to_string();
    ok(db, &["customer", "delete", &live]);
    ok(db, &["customer", "purge", &live]);
    let history = ok(db, &["customer", "history", &id]);
    assert!(
        history.contains("create") && history.contains("purge"),
        "{history}"
    );
    let e = fails(db, &["--as", "zhangwei", "customer", "history", &id]);
    assert!(e.contains("not found"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Records named by code are answered by that code: a pool batch naming a
/// customer the user may not reach and one naming a code nobody has get
/// the same answer (no id, nothing telling them apart), in text and JSON;
/// and a follow-up list is filtered by its customer's code.
#[test]
fn cli_names_records_by_the_codes_given() {
    let (dir, db) = temp_db("codes");
    let db = db.as_str();
    ok(db, &["demo"]);
    ok(db, &["pool", "add", "华东公海", "--dept", "销售部"]);
    // A customer of 李强's, which 王芳 may not see.
    let theirs = json(db, &["--as", "liqiang", "customer", "list"])["items"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let missing = "KH-19990101-9999";
    let answer = |code: &str| {
        let out = run(db, &["--as", "wangfang", "pool", "claim", code]);
        assert!(!out.status.success(), "claiming {code}");
        let text = String::from_utf8_lossy(&out.stdout).replace(code, "CODE");
        let out = run(db, &["--as", "wangfang", "--json", "pool", "claim", code]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        (text, stdout.replace(code, "CODE"))
    };
    let (hidden, missing_answer) = (answer(&theirs), answer(missing));
    assert_eq!(hidden, missing_answer);
    assert!(
        hidden.0.contains("refused CODE: customer CODE not found"),
        "{}",
        hidden.0
    );
    assert!(!hidden.1.contains("-7"), "no id in {}", hidden.1);
    let e = fails(db, &["--as", "wangfang", "pool", "history", &theirs]);
    assert_eq!(
        e.replace(&theirs, "CODE").trim_end(),
        "error: customer CODE not found"
    );
    // Follow-ups filtered by their customer's code, as `add` takes it.
    let all = json(db, &["followup", "list", "--per-page", "100"]);
    let first = &all["items"][0];
    let customer = first["fields"]["customer_id"]
        .as_str()
        .expect("customer id");
    let code = json(db, &["customer", "show", customer])["code"]
        .as_str()
        .expect("code")
        .to_string();
    let by_code = json(
        db,
        &["followup", "list", "-w", &format!("customer_id={code}")],
    );
    let by_id = json(
        db,
        &["followup", "list", "-w", &format!("customer_id={customer}")],
    );
    assert_eq!(by_code["items"], by_id["items"]);
    assert!(!by_code["items"].as_array().expect("items").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The id in `--json` output of `args` (its `code`'s record's `id`).
fn id_of(db: &str, args: &[&str]) -> String {
    json(db, args)["id"].as_str().expect("id").to_string()
}

/// The code a `… add` printed (`added 客户 KH-… `).
fn added_code(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.contains('-') && w.chars().any(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {out}"))
        .to_string()
}

#[test]
fn cli_show_names_customers_pools_and_custom_fields_not_ids() {
    let (dir, db) = temp_db("show-names");
    let db = db.as_str();
    ok(db, &["demo"]);
    // A contact and a follow-up name their customer by code and name.
    let contacts = json(db, &["contact", "list"]);
    let contact = &contacts["items"][0];
    let contact_code = contact["code"].as_str().expect("code").to_string();
    let customer_id = contact["fields"]["customer_id"].as_str().expect("id");
    let customer = json(db, &["customer", "show", customer_id]);
    let customer_code = customer["code"].as_str().expect("code").to_string();
    let customer_name = customer["fields"]["name"].as_str().expect("name");
    let shown = ok(db, &["contact", "show", &contact_code]);
    let line = shown
        .lines()
        .find(|l| l.contains("所属客户"))
        .expect("customer row");
    assert!(
        line.contains(&customer_code) && line.contains(customer_name),
        "{line}"
    );
    assert!(!shown.contains(customer_id), "{shown}");
    let f = ok(
        db,
        &[
            "followup",
            "add",
            &format!("customer_id={customer_code}"),
            "channel=call",
            "content=回访",
        ],
    );
    let followup = added_code(&f);
    let shown = ok(db, &["followup", "show", &followup]);
    assert!(shown.contains(&customer_code), "{shown}");
    assert!(!shown.contains(customer_id), "{shown}");
    // A custom field by its label.
    ok(
        db,
        &[
            "field", "add", "customer", "budget", "预算", "--type", "money",
        ],
    );
    ok(
        db,
        &["customer", "edit", &customer_code, "custom.budget=1000"],
    );
    let shown = ok(db, &["customer", "show", &customer_code]);
    let line = shown
        .lines()
        .find(|l| l.contains("1000.00"))
        .expect("budget row");
    assert!(line.contains("预算"), "{line}");
    // A multi-select field's options in its history as `show` lists them.
    ok(
        db,
        &[
            "field",
            "add",
            "customer",
            "langs",
            "语言",
            "--type",
            "multi_select",
            "--options",
            "German,English,French",
        ],
    );
    ok(
        db,
        &["customer", "edit", &customer_code, "langs=German,English"],
    );
    ok(db, &["customer", "edit", &customer_code, "langs=French"]);
    let history = ok(db, &["customer", "history", &customer_code]);
    assert!(
        history.contains("custom.langs: German,English → French"),
        "{history}"
    );
    // A customer's pool by name, in its record and in its history after
    // the pool is deleted.
    ok(
        db,
        &[
            "pool",
            "add",
            "华东公海",
            "--admin",
            "admin",
            "--dept",
            "销售部",
        ],
    );
    let pools = json(db, &["pool", "list"]);
    let pool_id = pools[0]["id"].as_str().expect("pool id").to_string();
    ok(
        db,
        &[
            "pool",
            "release",
            &customer_code,
            "--reason",
            "无意向",
            "--to",
            "华东公海",
        ],
    );
    let shown = ok(db, &["customer", "show", &customer_code]);
    let line = shown
        .lines()
        .find(|l| l.contains("所属公海"))
        .expect("pool row");
    assert!(line.contains("华东公海"), "{line}");
    assert!(!shown.contains(&pool_id), "{shown}");
    ok(db, &["pool", "assign", &customer_code, "--to", "zhangwei"]);
    ok(db, &["pool", "delete", "华东公海"]);
    let history = ok(db, &["customer", "history", &customer_code]);
    assert!(history.contains("pool_id: 华东公海 →"), "{history}");
    assert!(history.contains("owner_id:  → 张伟"), "{history}");
    assert!(!history.contains(&pool_id), "{history}");
    // A contact's history names its customer by code and name.
    let history = ok(db, &["contact", "history", &contact_code]);
    let line = history
        .lines()
        .find(|l| l.contains("customer_id:"))
        .unwrap_or_else(|| panic!("no customer in {history}"));
    assert!(
        line.contains(&format!("{customer_code} {customer_name}")),
        "{line}"
    );
    assert!(!history.contains(customer_id), "{history}");
    // Departments by name, each under its parent.
    let depts = json(db, &["dept", "list"]);
    let listed = ok(db, &["dept", "list"]);
    for d in depts.as_array().expect("departments") {
        let id = d["id"].as_str().expect("id");
        assert!(!listed.contains(id), "{listed}");
        assert!(listed.contains(d["name"].as_str().expect("name")));
    }
    assert!(listed.contains("\n  销售部"), "{listed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_records_of_a_customer_no_longer_readable_do_not_show_its_id() {
    let (dir, db) = temp_db("hidden-customer");
    let db = db.as_str();
    ok(db, &["demo"]);
    // 曾丽's customer, shared with 王芳 (华北) for a while.
    let out = ok(
        db,
        &[
            "--as",
            "zengli",
            "customer",
            "add",
            "name=隐藏客户测试有限公司",
        ],
    );
    let code = added_code(&out);
    let id = id_of(db, &["customer", "show", &code]);
    let c = ok(
        db,
        &[
            "--as",
            "zengli",
            "contact",
            "add",
            &format!("customer_id={code}"),
            "name=赵六",
        ],
    );
    let contact = added_code(&c);
    ok(db, &["customer", "share", &code, "--with", "wangfang"]);
    let f = ok(
        db,
        &[
            "--as",
            "wangfang",
            "followup",
            "add",
            &format!("customer_id={code}"),
            "channel=call",
            "content=电话沟通",
        ],
    );
    let followup = added_code(&f);
    ok(db, &["customer", "unshare", &code, "--with", "wangfang"]);
    ok(db, &["contact", "share", &contact, "--with", "wangfang"]);
    let hidden = "（无权查看的客户）(hidden customer)";
    for args in [
        &["--as", "wangfang", "followup", "list"][..],
        &["--as", "wangfang", "followup", "show", &followup][..],
        &["--as", "wangfang", "contact", "list"][..],
        &["--as", "wangfang", "contact", "show", &contact][..],
    ] {
        let out = ok(db, args);
        assert!(!out.contains(&id), "{args:?}: {out}");
        assert!(!out.contains("隐藏客户测试"), "{args:?}: {out}");
        assert!(out.contains(hidden), "{args:?}: {out}");
    }
    // Who may read the customer sees it.
    let shown = ok(db, &["followup", "show", &followup]);
    assert!(
        shown.contains(&format!("{code} 隐藏客户测试有限公司")),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_concurrent_edits_each_report_the_version_they_wrote() {
    let (dir, db) = temp_db("edit-versions");
    let db = db.as_str();
    ok(db, &["demo"]);
    let list = json(db, &["customer", "list"]);
    let code = list["items"][0]["code"].as_str().expect("code").to_string();
    let mut reported = Vec::new();
    for round in 0..4 {
        let runs: Vec<_> = (0..4)
            .map(|i| {
                let (db, code) = (db.to_string(), code.clone());
                std::thread::spawn(move || {
                    run(
                        &db,
                        &["customer", "edit", &code, &format!("notes=第{round}轮{i}")],
                    )
                })
            })
            .collect();
        for r in runs {
            let out = r.join().expect("edit");
            if !out.status.success() {
                // A conflict (or a busy database) refuses the edit: it
                // wrote nothing and reports no version.
                continue;
            }
            let text = String::from_utf8(out.stdout).expect("utf-8");
            let v: i64 = text
                .split("(version ")
                .nth(1)
                .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no version in {text}"));
            reported.push(v);
        }
    }
    assert!(!reported.is_empty());
    // Each write made one version; no two edits claim the same one.
    let mut distinct = reported.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), reported.len(), "{reported:?}");
    // And each version reported was written by an update.
    let history = json(db, &["customer", "history", &code]);
    let updates = history
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["action"] == "update")
        .count();
    assert!(reported.len() <= updates, "{reported:?} of {updates}");
    let last = json(db, &["customer", "show", &code])["version"]
        .as_i64()
        .expect("version");
    assert!(distinct.iter().all(|v| *v <= last), "{distinct:?} > {last}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A customer's follow-up is opened by its code by whoever reads the
/// customer: its new owner after a transfer, though the follow-up stays
/// its author's.
#[test]
fn cli_a_transferred_customers_follow_up_opens_by_code() {
    let (dir, db) = temp_db("follow-up-code");
    let db = db.as_str();
    ok(db, &["demo"]);
    let users = json(db, &["user", "list"]);
    let wangfang = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["username"] == "wangfang")
        .map(|u| u["id"].clone())
        .expect("wangfang");
    let list = json(db, &["followup", "list", "--per-page", "50"]);
    // A follow-up of a customer someone else than 王芳 holds.
    let (code, customer) = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find_map(|f| {
            let code = f["code"].as_str()?.to_string();
            let shown = json(db, &["followup", "show", &code]);
            let customer = shown["fields"]["customer_id"].as_str()?.to_string();
            let held = json(db, &["customer", "show", &customer]);
            (held["owner_id"] != wangfang)
                .then(|| (code, held["code"].as_str().map(str::to_string)))
        })
        .expect("a follow-up of another's customer");
    let customer = customer.expect("customer code");
    let to = "wangfang";
    assert!(
        fails(db, &["--as", to, "followup", "show", &code]).contains("not found"),
        "{to} reads no customer of another's"
    );
    ok(db, &["customer", "transfer", &customer, "--to", to]);
    let opened = ok(db, &["--as", to, "followup", "show", &code]);
    assert!(opened.contains(&code), "{opened}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Edits given without `--version` are meant for the record as it is now:
/// a dozen colleagues editing one customer at once all land, each applied
/// on top of the others, none refused as a conflict.
fn versionless_edits_all_land(db: &str) {
    ok(db, &["demo"]);
    let list = json(db, &["customer", "list"]);
    let code = list["items"][0]["code"].as_str().expect("code").to_string();
    let before = json(db, &["customer", "show", &code])["version"]
        .as_i64()
        .expect("version");
    const EDITORS: i64 = 12;
    let runs: Vec<_> = (0..EDITORS)
        .map(|i| {
            let (db, code) = (db.to_string(), code.clone());
            std::thread::spawn(move || {
                run(&db, &["customer", "edit", &code, &format!("notes=同事{i}")])
            })
        })
        .collect();
    for r in runs {
        let out = r.join().expect("edit");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = json(db, &["customer", "show", &code])["version"]
        .as_i64()
        .expect("version");
    assert_eq!(after, before + EDITORS);
}

#[test]
fn cli_versionless_edits_all_land() {
    let (dir, db) = temp_db("versionless");
    versionless_edits_all_land(&db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_versionless_edits_all_land_on_postgres() {
    common::on_postgres("cli_versionless", versionless_edits_all_land);
}

/// Custom values read as typed in `show`, the history (after their field is
/// deleted too) and the duplicate report: numbers without `.0`, money in
/// yuan, users by name; users are given by display name on add and edit
/// as in filters, and a deactivated one is given nothing new.
#[test]
fn cli_custom_values_read_as_typed() {
    let (dir, db) = temp_db("custom-values");
    let db = db.as_str();
    ok(db, &["demo"]);
    for (key, label, ty) in [
        ("am", "客户经理", "user"),
        ("budget", "预算", "money"),
        ("headcount", "员工数", "number"),
    ] {
        ok(db, &["field", "add", "customer", key, label, "--type", ty]);
    }
    let list = json(db, &["customer", "list"]);
    let codes: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .take(3)
        .map(|r| r["code"].as_str().expect("code").to_string())
        .collect();
    let (a, b, c) = (&codes[0], &codes[1], &codes[2]);
    ok(
        db,
        &[
            "customer",
            "edit",
            a,
            "am=王芳",
            "budget=100",
            "headcount=120",
        ],
    );
    ok(db, &["customer", "edit", a, "budget=12345.67"]);
    ok(
        db,
        &[
            "customer",
            "edit",
            b,
            "am=wangfang",
            "budget=12345.67",
            "headcount=120",
        ],
    );
    let out = ok(
        db,
        &["customer", "add", "name=显示名有限公司", "负责人=王芳"],
    );
    assert!(out.contains("显示名有限公司"), "{out}");
    let out = ok(db, &["customer", "show", a]);
    assert!(out.contains("王芳") && out.contains("12345.67"), "{out}");
    assert!(out.contains("120 ") && !out.contains("120.0"), "{out}");
    for f in ["custom.am", "custom.budget", "custom.headcount"] {
        ok(db, &["customer", "dupes", "--set", &format!("{f}=warn")]);
    }
    let out = ok(db, &["customer", "dupes"]);
    for reason in [
        "same 客户经理 王芳",
        "same 预算 12345.67",
        "same 员工数 120 ",
    ] {
        assert!(out.contains(reason), "{reason}: {out}");
    }
    ok(
        db,
        &["customer", "dupes", "--set", "custom.headcount=block"],
    );
    let e = fails(db, &["customer", "edit", c, "headcount=120"]);
    assert!(e.contains("员工数 120 already belongs"), "{e}");
    // History reads money in yuan before and after the field is deleted.
    let out = ok(db, &["customer", "history", a]);
    assert!(out.contains("custom.budget: 100.00 → 12345.67"), "{out}");
    assert!(
        out.contains("custom.headcount:  → 120 ") && !out.contains("120.0"),
        "{out}"
    );
    ok(db, &["field", "delete", "customer", "budget"]);
    let out = ok(db, &["customer", "history", a]);
    assert!(out.contains("custom.budget: 100.00 → 12345.67"), "{out}");
    // A deactivated user is no new manager; the one a record has stays.
    ok(db, &["user", "edit", "wangfang", "--deactivate"]);
    let e = fails(db, &["customer", "edit", c, "am=wangfang"]);
    assert!(e.contains("user wangfang is deactivated"), "{e}");
    ok(db, &["customer", "edit", a, "am=wangfang", "city=苏州"]);
    let _ = std::fs::remove_dir_all(&dir);
}
