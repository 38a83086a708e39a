//! The example CLI walks a deal from opportunity to quote to approved
//! contract to collected payment, on SQLite and on PostgreSQL.

mod common;

use common::{fails, json, ok};

fn deal(db: &str) {
    ok(db, &["demo"]);
    assert!(ok(db, &["sales-setup"]).contains("contract, quote"));
    ok(
        db,
        &[
            "product",
            "add",
            "--code",
            "SV-2288",
            "--name",
            "机架式服务器",
            "--price",
            "35000",
            "--unit",
            "台",
        ],
    );
    let zw = ["--as", "zhangwei"];
    let with =
        |extra: &[&str]| -> Vec<String> { zw.iter().chain(extra).map(|s| s.to_string()).collect() };
    let call = |extra: &[&str]| {
        let args = with(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        json(db, &refs)
    };
    let o = call(&[
        "opportunity",
        "add",
        "--customer",
        "北京华信智联科技有限公司",
        "--name",
        "数据中心扩容",
        "--amount",
        "100000",
        "--close",
        "2027-01-31",
    ]);
    let opp = o["code"].as_str().expect("code").to_string();
    call(&["opportunity", "stage", &opp, "--to", "assessment"]);
    let q = call(&[
        "quote",
        "add",
        "--customer",
        "北京华信智联科技有限公司",
        "--title",
        "华信服务器报价",
        "--opportunity",
        &opp,
        "--line",
        "SV-2288:3:15",
        "--line",
        "实施服务:1:10000.01:6",
    ]);
    assert_eq!(q["totals"]["amount"]["minor"], 9_925_001);
    assert_eq!(q["amount_capital"], "玖万玖仟贰佰伍拾元零壹分");
    let quote = q["code"].as_str().expect("code").to_string();
    let s = call(&["quote", "submit", &quote]);
    assert_eq!(s["quote"]["status"], "pending_approval");
    // The sales manager approves the 15 % discount.
    let pending = json(db, &["--as", "chenjing", "approval", "pending"]);
    assert_eq!(pending.as_array().map(Vec::len), Some(1));
    ok(db, &["--as", "chenjing", "approval", "approve", &quote]);
    let c = call(&["quote", "contract", &quote, "--end", "2027-06-30"]);
    let contract = c["code"].as_str().expect("code").to_string();
    assert_eq!(c["status"], "draft");
    // The contract is approved by the superior, then collected.
    let s = call(&["contract", "submit", &contract]);
    assert_eq!(s["contract"]["status"], "pending_approval");
    fails(db, &["--as", "wangfang", "approval", "approve", &contract]);
    ok(db, &["--as", "chenjing", "approval", "approve", &contract]);
    call(&[
        "contract",
        "plan",
        &contract,
        "--instalment",
        "2026-12-31:50000",
        "--instalment",
        "2027-03-31:49250.01",
    ]);
    let p = call(&["contract", "pay", &contract, "--amount", "30000"]);
    assert_eq!(p["contract"]["received"]["minor"], 3_000_000);
    let args = with(&["contract", "pay", &contract, "--amount", "70000"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(fails(db, &refs).contains("overpayment"));
    let p = call(&["contract", "pay", &contract, "--amount", "69250.01"]);
    assert_eq!(p["contract"]["outstanding"]["minor"], 0);
    let d = call(&[
        "contract", "deliver", &contract, "--line", "1:3", "--line", "2:1",
    ]);
    assert_eq!(d[0]["remaining"], 0);
    let args = with(&["contract", "deliver", &contract, "--line", "1:1"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(fails(db, &refs).contains("still to deliver"));
    let shown = call(&["contract", "show", &contract]);
    assert_eq!(shown["contract"]["status"], "executing");
    assert_eq!(shown["collection"]["received"]["minor"], 9_925_001);
    call(&["opportunity", "stage", &opp, "--win"]);
    let events = ok(db, &["events", "pending", "--limit", "200"]);
    for e in [
        "quote.approved",
        "contract.approved",
        "contract.payment_received",
        "opportunity.won",
    ] {
        assert!(events.contains(e), "{e} in {events}");
    }
    let rec = json(db, &["--as", "chenjing", "receivables"]);
    assert_eq!(rec.as_array().map(Vec::len), Some(0), "fully collected");
    #[cfg(feature = "xlsx")]
    export_contracts(db, &contract);
}

/// The contract list exported with the sales-list options and picked
/// columns: money cells are numbers in 元; options that do not apply are
/// refused by name.
#[cfg(feature = "xlsx")]
fn export_contracts(db: &str, contract: &str) {
    use calamine::{Data, Reader};
    use std::hash::{BuildHasher, RandomState};
    let file = std::env::temp_dir().join(format!(
        "crm-cli-contracts-{}-{:x}.xlsx",
        std::process::id(),
        RandomState::new().hash_one(db)
    ));
    let f = file.to_str().expect("path");
    let out = ok(
        db,
        &[
            "export",
            "contract",
            "-o",
            f,
            "--status",
            "executing",
            "--fields",
            "合同编号,合同金额,已回款,未回款",
        ],
    );
    assert!(out.starts_with("exported 1 "), "{out}");
    let mut wb = calamine::open_workbook_auto(&file).expect("workbook");
    let range = wb.worksheet_range_at(0).expect("sheet").expect("range");
    let rows: Vec<Vec<Data>> = range.rows().map(<[Data]>::to_vec).collect();
    let text = |s: &str| Data::String(s.into());
    assert_eq!(
        rows,
        vec![
            vec![
                text("合同编号"),
                text("合同金额"),
                text("已回款"),
                text("未回款")
            ],
            vec![
                text(contract),
                Data::Float(99_250.01),
                Data::Float(99_250.01),
                Data::Float(0.0)
            ],
        ]
    );
    let out = ok(db, &["export", "contract", "-o", f, "--unpaid"]);
    assert!(out.starts_with("exported 0 "), "{out}");
    // `sales-setup` gave the sellers the export of their own documents.
    let out = ok(db, &["--as", "zhangwei", "export", "contract", "-o", f]);
    assert!(out.starts_with("exported 1 "), "{out}");
    let out = ok(db, &["--as", "wangfang", "export", "contract", "-o", f]);
    assert!(out.starts_with("exported 0 "), "{out}");
    assert!(
        fails(db, &["export", "contract", "--stage", "x", "-o", f])
            .contains("--stage does not apply to contract exports")
    );
    assert!(
        fails(
            db,
            &["export", "contract", "--where", "status=draft", "-o", f]
        )
        .contains("--where does not apply")
    );
    assert!(
        fails(db, &["export", "customer", "--unpaid", "-o", f])
            .contains("--unpaid apply to opportunity, quote and contract exports only")
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn cli_sales_deal_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("crm-cli-sales-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("sales.db");
    let _ = std::fs::remove_file(&db);
    deal(db.to_str().expect("path"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_sales_deal_on_postgres() {
    let base = std::env::var("CRM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let schema = format!("crm_cli_sales_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    deal(&url);
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
