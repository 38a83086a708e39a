//! The example CLI end to end: demo data, lists, edits and clear one-line
//! errors with a non-zero exit, on SQLite and on PostgreSQL.

mod common;

use common::{days_from_today, fails, json, local_time, ok, run};

fn walk_through(db: &str) {
    let out = ok(db, &["demo"]);
    assert!(out.contains("12 customers"), "{out}");
    // A field given twice on the command line is refused, not the last
    // one kept.
    let m = fails(
        db,
        &[
            "customer",
            "add",
            "name=重复字段有限公司",
            "level=A",
            "level=D",
        ],
    );
    assert!(m.contains("level is given twice"), "{m}");
    assert!(fails(db, &["demo"]).contains("exists already"));
    // Customer-only commands belong to customers: contacts neither list
    // nor take them.
    let help = ok(db, &["contact", "--help"]);
    for only in ["dupes", "merge", "view", "birthdays", "expiring"] {
        assert!(!help.contains(&format!("  {only} ")), "{only}: {help}");
        assert!(ok(db, &["customer", "--help"]).contains(&format!("  {only} ")));
    }
    let refused = run(db, &["contact", "dupes"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unrecognized subcommand 'dupes'"),
        "{refused:?}"
    );
    // Lists, search by pinyin initials, scoped views.
    let all: serde_json::Value =
        serde_json::from_str(&ok(db, &["--json", "customer", "list"])).expect("json");
    assert_eq!(all["total"], 12);
    assert_eq!(all["items"].as_array().map(Vec::len), Some(10));
    // A descending sort key is written as the README writes it.
    let newest: serde_json::Value = serde_json::from_str(&ok(
        db,
        &["--json", "customer", "list", "--sort", "-created_at"],
    ))
    .expect("json");
    assert_eq!(newest["total"], 12);
    let found: serde_json::Value =
        serde_json::from_str(&ok(db, &["--json", "customer", "search", "hxzl"])).expect("json");
    assert_eq!(
        found["items"][0]["fields"]["name"],
        "北京华信智联科技有限公司"
    );
    // Search pages: the footer's "next page" is there to be used.
    let first = ok(db, &["customer", "search", "有限公司"]);
    assert!(
        first.contains("12 in all; more on the next page (--page)"),
        "{first}"
    );
    let second = json(db, &["customer", "search", "有限公司", "--page", "2"]);
    assert_eq!(
        second["items"].as_array().map(Vec::len),
        Some(2),
        "{second}"
    );
    assert_eq!(second["has_more"], false, "{second}");
    let small = json(
        db,
        &[
            "customer",
            "search",
            "有限公司",
            "--page",
            "3",
            "--per-page",
            "5",
        ],
    );
    assert_eq!(small["items"].as_array().map(Vec::len), Some(2), "{small}");
    // Due and overdue follow-ups page too.
    let codes: Vec<String> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["code"].as_str().expect("code").to_string())
        .collect();
    ok(
        db,
        &["customer", "edit", &codes[0], "next_follow_up=2020-01-01"],
    );
    ok(
        db,
        &["customer", "edit", &codes[1], "next_follow_up=2020-01-02"],
    );
    let due = ok(db, &["customer", "due", "--overdue", "--per-page", "1"]);
    assert!(
        due.contains("2 in all; more on the next page (--page)"),
        "{due}"
    );
    let due = json(
        db,
        &[
            "customer",
            "due",
            "--overdue",
            "--per-page",
            "1",
            "--page",
            "2",
        ],
    );
    assert_eq!(due["items"][0]["code"], codes[1].as_str(), "{due}");
    assert_eq!(due["has_more"], false, "{due}");
    let mine: serde_json::Value =
        serde_json::from_str(&ok(db, &["--json", "--as", "zhangwei", "customer", "list"]))
            .expect("json");
    assert_eq!(mine["total"], 3);
    let masked = ok(db, &["--as", "liuyang", "contact", "list"]);
    assert!(masked.contains("****"), "{masked}");
    // Transferred to me, page by page.
    ok(
        db,
        &[
            "customer", "transfer", &codes[2], &codes[3], "--to", "chenjing",
        ],
    );
    let moved = ok(
        db,
        &[
            "--as",
            "chenjing",
            "customer",
            "transferred",
            "--per-page",
            "1",
        ],
    );
    assert!(
        moved.contains("2 in all; more on the next page (--page)"),
        "{moved}"
    );
    let moved = json(
        db,
        &[
            "--as",
            "chenjing",
            "customer",
            "transferred",
            "--per-page",
            "1",
            "--page",
            "2",
        ],
    );
    assert_eq!(moved["items"].as_array().map(Vec::len), Some(1), "{moved}");
    assert_eq!(moved["has_more"], false, "{moved}");
    // Add, edit, conflict, transfer, share, delete and restore.
    let added = ok(
        db,
        &[
            "--json",
            "--as",
            "zhangwei",
            "customer",
            "add",
            "name=命令行测试有限公司",
            "phone=010-88886666",
            "--contact",
            "name=孔明,mobile=13900001111",
        ],
    );
    let added: serde_json::Value = serde_json::from_str(&added).expect("json");
    let code = added["code"].as_str().expect("code").to_string();
    ok(
        db,
        &[
            "--as",
            "zhangwei",
            "customer",
            "edit",
            &code,
            "level=A",
            "客户来源=展会",
        ],
    );
    assert!(
        fails(
            db,
            &[
                "--as",
                "zhangwei",
                "customer",
                "edit",
                &code,
                "level=B",
                "--version",
                "1"
            ]
        )
        .contains("changed by someone else")
    );
    assert!(fails(db, &["customer", "add", "name=命令行测试"]).contains("duplicate"));
    assert!(
        fails(db, &["customer", "add", "name=坏公司", "uscc=123"]).contains("统一社会信用代码")
    );
    assert!(fails(db, &["--as", "wangfang", "customer", "show", &code]).contains("not found"));
    ok(
        db,
        &[
            "--as", "zhangwei", "customer", "share", &code, "--with", "wangfang", "--access",
            "read",
        ],
    );
    ok(db, &["--as", "wangfang", "customer", "show", &code]);
    // Times are shown in the companies' local time: a share's end as typed
    // (in the future, as a share's end must be).
    let until = format!("{} 18:00", days_from_today(24));
    ok(
        db,
        &[
            "customer", "share", &code, "--with", "chenjing", "--until", &until,
        ],
    );
    let shares = ok(db, &["customer", "shares", &code]);
    assert!(shares.contains(&until), "{shares}");
    // A day alone is through that day: shown as its end, not as the next
    // day's midnight.
    let day = days_from_today(30);
    ok(
        db,
        &[
            "customer", "share", &code, "--with", "liqiang", "--until", &day,
        ],
    );
    let shares = ok(db, &["customer", "shares", &code]);
    assert!(shares.contains(&format!("{day} 24:00")), "{shares}");
    let shown = json(db, &["customer", "show", &code]);
    let created = local_time(
        shown["created_at"].as_str().expect("created_at"),
        "%Y-%m-%d %H:%M",
    );
    let table = ok(db, &["customer", "show", &code]);
    assert!(table.contains(&format!("{created} by")), "{table}");
    let history = json(db, &["customer", "history", &code]);
    let at = local_time(history[0]["at"].as_str().expect("at"), "%Y-%m-%d %H:%M:%S");
    let table = ok(db, &["customer", "history", &code]);
    assert!(table.contains(&at), "{table}");
    ok(
        db,
        &[
            "--as", "zhangwei", "customer", "transfer", &code, "--to", "liqiang",
        ],
    );
    let history = ok(db, &["customer", "history", &code]);
    assert!(history.contains("transfer"), "{history}");
    ok(
        db,
        &[
            "followup",
            "add",
            &format!("customer_id={code}"),
            "channel=拜访",
            "content=上门演示",
        ],
    );
    // A follow-up's time reads as it was typed, in local time (a visit made
    // some days ago).
    let occurred = format!("{} 14:30", days_from_today(-10));
    let visit = json(
        db,
        &[
            "followup",
            "add",
            &format!("customer_id={code}"),
            "channel=拜访",
            "content=带样品",
            &format!("occurred_at={occurred}"),
        ],
    );
    let visit = visit["code"].as_str().expect("code").to_string();
    let listed = ok(db, &["followup", "list", "-w", &format!("code={visit}")]);
    assert!(listed.contains(&occurred), "{listed}");
    let shown = ok(db, &["followup", "show", &visit]);
    assert!(shown.contains(&occurred), "{shown}");
    let view = ok(db, &["customer", "view", &code]);
    assert!(view.contains(&occurred), "{view}");
    ok(db, &["customer", "delete", &code]);
    let bin: serde_json::Value =
        serde_json::from_str(&ok(db, &["--json", "customer", "list", "--deleted"])).expect("json");
    assert_eq!(bin["total"], 1);
    ok(db, &["customer", "restore", &code]);
    // Organisation admin.
    ok(db, &["dept", "add", "西南大区", "--parent", "销售部"]);
    ok(
        db,
        &[
            "user",
            "add",
            "tangseng",
            "唐僧",
            "--dept",
            "西南大区",
            "--role",
            "销售",
            "--superior",
            "chenjing",
        ],
    );
    assert!(fails(db, &["--as", "tangseng", "user", "add", "x", "X"]).contains("forbidden"));
    // A user reads as a table of names; JSON only with --json.
    let shown = ok(db, &["user", "show", "tangseng"]);
    for part in ["西南大区", "chenjing", "销售", "唐僧"] {
        assert!(shown.contains(part), "{part}: {shown}");
    }
    assert!(!shown.trim_start().starts_with('{'), "{shown}");
    assert_eq!(
        json(db, &["user", "show", "tangseng"])["username"],
        "tangseng"
    );
    // A group's members are replaced.
    let groups = json(db, &["group", "list"]);
    let group = groups[0]["name"].as_str().expect("group").to_string();
    let out = ok(db, &["group", "edit", &group, "wangfang", "tangseng"]);
    assert!(out.contains("2 members"), "{out}");
    assert!(out.contains("唐僧"), "{out}");
    let groups = json(db, &["group", "list"]);
    let tangseng = json(db, &["user", "show", "tangseng"])["id"].clone();
    assert_eq!(groups[0]["members"].as_array().map(Vec::len), Some(2));
    assert!(
        groups[0]["members"]
            .as_array()
            .expect("members")
            .contains(&tangseng)
    );
    assert!(fails(db, &["group", "edit", "没有这个组", "wangfang"]).contains("no user group"));
    assert!(fails(db, &["group", "edit", &group, "nobody"]).contains("not found"));
    // A record is shared with a group member by member.
    assert!(fails(db, &["--as", "tangseng", "customer", "show", &code]).contains("not found"));
    let shared = ok(db, &["customer", "share", &code, "--group", &group]);
    assert!(
        shared.contains("shared with 王芳: 1 done") && shared.contains("shared with 唐僧: 1 done"),
        "{shared}"
    );
    let seen = json(db, &["--as", "tangseng", "customer", "show", &code]);
    assert_eq!(seen["code"], code.as_str());
    assert!(
        fails(db, &["customer", "share", &code, "--group", "没有这个组"]).contains("no user group")
    );
    assert!(fails(db, &["customer", "share", &code]).contains("--with"));
    // A command line the parser refuses gets one line naming the problem.
    assert!(
        fails(db, &["pool", "rule-edit", "x", "--off", "--on"]).contains("cannot be used with")
    );
    assert!(fails(db, &["contract", "list", "--page", "0"]).contains("'--page"));
    assert!(fails(db, &["customer", "frobnicate"]).contains("frobnicate"));
    assert!(
        fails(db, &["approval", "show"]).contains("<KEY>"),
        "the missing argument named"
    );
    // Emptying a group is said in so many words.
    assert!(fails(db, &["group", "edit", &group]).contains("`none` to empty the group"));
    assert!(ok(db, &["group", "edit", &group, "none"]).contains("0 members"));
    // Roles and groups are deleted; a role only once nobody holds it.
    ok(db, &["role", "add", "实习", "--perm", "customer:read:own"]);
    // Editing the field rules keeps the grants, and the other way round.
    ok(
        db,
        &["role", "edit", "实习", "--field", "customer.phone=masked"],
    );
    let roles = json(db, &["role", "list"]);
    let role = roles
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "实习"))
        .cloned()
        .expect("the role");
    assert_eq!(
        role["permissions"].as_array().map(Vec::len),
        Some(1),
        "{role}"
    );
    assert_eq!(
        role["field_rules"].as_array().map(Vec::len),
        Some(1),
        "{role}"
    );
    ok(db, &["role", "edit", "实习", "--field", "none"]);
    let roles = json(db, &["role", "list"]);
    let role = roles
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "实习"))
        .cloned()
        .expect("the role");
    assert_eq!(
        role["permissions"].as_array().map(Vec::len),
        Some(1),
        "{role}"
    );
    assert_eq!(
        role["field_rules"].as_array().map(Vec::len),
        Some(0),
        "{role}"
    );
    assert!(fails(db, &["role", "edit", "实习"]).contains("nothing to change"));
    ok(db, &["user", "edit", "tangseng", "--role", "实习"]);
    let held = fails(db, &["role", "delete", "实习"]);
    assert!(held.contains("still held by 1 user (tangseng)"), "{held}");
    ok(db, &["user", "edit", "tangseng", "--role", "销售"]);
    assert!(ok(db, &["role", "delete", "实习"]).contains("deleted role 实习"));
    assert!(!ok(db, &["role", "list"]).contains("实习"));
    assert!(fails(db, &["role", "delete", "实习"]).contains("not found"));
    assert!(ok(db, &["group", "delete", &group]).contains(&format!("deleted group {group}")));
    assert!(
        json(db, &["group", "list"])
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    assert!(fails(db, &["group", "delete", &group]).contains("no user group"));
    // A choice field's options are shown without options, set with them.
    let opts = ok(db, &["field", "options", "customer", "category"]);
    assert!(opts.contains("VIP"), "{opts}");
    // An option the demo's customers hold is not removed.
    let held = fails(
        db,
        &["field", "options", "customer", "category", "潜在,VIP,战略"],
    );
    assert!(
        held.contains("option '普通'") && held.contains("still held"),
        "{held}"
    );
    let kept = "潜在,普通,VIP,代理,合作,分销商,战略";
    ok(db, &["field", "options", "customer", "category", kept]);
    let list = json(db, &["field", "options", "customer", "category"]);
    assert_eq!(
        list["options"],
        serde_json::json!(kept.split(',').collect::<Vec<_>>())
    );
    // A list set since the version read is not overwritten.
    let stale = (list["version"].as_i64().expect("version") - 1).to_string();
    assert!(
        fails(
            db,
            &[
                "field",
                "options",
                "customer",
                "category",
                "甲,乙",
                "--version",
                &stale
            ]
        )
        .contains("customer.category"),
    );
    assert_eq!(
        json(db, &["field", "options", "customer", "category"])["options"],
        list["options"]
    );
    assert!(fails(db, &["field", "options", "customer", "name"]).contains("not a choice field"));
    ok(
        db,
        &[
            "field",
            "add",
            "customer",
            "erp_code",
            "ERP编码",
            "--type",
            "text",
            "--unique",
        ],
    );
    ok(db, &["customer", "edit", &code, "erp_code=E-1"]);
    let by_custom: serde_json::Value = serde_json::from_str(&ok(
        db,
        &["--json", "customer", "list", "-w", "custom.erp_code=E-1"],
    ))
    .expect("json");
    assert_eq!(by_custom["total"], 1);
    assert!(fails(db, &["customer", "list", "-w", "nonsense"]).contains("condition"));
    let events: serde_json::Value =
        serde_json::from_str(&ok(db, &["--json", "events", "pending", "--limit", "1000"]))
            .expect("json");
    assert!(events.as_array().map(Vec::len).unwrap_or(0) > 20);
    // Search keys are current: a rebuild looks at every row and changes none.
    let rebuilt: serde_json::Value =
        serde_json::from_str(&ok(db, &["--json", "rebuild-search-keys"])).expect("json");
    assert_eq!(rebuilt["updated"], 0, "{rebuilt}");
    assert!(rebuilt["rows"].as_u64().unwrap_or(0) > 12, "{rebuilt}");
    assert!(
        fails(db, &["--as", "zhangwei", "rebuild-search-keys"]).contains("administrators only")
    );
    let me = ok(
        db,
        &["--password", "Demo#2026", "--as", "zhangwei", "whoami"],
    );
    assert!(me.starts_with("张伟 (zhangwei), company DEMO "), "{me}");
    let who = json(db, &["whoami"]);
    assert_eq!(who["company"]["code"], "DEMO", "{who}");
    assert!(
        !me.contains(who["user"]["company_id"].as_str().expect("id")),
        "{me}"
    );
    assert!(
        fails(db, &["--password", "wrong", "--as", "zhangwei", "whoami"])
            .contains("authentication failed")
    );
    // Setting a password: the new one is the argument, not a login.
    ok(db, &["user", "passwd", "liuyang", "Neu#Pass2026"]);
    let me = ok(
        db,
        &["--password", "Neu#Pass2026", "--as", "liuyang", "whoami"],
    );
    assert!(me.contains("(liuyang)"), "{me}");
    let admin = ok(db, &["--password", "Demo#2026", "whoami"]);
    assert!(admin.contains("(admin)"), "{admin}");
    assert!(fails(db, &["customer", "list", "--sort", "-"]).contains("name a field to sort by"));
    // Field kinds read as words, with their values.
    let fields = ok(db, &["field", "list", "customer"]);
    assert!(
        fields.contains("one of: enterprise 企业客户") && !fields.contains("Enum("),
        "{fields}"
    );
    pools_admin(db);
}

/// A pool's settings and rules are changed, switched off and on, and
/// removed, from the terminal.
fn pools_admin(db: &str) {
    ok(
        db,
        &[
            "pool",
            "add",
            "测试公海",
            "--admin",
            "chenjing",
            "--dept",
            "华北大区",
            "--cap",
            "5",
            "--max-daily",
            "4",
            "--warn",
            "2",
        ],
    );
    // Limits read as words in tables, as fields with --json.
    let listed = ok(db, &["pool", "list"]);
    assert!(
        listed.contains("每人上限 5, 每日领取 4, 回收前 2 天提醒"),
        "{listed}"
    );
    assert!(!listed.contains("max_owned_per_user"), "{listed}");
    let pools = json(db, &["pool", "list"]);
    let test_pool = pools
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "测试公海"))
        .expect("the new pool listed");
    assert_eq!(test_pool["limits"]["max_claims_per_day"], 4, "{test_pool}");
    ok(
        db,
        &[
            "pool",
            "rule",
            "测试公海",
            "--kind",
            "no_follow_up",
            "--days",
            "10",
            "--level",
            "A=20",
        ],
    );
    let shown = json(db, &["pool", "show", "测试公海"]);
    let rule = shown["rules"][0]["id"]
        .as_str()
        .expect("rule id")
        .to_string();
    assert!(ok(db, &["pool", "show", "测试公海"]).contains(&format!("rule {rule}")));
    // Edit: what is not given stays.
    ok(
        db,
        &[
            "pool",
            "edit",
            "测试公海",
            "--name",
            "华北测试公海",
            "--cooldown",
            "3",
            "--deals-count",
        ],
    );
    let shown = ok(db, &["pool", "show", "华北测试公海"]);
    assert!(
        shown
            .contains("限制: 每人上限 5, 成交客户计入上限, 每日领取 4, 冷却 3 天, 回收前 2 天提醒"),
        "{shown}"
    );
    assert!(!shown.contains('{'), "{shown}");
    let p = json(db, &["pool", "show", "华北测试公海"])["pool"].clone();
    assert_eq!(p["limits"]["reclaim_cooldown_days"], 3, "{p}");
    assert_eq!(p["limits"]["max_owned_per_user"], 5, "{p}");
    assert_eq!(p["limits"]["warn_days"], 2, "{p}");
    assert_eq!(p["limits"]["deals_count_toward_cap"], true, "{p}");
    assert_eq!(p["admins"].as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p["member_departments"].as_array().map(Vec::len), Some(1));
    ok(
        db,
        &[
            "pool",
            "edit",
            "华北测试公海",
            "--cap",
            "none",
            "--member",
            "zhangwei",
            "--deals-count",
            "false",
        ],
    );
    let shown = ok(db, &["pool", "show", "华北测试公海"]);
    assert!(
        shown.contains("限制: 每日领取 4, 冷却 3 天, 回收前 2 天提醒"),
        "{shown}"
    );
    let p = json(db, &["pool", "show", "华北测试公海"])["pool"].clone();
    assert!(p["limits"]["max_owned_per_user"].is_null(), "{p}");
    assert_eq!(p["limits"]["deals_count_toward_cap"], false, "{p}");
    assert_eq!(p["limits"]["reclaim_cooldown_days"], 3, "{p}");
    assert_eq!(p["member_users"].as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p["member_departments"].as_array().map(Vec::len), Some(1));
    assert!(fails(db, &["pool", "edit", "华北测试公海", "--cap", "x"]).contains("--cap"));
    assert!(fails(db, &["pool", "edit", "没有", "--cap", "1"]).contains("not found"));
    // A rule is switched off and back on, keeping its days.
    let at = (chrono::Utc::now() + chrono::Duration::days(40))
        .format("%Y-%m-%d")
        .to_string();
    let sweep = [
        "pool",
        "sweep",
        "--dry-run",
        "--at",
        &at,
        "--pool",
        "华北测试公海",
    ];
    assert!(ok(db, &sweep).contains("no follow-up for 10 days"));
    let off = ok(db, &["pool", "rule-edit", &rule, "--off"]);
    assert!(off.contains("(off)"), "{off}");
    assert!(ok(db, &["pool", "show", "华北测试公海"]).contains("(off)"));
    let dry = ok(db, &sweep);
    assert!(!dry.contains("no follow-up for"), "{dry}");
    let r = json(db, &["pool", "rule-edit", &rule, "--on", "--days", "15"]);
    assert_eq!(r["enabled"], true, "{r}");
    assert_eq!(r["days"], 15, "{r}");
    assert_eq!(r["level_days"]["A"], 20, "{r}");
    assert!(!ok(db, &["pool", "show", "华北测试公海"]).contains("(off)"));
    assert!(ok(db, &sweep).contains("no follow-up for 15 days"));
    let r = json(
        db,
        &[
            "pool",
            "rule-edit",
            &rule,
            "--level",
            "none",
            "--exempt-deals",
        ],
    );
    assert_eq!(r["level_days"], serde_json::json!({}), "{r}");
    assert_eq!(r["exempt_deals"], true, "{r}");
    assert!(fails(db, &["pool", "rule-edit", "nonsense", "--on"]).contains("not a rule id"));
    assert!(
        fails(
            db,
            &["--as", "zhangwei", "pool", "rule-edit", &rule, "--off"]
        )
        .starts_with("error: ")
    );
    // Removal: the rule, then the empty pool.
    assert!(ok(db, &["pool", "rule-delete", &rule]).contains("removed"));
    let shown = json(db, &["pool", "show", "华北测试公海"]);
    assert_eq!(shown["rules"], serde_json::json!([]), "{shown}");
    assert!(fails(db, &["pool", "rule-delete", &rule]).contains("not found"));
    assert!(
        fails(db, &["--as", "zhangwei", "pool", "delete", "华北测试公海"]).starts_with("error: ")
    );
    assert!(ok(db, &["pool", "delete", "华北测试公海"]).contains("deleted pool"));
    assert_eq!(json(db, &["pool", "list"]), serde_json::json!([]));
    assert!(fails(db, &["pool", "show", "华北测试公海"]).contains("not found"));
}

#[test]
fn cli_walkthrough_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("crm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("cli.db");
    let _ = std::fs::remove_file(&db);
    walk_through(db.to_str().expect("path"));
    // A mistyped --db names no database: refused, and no empty file left
    // behind (only `init` and `demo` create one).
    assert!(fails("/nonexistent-dir/x.db", &["customer", "list"]).contains("there is no database"));
    let typo = dir.join("clii.db");
    let m = fails(typo.to_str().expect("path"), &["customer", "list"]);
    assert!(
        m.contains("there is no database at") && m.contains("init"),
        "{m}"
    );
    assert!(!typo.exists(), "no file made by a mistyped --db");
    assert!(
        fails(
            "/nonexistent-dir/x.db",
            &["init", "--name", "甲", "--code", "JIA"]
        )
        .contains("cannot open")
    );
    // A reader that went away (`crm customer list | head -1`) ends the CLI
    // quietly with success instead of a panic on the closed pipe.
    for args in [
        &["customer", "list"][..],
        &["--json", "customer", "list"][..],
    ] {
        let mut child = std::process::Command::new(common::cli())
            .arg("--db")
            .arg(&db)
            .args(args)
            .env_remove("CRM_USER")
            .env_remove("CRM_PASSWORD")
            .env_remove("CRM_COMPANY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the CLI");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "crm {args:?}: {stderr}");
        assert!(stderr.is_empty(), "crm {args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_walkthrough_on_postgres() {
    common::on_postgres("cli", walk_through);
    // A mistyped schema names no database: refused, and not made (a
    // second try is refused alike, and the library finds no schema).
    let base = std::env::var("CRM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let schema = format!("crm_typo_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    for _ in 0..2 {
        let m = fails(&url, &["customer", "list"]);
        assert!(m.contains("there is no database at"), "{m}");
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let made = rt
        .block_on(crm::postgres::PgStore::schema_exists(&base, &schema))
        .expect("look");
    assert!(!made, "no schema made by a mistyped --db");
}

/// Pools, the sweep's dry run with its explanation, duplicates, merge, the
/// 360° view and a batch on a filter, from the terminal.
#[test]
fn cli_pools_and_duplicates_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("crm-cli-pools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db_path = dir.join("pools.db");
    let _ = std::fs::remove_file(&db_path);
    let db = db_path.to_str().expect("path");
    ok(db, &["demo"]);
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(db, &all)).expect("json")
    };
    ok(
        db,
        &[
            "pool",
            "add",
            "华北公海",
            "--admin",
            "chenjing",
            "--dept",
            "华北大区",
            "--cooldown",
            "7",
            "--warn",
            "3",
        ],
    );
    ok(
        db,
        &[
            "pool",
            "rule",
            "华北公海",
            "--kind",
            "no_follow_up",
            "--days",
            "10",
            "--level",
            "A=20",
        ],
    );
    // The dry run explains per customer which rule fires and when.
    let at = (chrono::Utc::now() + chrono::Duration::days(40))
        .format("%Y-%m-%d")
        .to_string();
    let dry = ok(db, &["pool", "sweep", "--dry-run", "--at", &at]);
    assert!(dry.contains("would recycle"), "{dry}");
    assert!(dry.contains("no follow-up for 10 days"), "{dry}");
    let dry = json(&["pool", "sweep", "--dry-run", "--at", &at]);
    assert_eq!(dry["dry_run"], true);
    assert!(
        dry["recycled"].as_array().map(Vec::len).unwrap_or(0) >= 6,
        "{dry}"
    );
    assert_eq!(json(&["--as", "zhangwei", "customer", "list"])["total"], 3);
    let mine = json(&["--as", "zhangwei", "customer", "list"]);
    let first = mine["items"][0]["code"].as_str().expect("code").to_string();
    let why = ok(db, &["pool", "explain", &first, "--at", &at]);
    assert!(why.contains("fires"), "{why}");
    // Import into the pool, claim, release with a reason, cooldown.
    ok(
        db,
        &[
            "pool",
            "import",
            "华北公海",
            "--row",
            "name=命令行公海有限公司,phone=010-88886666",
        ],
    );
    let pool = json(&["--as", "zhangwei", "pool", "customers", "华北公海"]);
    let code = pool["items"][0]["code"].as_str().expect("code").to_string();
    ok(db, &["--as", "zhangwei", "pool", "claim", &code]);
    ok(
        db,
        &[
            "--as",
            "zhangwei",
            "pool",
            "release",
            &code,
            "--reason",
            "暂无需求",
        ],
    );
    assert!(
        fails(db, &["--as", "zhangwei", "pool", "claim", &code]).contains("nothing was claimed")
    );
    let history = ok(db, &["pool", "history", &code]);
    assert!(history.contains("暂无需求"), "{history}");
    // Duplicates: a phone shared with a demo customer is reported, then merged.
    let added = json(&[
        "--as",
        "zhangwei",
        "customer",
        "add",
        "name=华信智联北京分部",
        "phone=010-62345678",
    ]);
    let dup = added["code"].as_str().expect("code").to_string();
    let report = ok(db, &["customer", "dupes"]);
    assert!(report.contains("same phone"), "{report}");
    let hx = json(&["customer", "list", "-w", "name=北京华信智联科技有限公司"]);
    let hx = hx["items"][0]["code"].as_str().expect("code").to_string();
    let merged = ok(
        db,
        &[
            "customer",
            "merge",
            &hx,
            &dup,
            "--take",
            &format!("name={hx}"),
        ],
    );
    assert!(merged.contains("merged 1 customers"), "{merged}");
    assert!(ok(db, &["customer", "dupes"]).contains("0 duplicate groups"));
    let view = ok(db, &["customer", "view", &hx]);
    assert!(view.contains("contacts (2)"), "{view}");
    // A batch on a filter, reported per record.
    let moved = ok(
        db,
        &[
            "--as",
            "chenjing",
            "customer",
            "transfer",
            "--where",
            "city=北京",
            "--to",
            "wangfang",
        ],
    );
    assert!(moved.contains("transferred: 1 done"), "{moved}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A role granting nothing on customers does not lift another role's
/// field rule, and `whoami` shows the rules that apply with their roles.
#[test]
fn cli_field_rules_hold_across_roles_and_whoami_shows_them() {
    let dir = std::env::temp_dir().join(format!("crm-cli-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("cli.db");
    let _ = std::fs::remove_file(&db);
    let db = db.to_str().expect("path");
    ok(db, &["demo"]);
    ok(
        db,
        &[
            "role",
            "add",
            "销售受限",
            "--perm",
            "customer:read:all",
            "--field",
            "customer.phone=masked",
        ],
    );
    ok(
        db,
        &["role", "add", "仅跟进", "--perm", "follow_up:read:own"],
    );
    ok(
        db,
        &[
            "user",
            "edit",
            "zhangwei",
            "--role",
            "销售受限",
            "--role",
            "仅跟进",
        ],
    );
    let who = ok(db, &["--as", "zhangwei", "whoami"]);
    assert!(
        who.contains("phone") && who.contains("masked") && who.contains("(销售受限)"),
        "{who}"
    );
    let list = json(db, &["--as", "zhangwei", "customer", "list"]);
    let phones: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["fields"]["phone"].as_str())
        .collect();
    assert!(!phones.is_empty(), "{list}");
    assert!(phones.iter().all(|p| p.contains('*')), "{phones:?}");
    // A customer saved with a phone another customer holds (the demo's
    // setting warns about phones) is saved, and the user is warned, told
    // which customer when they may see it.
    let (code, phone) = {
        let all = json(db, &["customer", "list"]);
        let first = &all["items"][0];
        (
            first["code"].as_str().expect("code").to_string(),
            first["fields"]["phone"]
                .as_str()
                .expect("phone")
                .to_string(),
        )
    };
    let out = run(
        db,
        &[
            "customer",
            "add",
            "name=重复电话测试",
            &format!("phone={phone}"),
        ],
    );
    assert!(out.status.success());
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        warned.contains("possible duplicate") && warned.contains(&code),
        "{warned}"
    );
    // A user's records follow them to another department and back; the
    // history names the departments, also one deleted since.
    ok(db, &["dept", "add", "临时部门", "--parent", "销售部"]);
    let theirs = json(db, &["customer", "list", "-w", "owner_id=zhangwei"])["items"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    ok(db, &["user", "edit", "zhangwei", "--dept", "临时部门"]);
    let shown = json(db, &["customer", "show", &theirs]);
    let temp_dept = shown["department_id"]
        .as_str()
        .expect("department")
        .to_string();
    ok(db, &["user", "edit", "zhangwei", "--dept", "华北大区"]);
    ok(db, &["dept", "delete", "临时部门"]);
    let history = ok(db, &["customer", "history", &theirs]);
    assert!(
        history.contains("临时部门") && !history.contains(&temp_dept),
        "{history}"
    );
    // Deactivating a user who still owns customers says so, and how to
    // hand them over.
    let out = run(db, &["user", "edit", "wangfang", "--deactivate"]);
    assert!(out.status.success());
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("still owns") && note.contains("customer transfer"),
        "{note}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
