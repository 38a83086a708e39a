//! The example CLI end to end: demo data, lists, edits and clear one-line
//! errors with a non-zero exit, on SQLite and on PostgreSQL.

mod common;

use common::{fails, ok};

fn walk_through(db: &str) {
    let out = ok(db, &["demo"]);
    assert!(out.contains("12 customers"), "{out}");
    assert!(fails(db, &["demo"]).contains("exists already"));
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
    let mine: serde_json::Value =
        serde_json::from_str(&ok(db, &["--json", "--as", "zhangwei", "customer", "list"]))
            .expect("json");
    assert_eq!(mine["total"], 3);
    let masked = ok(db, &["--as", "liuyang", "contact", "list"]);
    assert!(masked.contains("****"), "{masked}");
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
    ok(
        db,
        &["--password", "Demo#2026", "--as", "zhangwei", "whoami"],
    );
    assert!(
        fails(db, &["--password", "wrong", "--as", "zhangwei", "whoami"])
            .contains("authentication failed")
    );
}

#[test]
fn cli_walkthrough_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("crm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("cli.db");
    let _ = std::fs::remove_file(&db);
    walk_through(db.to_str().expect("path"));
    assert!(fails("/nonexistent-dir/x.db", &["customer", "list"]).contains("cannot open"));
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
    let base = std::env::var("CRM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let schema = format!("crm_cli_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    walk_through(&url);
    // Clean up the schema through the store.
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
