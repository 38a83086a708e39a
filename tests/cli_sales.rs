//! The example CLI walks a deal from opportunity to quote to approved
//! contract to collected payment, on SQLite and on PostgreSQL.

mod common;

use common::{days_from_today, fails, json, local_time, month_from_now, ok};

fn deal(db: &str) {
    ok(db, &["demo"]);
    assert!(ok(db, &["sales-setup"]).contains("contract, quote"));
    // Run again, it leaves the roles as they are (an administrator's later
    // changes stand).
    let again = json(db, &["sales-setup"]);
    assert_eq!(again["roles"], serde_json::json!([]), "{again}");
    assert!(
        again["roles_kept"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n == "销售")),
        "{again}"
    );
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
            "--cost",
            "21000",
            "--unit",
            "台",
        ],
    );
    // Sellers see the price, not the cost behind it.
    let p = json(db, &["--as", "zhangwei", "product", "show", "SV-2288"]);
    assert_eq!(p["cost"], serde_json::Value::Null, "{p}");
    assert_eq!(p["list_price"]["minor"], 3_500_000, "{p}");
    let p = json(db, &["product", "show", "SV-2288"]);
    assert_eq!(p["cost"]["minor"], 2_100_000, "{p}");
    let zw = ["--as", "zhangwei"];
    let with =
        |extra: &[&str]| -> Vec<String> { zw.iter().chain(extra).map(|s| s.to_string()).collect() };
    let call = |extra: &[&str]| {
        let args = with(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        json(db, &refs)
    };
    // The deal's dates, from today: it closes in some weeks, the contract
    // runs some months and is paid in two instalments before its end.
    let close = days_from_today(55);
    let end = days_from_today(205);
    let first = format!("{}:50000", days_from_today(24));
    let second = format!("{}:49250.01", days_from_today(114));
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
        &close,
    ]);
    let opp = o["code"].as_str().expect("code").to_string();
    call(&["opportunity", "stage", &opp, "--to", "assessment"]);
    // The stage history: each visit, entered when (local time) and by whom.
    let shown = call(&["opportunity", "show", &opp]);
    let history = shown["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{shown}");
    let human = ok(db, &["--as", "zhangwei", "opportunity", "show", &opp]);
    for (n, visit) in history.iter().enumerate() {
        let entered = local_time(
            visit["entered_at"].as_str().expect("time"),
            "%Y-%m-%d %H:%M",
        );
        let stage = match visit["stage"].as_str().expect("stage") {
            "assessment" => "立项评估 (assessment)".to_string(),
            other => format!("({other})"),
        };
        let line = format!("  {entered} ");
        let line = human
            .lines()
            .find(|l| l.starts_with(&line) && l.contains(&stage))
            .unwrap_or_else(|| panic!("visit {n}: {line}…{stage} in {human}"));
        assert!(line.contains(&format!("{stage} by 张伟")), "{line}");
    }
    assert!(human.contains("stage history:"), "{human}");
    assert!(human.contains(", left "), "{human}");
    assert!(
        human.contains("time per stage:\n  ") && human.contains("立项评估 (assessment): "),
        "{human}"
    );
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
    // Percentages are read as percentages, not as money or basis points.
    for (line, says) in [
        ("SV-2288:1:33.333", "at most two decimals"),
        ("SV-2288:1:150", "between 0 and 100"),
        ("SV-2288:1:abc", "not a percentage"),
    ] {
        let e = fails(
            db,
            &[
                "quote",
                "add",
                "--customer",
                "北京华信智联科技有限公司",
                "--title",
                "错误折扣",
                "--line",
                line,
            ],
        );
        assert!(e.contains(says), "{line}: {e}");
    }
    assert_eq!(q["amount_capital"], "玖万玖仟贰佰伍拾元零壹分");
    let quote = q["code"].as_str().expect("code").to_string();
    let s = call(&["quote", "submit", &quote]);
    assert_eq!(s["quote"]["status"], "pending_approval");
    // The sales manager approves the 15 % discount.
    let pending = json(db, &["--as", "chenjing", "approval", "pending"]);
    assert_eq!(pending.as_array().map(Vec::len), Some(1));
    ok(db, &["--as", "chenjing", "approval", "approve", &quote]);
    let c = call(&["quote", "contract", &quote, "--end", &end]);
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
        &first,
        "--instalment",
        &second,
    ]);
    // The plan's amounts read in 元 in the contract's history.
    let h = ok(db, &["--as", "zhangwei", "contract", "history", &contract]);
    assert!(
        h.contains("payment_plan") && h.contains("¥49,250.01") && !h.contains("4925001"),
        "{h}"
    );
    let p = call(&["contract", "pay", &contract, "--amount", "30000"]);
    assert_eq!(p["contract"]["received"]["minor"], 3_000_000);
    let args = with(&["contract", "pay", &contract, "--amount", "70000"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(fails(db, &refs).contains("overpayment"));
    let p = call(&["contract", "pay", &contract, "--amount", "69250.01"]);
    assert_eq!(p["contract"]["outstanding"]["minor"], 0);
    // A payment recorded by mistake is voided by its number in `contract
    // show`, with a reason, and recorded again.
    let args = with(&["contract", "void-payment", &contract, "1", "--reason", ""]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(fails(db, &refs).contains("reason"));
    let v = call(&[
        "contract",
        "void-payment",
        &contract,
        "1",
        "--reason",
        "金额录错",
    ]);
    assert_eq!(v["payment"]["status"], "voided");
    assert_eq!(v["contract"]["outstanding"]["minor"], 3_000_000);
    let shown = ok(db, &["--as", "zhangwei", "contract", "show", &contract]);
    assert!(
        shown.contains("回款 #1") && shown.contains("已作废: 金额录错"),
        "{shown}"
    );
    let shown = call(&["contract", "show", &contract]);
    assert_eq!(
        shown["collection"]["payments"][0]["void_reason"], "金额录错",
        "{shown}"
    );
    let p = call(&[
        "contract",
        "pay",
        &contract,
        "--amount",
        "30000",
        "--receipt",
        "2",
    ]);
    assert_eq!(p["contract"]["outstanding"]["minor"], 0);
    // "2" is payment #2 and another payment's receipt number: asked, not
    // guessed.
    let args = with(&["contract", "void-payment", &contract, "2", "--reason", "r"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = fails(db, &refs);
    assert!(e.contains("ambiguous") && e.contains("#2"), "{e}");
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
    // The plans schedule the whole amount: nothing is left unplanned.
    assert_eq!(shown["collection"]["unplanned"]["minor"], 0);
    assert_eq!(shown["collection"]["unplanned_days_overdue"], 0);
    // Winning needs what every stage requires: the products too.
    let args = with(&["opportunity", "stage", &opp, "--win"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(fails(db, &refs).contains("requires products"));
    let o = call(&["opportunity", "edit", &opp, "--product", "SV-2288:3"]);
    assert_eq!(o["products"][0]["quantity"], 3);
    assert!(
        o["products"][0]["unit_price"]["minor"]
            .as_i64()
            .is_some_and(|p| p > 0)
    );
    let args = with(&["opportunity", "edit", &opp, "--product", "没有这个:1"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(fails(db, &refs).contains("needs a price"));
    call(&["opportunity", "stage", &opp, "--win"]);
    // The customer's 360° view: a line per document, payment and invoice,
    // with code, title, status and amount in 元.
    let customer = o["customer_id"].as_str().expect("customer");
    let view = ok(db, &["--as", "zhangwei", "customer", "view", customer]);
    for line in [
        format!("  {opp} 数据中心扩容 · 成功 "),
        format!("  {quote} v1 华信服务器报价 · 已转合同 · ¥99,250.01"),
        format!(
            "  {contract} 华信服务器报价 · 执行中 · ¥99,250.01 (received ¥99,250.01, outstanding ¥0.00)"
        ),
    ] {
        assert!(view.contains(&line), "{line} in {view}");
    }
    // The payments, by their contract's code.
    for paid in ["已确认 · ¥69,250.01", "已确认 · ¥30,000.00"] {
        assert!(
            view.lines()
                .any(|l| l.starts_with(&format!("  {contract} ")) && l.ends_with(paid)),
            "{paid} in {view}"
        );
    }
    let v = call(&["customer", "view", customer]);
    assert_eq!(v["sections"]["quotes"]["total"], 1, "{v}");
    // (The voided payment stays, marked.)
    assert_eq!(v["sections"]["payments"]["total"], 3, "{v}");
    assert_eq!(
        v["sections"]["contracts"]["items"][0]["fields"]["received"]["minor"],
        9_925_001
    );
    let events = ok(db, &["events", "pending", "--limit", "200"]);
    for e in [
        "quote.approved",
        "contract.approved",
        "contract.payment_received",
        "opportunity.won",
    ] {
        assert!(events.contains(e), "{e} in {events}");
    }
    // Events name their record by the code the payload carries, else by id.
    assert!(events.contains(&opp), "{opp} in {events}");
    assert!(events.contains(&contract), "{contract} in {events}");
    let listed = json(db, &["events", "pending", "--limit", "200"]);
    let listed = listed.as_array().expect("events");
    // (What the table names an event's record by: a code, a username, a
    // name.)
    let code_of = |e: &serde_json::Value| {
        let p = &e["payload"];
        ["code", "document_code", "username", "name", "contract_code"]
            .iter()
            .find_map(|k| p[*k].as_str().map(str::to_string))
    };
    let with_code = listed
        .iter()
        .find(|e| e["event_type"] == "opportunity.won")
        .expect("opportunity.won listed");
    assert_eq!(code_of(with_code).as_deref(), Some(opp.as_str()));
    let opp_id = with_code["record_id"].as_str().expect("id");
    assert!(!events.contains(opp_id), "the code, not the id: {events}");
    let without = listed
        .iter()
        .find(|e| code_of(e).is_none())
        .expect("an event without a code");
    let id = without["record_id"].as_str().expect("id");
    assert!(events.contains(id), "{id} in {events}");
    let rec = json(db, &["--as", "chenjing", "receivables"]);
    assert_eq!(rec.as_array().map(Vec::len), Some(0), "fully collected");
    #[cfg(feature = "xlsx")]
    export_contracts(db, &contract);
    follow_on(db, &opp, &contract);
    leave_requests(db, &contract);
    edits_hold_to_the_version_read(db);
}

/// `opportunity edit`, `contract edit` and `product edit` take the version
/// read (`--version`, as record edits do): an edit made on a version
/// someone changed since is refused, naming the versions, and changes
/// nothing; without it the edit applies to the record as it is now.
fn edits_hold_to_the_version_read(db: &str) {
    let zw = |args: &[&str]| {
        let mut all = vec!["--as", "zhangwei"];
        all.extend_from_slice(args);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, good: bool| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        if good {
            ok(db, &refs)
        } else {
            fails(db, &refs)
        }
    };
    let o = json(
        db,
        &[
            "--as",
            "zhangwei",
            "opportunity",
            "add",
            "--customer",
            "北京华信智联科技有限公司",
            "--name",
            "版本测试商机",
        ],
    );
    let opp = o["code"].as_str().expect("code").to_string();
    let read = o["version"].as_i64().expect("version").to_string();
    // Someone else edits it first; the edit made on the version read is
    // refused.
    run(zw(&["opportunity", "edit", &opp, "--notes", "先改"]), true);
    let e = run(
        zw(&[
            "opportunity",
            "edit",
            &opp,
            "--notes",
            "后改",
            "--version",
            &read,
        ]),
        false,
    );
    assert!(
        e.contains("changed by someone else") && e.contains(&format!("version {read}")),
        "{e}"
    );
    let o = json(db, &["--as", "zhangwei", "opportunity", "show", &opp]);
    assert!(
        o.to_string().contains("先改") && !o.to_string().contains("后改"),
        "{o}"
    );
    let c = json(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "add",
            "--customer",
            "北京华信智联科技有限公司",
            "--title",
            "版本测试合同",
            "--amount",
            "1000",
        ],
    );
    let contract = c["code"].as_str().expect("code").to_string();
    let read = c["version"].as_i64().expect("version").to_string();
    run(
        zw(&["contract", "edit", &contract, "--notes", "先改"]),
        true,
    );
    let e = run(
        zw(&[
            "contract",
            "edit",
            &contract,
            "--title",
            "后改",
            "--version",
            &read,
        ]),
        false,
    );
    assert!(
        e.contains("changed by someone else") && e.contains(&format!("version {read}")),
        "{e}"
    );
    let shown = json(db, &["--as", "zhangwei", "contract", "show", &contract]);
    assert_eq!(shown["contract"]["title"], "版本测试合同", "{shown}");
    let now = shown["contract"]["version"]
        .as_i64()
        .expect("version")
        .to_string();
    run(
        zw(&[
            "contract",
            "edit",
            &contract,
            "--title",
            "后改",
            "--version",
            &now,
        ]),
        true,
    );
    let p = json(db, &["product", "show", "SV-2288"]);
    let read = p["version"].as_i64().expect("version").to_string();
    let unit = p["unit"].clone();
    ok(db, &["product", "edit", "SV-2288", "--spec", "4U-版本测试"]);
    let e = fails(
        db,
        &[
            "product",
            "edit",
            "SV-2288",
            "--unit",
            "箱",
            "--version",
            &read,
        ],
    );
    assert!(
        e.contains("changed by someone else") && e.contains(&format!("version {read}")),
        "{e}"
    );
    let p = json(db, &["product", "show", "SV-2288"]);
    assert_eq!(
        (&p["unit"], &p["spec"]),
        (&unit, &serde_json::json!("4U-版本测试")),
        "{p}"
    );
}

/// A document type of the company's own: leave requests (请假条) go to the
/// superior, long ones then to an approver the applicant picks; they are
/// submitted, listed, shown, approved, rejected and resubmitted from the
/// command line. The generic submit refuses sales documents.
fn leave_requests(db: &str, contract: &str) {
    ok(
        db,
        &[
            "approval",
            "flow",
            "leave",
            "--name",
            "请假审批",
            "--step",
            "主管=superior:1",
            "--step",
            "复核=pick@type=long",
        ],
    );
    let a = zw_json(
        db,
        &[
            "approval",
            "submit",
            "leave",
            "--document",
            "QJ-001",
            "--title",
            "年假三天",
            "--type",
            "long",
            "--amount",
            "0",
            "--pick",
            "wangfang",
            "--comment",
            "家中有事",
        ],
    );
    assert_eq!(a["doc_type"], "leave", "{a}");
    assert_eq!(a["document_code"], "QJ-001", "{a}");
    assert_eq!(a["status"], "pending", "{a}");
    assert_eq!(a["current_step"], "主管", "{a}");
    let id = a["id"].as_str().expect("approval id").to_string();
    let said = zw(
        db,
        true,
        &[
            "approval",
            "submit",
            "leave",
            "--document",
            "QJ-002",
            "--title",
            "病假半天",
        ],
    );
    assert!(said.contains("for leave QJ-002: "), "{said}");
    assert!(said.contains("at 主管, waiting for 陈静"), "{said}");
    // A code names one leave request: another applicant's request under
    // it is refused, naming it, and makes no second approval.
    let taken = [
        "--as",
        "wangfang",
        "approval",
        "submit",
        "leave",
        "--document",
        "QJ-002",
        "--title",
        "调休",
    ];
    let e = fails(db, &taken);
    assert!(
        e.contains("leave QJ-002") && e.contains("only its applicant may resubmit it"),
        "{e}"
    );
    let shown = json(db, &["--as", "chenjing", "approval", "show", "QJ-002"]);
    assert_eq!(shown["approval"]["title"], "病假半天", "{shown}");
    // An administrator, neither its applicant nor an approver, finds it by
    // its code too.
    let shown = ok(db, &["approval", "show", "QJ-001"]);
    assert!(shown.contains("leave QJ-001 年假三天"), "{shown}");
    // Pending twice is refused.
    fails(
        db,
        &[
            "--as",
            "zhangwei",
            "approval",
            "submit",
            "leave",
            "--document",
            "QJ-001",
        ],
    );
    // The superior sees both, and approves the first by its id.
    let pending = ok(db, &["--as", "chenjing", "approval", "pending"]);
    for s in ["QJ-001", "年假三天", "QJ-002", "病假半天", &id] {
        assert!(pending.contains(s), "{s} in {pending}");
    }
    let a = json(db, &["--as", "chenjing", "approval", "approve", &id]);
    assert_eq!(a["status"], "pending", "{a}");
    assert_eq!(a["current_step"], "复核", "{a}");
    let shown = ok(db, &["--as", "wangfang", "approval", "show", &id]);
    assert!(shown.contains("leave QJ-001 年假三天"), "{shown}");
    assert!(shown.contains("家中有事"), "{shown}");
    assert!(shown.contains("陈静 approve 主管"), "{shown}");
    // The steps are numbered as `reject --to-step` takes them.
    assert!(shown.contains("step 1 主管 (passed)"), "{shown}");
    assert!(
        shown.contains("step 2 复核 (current, waiting for 王芳)"),
        "{shown}"
    );
    // A refresh finds nothing to change while its approvers are active.
    let r = json(db, &["--as", "wangfang", "approval", "refresh", &id]);
    assert_eq!(
        (&r["status"], &r["current_step"]),
        (&serde_json::json!("pending"), &serde_json::json!("复核")),
        "{r}"
    );
    // The picked approver approves it by its code.
    let a = json(db, &["--as", "wangfang", "approval", "approve", "QJ-001"]);
    assert_eq!(a["status"], "approved", "{a}");
    // A rejected one is resubmitted under the same code: the same approval.
    let shown = zw_json(db, &["approval", "show", "QJ-002"]);
    let second = shown["approval"]["id"].as_str().expect("id").to_string();
    ok(db, &["--as", "chenjing", "approval", "reject", &second]);
    let again = zw_json(
        db,
        &[
            "approval",
            "submit",
            "leave",
            "--document",
            "QJ-002",
            "--title",
            "病假半天",
        ],
    );
    assert_eq!(again["id"], second.as_str(), "{again}");
    assert_eq!(again["status"], "pending", "{again}");
    // Rejected, the code stays its applicant's.
    ok(db, &["--as", "chenjing", "approval", "reject", &second]);
    let e = fails(db, &taken);
    assert!(e.contains("only its applicant may resubmit it"), "{e}");
    zw_json(db, &["approval", "submit", "leave", "--document", "QJ-002"]);
    let mine = zw_json(db, &["approval", "mine"]);
    assert_eq!(
        mine.as_array()
            .map(|l| l.iter().filter(|a| a["doc_type"] == "leave").count()),
        Some(2),
        "{mine}"
    );
    // Sales documents have their own commands; a type without a flow and a
    // bad amount are refused.
    for (doc_type, cmd) in [
        ("contract", "contract submit"),
        ("quote", "quote submit"),
        ("payment", "contract pay"),
    ] {
        let e = fails(
            db,
            &[
                "--as",
                "zhangwei",
                "approval",
                "submit",
                doc_type,
                "--document",
                contract,
            ],
        );
        assert!(
            e.contains("cannot be submitted for approval directly") && e.contains(cmd),
            "{e}"
        );
    }
    fails(
        db,
        &[
            "--as",
            "zhangwei",
            "approval",
            "submit",
            "trip",
            "--document",
            "CC-001",
        ],
    );
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "approval",
            "submit",
            "leave",
            "--document",
            "QJ-003",
            "--amount",
            "abc",
        ],
    );
    assert!(e.contains("amount 'abc' is not a number"), "{e}");
    // Who reads every contract reads the contract's approval, and is told
    // who may refresh it rather than that it does not exist.
    ok(
        db,
        &["role", "add", "合同查阅", "--perm", "contract:read:all"],
    );
    ok(
        db,
        &[
            "user",
            "add",
            "shenji",
            "审计",
            "--role",
            "合同查阅",
            "--dept",
            "销售部",
        ],
    );
    let shown = ok(db, &["--as", "shenji", "approval", "show", contract]);
    assert!(shown.contains(&format!("contract {contract}")), "{shown}");
    let e = fails(db, &["--as", "shenji", "approval", "refresh", contract]);
    assert!(
        e.contains("may not refresh the approval of contract")
            && e.contains("only its applicant (张伟 (zhangwei))"),
        "{e}"
    );
    assert!(!e.contains("not found"), "{e}");
}

/// Runs the CLI as zhangwei, with `--json` unless `human`.
fn zw(db: &str, human: bool, args: &[&str]) -> String {
    let mut all = vec!["--as", "zhangwei"];
    if !human {
        all.push("--json");
    }
    all.extend_from_slice(args);
    ok(db, &all)
}

fn zw_json(db: &str, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&zw(db, false, args)).expect("json output")
}

/// After the deal: lists with filters and pages, the lifecycle of each
/// sales document, picked approvers, a payment approved by the contract's
/// code, invoices, deliveries and the product catalogue's upkeep.
fn follow_on(db: &str, opp: &str, contract: &str) {
    let customer = "北京华信智联科技有限公司";
    // Pipelines: the stage keys users move opportunities to.
    let p = json(db, &["opportunity", "pipeline-show"]);
    assert_eq!(p["stages"][1]["key"], "assessment", "{p}");
    assert!(ok(db, &["opportunity", "pipeline-show"]).contains("assessment"));
    // Opportunities: source and notes, renaming, filters and pages. This
    // one closes in the middle of the month after next, the month forecast.
    let month = month_from_now(2);
    let close = format!("{month}-15");
    let o = zw_json(
        db,
        &[
            "opportunity",
            "add",
            "--customer",
            customer,
            "--name",
            "备用机采购",
            "--amount",
            "20000",
            "--close",
            &close,
            "--source",
            "展会",
            "--notes",
            "首次接触",
        ],
    );
    assert_eq!(o["source"], "展会");
    assert_eq!(o["notes"], "首次接触");
    let opp2 = o["code"].as_str().expect("code").to_string();
    let o = zw_json(
        db,
        &[
            "opportunity",
            "edit",
            &opp2,
            "--name",
            "备用机采购二期",
            "--notes",
            "二次接触",
        ],
    );
    assert_eq!(o["name"], "备用机采购二期");
    assert_eq!(o["notes"], "二次接触");
    assert_eq!(o["source"], "展会", "unchanged");
    let l = zw_json(db, &["opportunity", "list", "--stage", "initial"]);
    let codes: Vec<&str> = l["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["code"].as_str())
        .collect();
    assert!(
        codes.contains(&opp2.as_str()) && !codes.contains(&opp),
        "{l}"
    );
    assert_eq!(l["page"], 1);
    assert_eq!(l["has_more"], false);
    let l = zw(db, true, &["opportunity", "list", "--customer", customer]);
    assert!(l.contains(&opp2) && l.contains(customer), "{l}");
    assert!(l.contains("no more pages"), "{l}");
    let l = zw_json(db, &["opportunity", "list", "--page", "2"]);
    assert_eq!(l["items"].as_array().map(Vec::len), Some(0), "{l}");
    let f = zw_json(
        db,
        &["opportunity", "forecast", "--from", &month, "--to", &month],
    );
    let rows = f.as_array().expect("rows");
    assert!(!rows.is_empty(), "{f}");
    assert!(rows.iter().all(|r| r["month"] == month.as_str()), "{f}");
    let f = zw(db, true, &["opportunity", "forecast", "--from", &month]);
    assert!(f.contains("department") && f.contains("华北"), "{f}");
    assert!(
        fails(db, &["opportunity", "forecast", "--from", "2027-13"]).contains("expected YYYY-MM")
    );
    // The opportunity's lifecycle: transfer, history, recycle bin.
    assert!(
        zw(
            db,
            true,
            &["opportunity", "transfer", &opp2, "--to", "wangfang"]
        )
        .contains("transferred: 1 done")
    );
    ok(db, &["--as", "wangfang", "opportunity", "show", &opp2]);
    let h = json(db, &["opportunity", "history", &opp2]);
    assert!(h.as_array().map_or(0, Vec::len) >= 3, "{h}");
    assert!(ok(db, &["opportunity", "delete", &opp2]).contains("deleted: 1 done"));
    fails(db, &["opportunity", "show", &opp2]);
    assert!(ok(db, &["opportunity", "restore", &opp2]).contains("restored: 1 done"));
    ok(db, &["opportunity", "show", &opp2]);
    // Purged for good (彻底删除) only from the recycle bin.
    fails(db, &["opportunity", "purge", &opp2]);
    ok(db, &["opportunity", "show", &opp2]);
    assert!(ok(db, &["opportunity", "delete", &opp2]).contains("deleted: 1 done"));
    assert!(ok(db, &["opportunity", "purge", &opp2]).contains("purged: 1 done"));
    fails(db, &["opportunity", "restore", &opp2]);
    // Quotes: validity, versions, pages, shares and the recycle bin. The
    // quote is valid for some weeks, its revision for some more.
    let valid = days_from_today(40);
    let revised = days_from_today(70);
    let q = zw_json(
        db,
        &[
            "quote",
            "add",
            "--customer",
            customer,
            "--title",
            "备用机报价",
            "--line",
            "SV-2288:1",
            "--valid-until",
            &valid,
        ],
    );
    assert_eq!(q["valid_until"], valid.as_str());
    let quote2 = q["code"].as_str().expect("code").to_string();
    let q = zw_json(
        db,
        &[
            "quote",
            "revise",
            &quote2,
            "--line",
            "SV-2288:2",
            "--valid-until",
            &revised,
        ],
    );
    assert_eq!(q["quote_version"], 2);
    assert_eq!(q["valid_until"], revised.as_str());
    // A revision of the version read: one revised since is refused.
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "quote",
            "revise",
            &quote2,
            "--line",
            "SV-2288:3",
            "--version",
            "1",
        ],
    );
    assert!(
        e.contains("revised since v1") && e.contains("v2 now"),
        "{e}"
    );
    let v = zw_json(db, &["quote", "versions", &quote2]);
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v[0]["valid_until"], valid.as_str());
    let v = zw(db, true, &["quote", "versions", &quote2]);
    assert!(v.contains("v1") && v.contains("v2"), "{v}");
    let l = zw(db, true, &["quote", "list"]);
    assert!(l.contains(&quote2) && l.contains(customer), "{l}");
    assert!(l.contains("total 2") && l.contains("no more pages"), "{l}");
    let l = zw_json(db, &["quote", "list", "--page", "2"]);
    assert_eq!(l["items"].as_array().map(Vec::len), Some(0), "{l}");
    assert_eq!(l["total"], 2);
    fails(db, &["--as", "wangfang", "quote", "show", &quote2]);
    assert!(
        zw(db, true, &["quote", "share", &quote2, "--with", "wangfang"]).contains("shared: 2 done")
    );
    ok(db, &["--as", "wangfang", "quote", "show", &quote2]);
    assert!(zw(db, true, &["quote", "delete", &quote2]).contains("deleted: 2 done"));
    fails(db, &["--as", "zhangwei", "quote", "show", &quote2]);
    assert!(zw(db, true, &["quote", "restore", &quote2]).contains("restored: 2 done"));
    let h = zw_json(db, &["quote", "history", &quote2]);
    assert!(h.as_array().map_or(0, Vec::len) >= 2, "{h}");
    // Contracts: signing date, notes, filters, shares and the recycle bin.
    // Signed some days ago, then corrected to the day after.
    let signed = days_from_today(-6);
    let corrected = days_from_today(-5);
    let c = zw_json(
        db,
        &[
            "contract",
            "add",
            "--customer",
            customer,
            "--title",
            "维保服务合同",
            "--amount",
            "5000",
            "--type",
            "service",
            "--signed",
            &signed,
            "--notes",
            "年度维保",
        ],
    );
    assert_eq!(c["signed_on"], signed.as_str());
    assert_eq!(c["notes"], "年度维保");
    let c2 = c["code"].as_str().expect("code").to_string();
    let c = zw_json(
        db,
        &[
            "contract",
            "edit",
            &c2,
            "--signed",
            &corrected,
            "--notes",
            "年度维保含备件",
        ],
    );
    assert_eq!(c["signed_on"], corrected.as_str());
    assert_eq!(c["notes"], "年度维保含备件");
    let l = zw_json(
        db,
        &[
            "contract",
            "list",
            "--type",
            "service",
            "--customer",
            customer,
            "--search",
            "维保",
        ],
    );
    assert_eq!(l["total"], 1, "{l}");
    assert_eq!(l["items"][0]["code"], c2.as_str());
    let l = zw_json(db, &["contract", "list", "--status", "executing"]);
    assert_eq!(l["total"], 1, "{l}");
    assert_eq!(l["items"][0]["code"], contract);
    let l = zw(db, true, &["contract", "list", "--status", "draft"]);
    assert!(
        l.contains(&c2) && l.contains(customer) && l.contains("total 1"),
        "{l}"
    );
    assert!(fails(db, &["contract", "list", "--status", "x"]).contains("unknown contract status"));
    assert!(zw(db, true, &["contract", "delete", &c2]).contains("deleted: 1 done"));
    fails(db, &["--as", "zhangwei", "contract", "show", &c2]);
    // In the recycle bin it still has its history, the deletion in local time.
    let binned = zw(db, true, &["contract", "history", &c2]);
    let line = binned
        .lines()
        .find(|l| l.contains("deleted_at"))
        .unwrap_or_else(|| panic!("a deletion in {binned}"));
    assert!(!line.contains('Z') && !line.contains('T'), "{line}");
    assert!(zw(db, true, &["contract", "restore", &c2]).contains("restored: 1 done"));
    assert!(
        zw(db, true, &["contract", "share", &c2, "--with", "wangfang"]).contains("shared: 1 done")
    );
    // A day alone is through that day, as for customers.
    let through = days_from_today(40);
    assert!(
        zw(
            db,
            true,
            &[
                "contract", "share", &c2, "--with", "liqiang", "--until", &through
            ]
        )
        .contains("shared: 1 done")
    );
    let listed = zw(db, true, &["contract", "shares", &c2]);
    assert!(listed.contains(&format!("{through} 24:00")), "{listed}");
    let hj = zw_json(db, &["contract", "history", &c2]);
    assert!(hj.as_array().map_or(0, Vec::len) >= 2, "{hj}");
    let h = zw(db, true, &["contract", "history", &c2]);
    assert!(
        h.contains("年度维保含备件") && h.contains("¥5,000.00"),
        "{h}"
    );
    // Times in the companies' local time.
    let at = hj[0]["at"].as_str().expect("at");
    assert!(
        h.contains(&common::local_time(at, "%Y-%m-%d %H:%M:%S")),
        "{at} in {h}"
    );
    // A flow where the applicant picks the approver.
    ok(
        db,
        &[
            "approval",
            "flow",
            "contract",
            "--name",
            "指定审批",
            "--step",
            "指定审批人=pick",
        ],
    );
    let args = ["--as", "zhangwei", "contract", "submit", &c2];
    fails(db, &args);
    let s = zw_json(db, &["contract", "submit", &c2, "--pick", "wangfang"]);
    assert_eq!(s["contract"]["status"], "pending_approval", "{s}");
    fails(db, &["--as", "chenjing", "approval", "approve", &c2]);
    ok(db, &["--as", "wangfang", "approval", "approve", &c2]);
    // A payment approval is found by the contract's code, before the
    // contract's own (approved) one.
    ok(
        db,
        &[
            "approval",
            "flow",
            "payment",
            "--name",
            "回款审批",
            "--step",
            "财务审批=users:ChenJing",
        ],
    );
    let p = zw_json(
        db,
        &[
            "contract",
            "pay",
            &c2,
            "--amount",
            "3000",
            "--receipt",
            "SJ-0001",
            "--notes",
            "首付",
        ],
    );
    assert_eq!(p["payment"]["status"], "pending_approval", "{p}");
    assert_eq!(p["payment"]["receipt_no"], "SJ-0001");
    assert_eq!(p["payment"]["notes"], "首付");
    let a = json(db, &["--as", "chenjing", "approval", "show", &c2]);
    assert_eq!(a["approval"]["doc_type"], "payment", "{a}");
    ok(db, &["--as", "chenjing", "approval", "approve", &c2]);
    // Two payments waiting: the code no longer says which, the ids do.
    for receipt in ["SJ-0002", "SJ-0003"] {
        zw_json(
            db,
            &[
                "contract",
                "pay",
                &c2,
                "--amount",
                "1000",
                "--receipt",
                receipt,
            ],
        );
    }
    let two = fails(db, &["--as", "chenjing", "approval", "approve", &c2]);
    assert!(two.contains("2 approvals waiting for you"), "{two}");
    let waiting = json(db, &["--as", "chenjing", "approval", "pending"]);
    let ids: Vec<String> = waiting
        .as_array()
        .expect("list")
        .iter()
        .filter(|a| a["doc_type"] == "payment")
        .map(|a| a["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{waiting}");
    for id in &ids {
        ok(db, &["--as", "chenjing", "approval", "approve", id]);
    }
    let shown = zw_json(db, &["contract", "show", &c2]);
    assert_eq!(shown["collection"]["received"]["minor"], 500_000, "{shown}");
    // Invoices and deliveries of a contract.
    zw(
        db,
        true,
        &[
            "contract",
            "invoice",
            &c2,
            "--amount",
            "5000",
            "--type",
            "vat_normal",
            "--number",
            "12345678",
        ],
    );
    let i = zw_json(db, &["contract", "invoices", &c2]);
    assert_eq!(i[0]["number"], "12345678", "{i}");
    let i = zw(db, true, &["contract", "invoices", &c2]);
    assert!(i.contains("已开票") && i.contains("普票"), "{i}");
    let d = zw_json(db, &["contract", "deliveries", contract]);
    assert_eq!(d["deliveries"].as_array().map(Vec::len), Some(1), "{d}");
    assert_eq!(d["progress"][0]["remaining"], 0);
    let d = zw(db, true, &["contract", "deliveries", contract]);
    assert!(d.contains("1×3") && d.contains("机架式服务器"), "{d}");
    products(db);
}

/// Products: editing some fields, the status as a label, the recycle bin.
fn products(db: &str) {
    let p = json(
        db,
        &[
            "product", "edit", "SV-2288", "--price", "36000", "--spec", "2U",
        ],
    );
    assert_eq!(p["list_price"]["minor"], 3_600_000, "{p}");
    assert_eq!(p["spec"], "2U");
    assert_eq!(p["unit"], "台", "unchanged");
    let shown = ok(db, &["product", "show", "sv-2288"]);
    assert!(
        shown.contains("SV-2288") && shown.contains("36,000.00") && shown.contains("2U"),
        "{shown}"
    );
    let l = ok(db, &["product", "list", "--search", "SV-2288"]);
    assert!(l.contains("在售") && l.contains("36,000.00"), "{l}");
    assert!(l.contains("total 1"), "{l}");
    ok(
        db,
        &["product", "edit", "SV-2288", "--status", "discontinued"],
    );
    assert!(ok(db, &["product", "list", "--search", "SV-2288"]).contains("停售"));
    assert!(
        fails(db, &["product", "edit", "SV-2288", "--status", "gone"])
            .contains("unknown product status")
    );
    ok(db, &["product", "delete", "SV-2288"]);
    let l = json(db, &["product", "list", "--search", "SV-2288"]);
    assert_eq!(l["total"], 0, "{l}");
    let l = json(db, &["product", "list", "--deleted"]);
    assert_eq!(l["items"][0]["code"], "SV-2288", "{l}");
    fails(db, &["product", "restore", "NO-SUCH"]);
    // Codes are typed letter case aside, in the recycle bin too.
    let p = json(db, &["product", "restore", "sv-2288"]);
    assert_eq!(
        (&p["deleted"], &p["code"]),
        (&serde_json::json!(false), &serde_json::json!("SV-2288"))
    );
    ok(db, &["product", "edit", "sv-2288", "--status", "on_sale"]);
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
    common::on_postgres("cli_sales", deal);
}

/// A lost opportunity is reopened (`opportunity stage --reopen`) and its
/// approved quote then becomes a contract; an approved contract's signing
/// date is refused; a payment prints its status as a label; an amount with
/// too many decimals and a VAT rate typed as 17 % are refused in plain words.
fn reopen_and_refusals(db: &str) {
    ok(db, &["demo"]);
    ok(db, &["sales-setup"]);
    let customer = "北京华信智联科技有限公司";
    let opp = zw_json(
        db,
        &[
            "opportunity",
            "add",
            "--customer",
            customer,
            "--name",
            "报价失败机会",
            "--amount",
            "50000",
        ],
    )["code"]
        .as_str()
        .expect("code")
        .to_string();
    let quote = zw_json(
        db,
        &[
            "quote",
            "add",
            "--customer",
            customer,
            "--title",
            "失败报价",
            "--opportunity",
            &opp,
            "--line",
            "实施服务:1:50000:6",
        ],
    )["code"]
        .as_str()
        .expect("code")
        .to_string();
    let s = zw_json(db, &["quote", "submit", &quote]);
    assert_eq!(s["quote"]["status"], "approved", "{s}");
    zw(
        db,
        true,
        &["opportunity", "stage", &opp, "--lose", "价格高"],
    );
    let e = fails(db, &["--as", "zhangwei", "quote", "contract", &quote]);
    assert!(e.contains("reopen"), "{e}");
    let e = fails(
        db,
        &["--as", "zhangwei", "opportunity", "stage", &opp, "--resume"],
    );
    assert!(
        e.contains("lost (失败)") && e.contains("reopen it first"),
        "{e}"
    );
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "opportunity",
            "stage",
            &opp,
            "--reopen",
            "--resume",
        ],
    );
    assert!(e.contains("--reopen"), "{e}");
    let out = zw(db, true, &["opportunity", "stage", &opp, "--reopen"]);
    assert!(out.contains(&opp) && out.contains("跟踪"), "{out}");
    let c = zw_json(db, &["quote", "contract", &quote]);
    let contract = c["code"].as_str().expect("code").to_string();
    zw(db, true, &["contract", "submit", &contract]);
    ok(db, &["--as", "chenjing", "approval", "approve", &contract]);
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "edit",
            &contract,
            "--signed",
            "2026-12-01",
        ],
    );
    assert!(
        e.contains(&contract) && e.contains("执行中") && e.contains("signing date"),
        "{e}"
    );
    let e = fails(
        db,
        &[
            "--as", "zhangwei", "contract", "pay", &contract, "--amount", "0.005",
        ],
    );
    assert_eq!(e.matches("0.005").count(), 1, "{e}");
    assert!(e.contains("3 decimal places"), "{e}");
    let out = zw(db, true, &["contract", "pay", &contract, "--amount", "100"]);
    assert!(
        out.contains("已确认") && !out.contains("confirmed"),
        "{out}"
    );
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "quote",
            "add",
            "--customer",
            customer,
            "--title",
            "税率报价",
            "--line",
            "实施服务:1:100:17",
        ],
    );
    assert!(
        e.contains("17% is not one of the allowed rates") && !e.contains("basis"),
        "{e}"
    );
}

#[test]
fn cli_sales_reopen_and_refusals_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("crm-cli-sales-reopen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("sales.db");
    let _ = std::fs::remove_file(&db);
    reopen_and_refusals(db.to_str().expect("path"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_sales_reopen_and_refusals_on_postgres() {
    common::on_postgres("cli_sales_reopen", reopen_and_refusals);
}

/// A document's shares are listed and revoked by code: once unshared, the
/// user no longer finds it.
#[test]
fn cli_document_shares_are_listed_and_revoked() {
    let dir = std::env::temp_dir().join(format!("crm-cli-docshares-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("cli.db");
    let _ = std::fs::remove_file(&db);
    let db = db.to_str().expect("path");
    ok(db, &["demo"]);
    ok(db, &["sales-setup"]);
    let customer = json(db, &["--as", "zhangwei", "customer", "list"])["items"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let c = json(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "add",
            "--customer",
            &customer,
            "--title",
            "共享测试",
            "--amount",
            "1000",
        ],
    );
    let code = c["code"].as_str().expect("code").to_string();
    ok(
        db,
        &[
            "--as", "zhangwei", "contract", "share", &code, "--with", "wangfang",
        ],
    );
    let shares = json(db, &["--as", "zhangwei", "contract", "shares", &code]);
    assert_eq!(shares.as_array().map(Vec::len), Some(1), "{shares}");
    ok(db, &["--as", "wangfang", "contract", "show", &code]);
    ok(
        db,
        &[
            "--as", "zhangwei", "contract", "unshare", &code, "--with", "wangfang",
        ],
    );
    let shares = json(db, &["--as", "zhangwei", "contract", "shares", &code]);
    assert_eq!(shares.as_array().map(Vec::len), Some(0), "{shares}");
    let e = fails(db, &["--as", "wangfang", "contract", "show", &code]);
    assert_eq!(e.trim_end(), format!("error: contract {code} not found"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `customer transfer --with-documents` hands the former owner's
/// opportunity and contract of the customer to the new owner, who then
/// finds them; without the flag they stay.
#[test]
fn cli_customer_transfer_takes_its_documents_along() {
    let dir = std::env::temp_dir().join(format!("crm-cli-transferdocs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("cli.db");
    let _ = std::fs::remove_file(&db);
    let db = db.to_str().expect("path");
    ok(db, &["demo"]);
    ok(db, &["sales-setup"]);
    let list = json(db, &["--as", "zhangwei", "customer", "list"]);
    let code = |i: usize| list["items"][i]["code"].as_str().expect("code").to_string();
    let (moved, kept) = (code(0), code(1));
    let mut contracts = Vec::new();
    for customer in [&moved, &kept] {
        let c = json(
            db,
            &[
                "--as",
                "zhangwei",
                "contract",
                "add",
                "--customer",
                customer,
                "--title",
                "转移测试",
                "--amount",
                "1000",
            ],
        );
        contracts.push(c["code"].as_str().expect("code").to_string());
    }
    let r = json(
        db,
        &[
            "customer",
            "transfer",
            &moved,
            "--to",
            "liqiang",
            "--with-documents",
        ],
    );
    let docs = r["documents"].as_array().expect("documents");
    assert!(
        docs.iter()
            .any(|d| d["code"] == contracts[0].as_str() && d["refused"].is_null()),
        "{r}"
    );
    ok(db, &["--as", "liqiang", "contract", "show", &contracts[0]]);
    ok(db, &["customer", "transfer", &kept, "--to", "liqiang"]);
    let e = fails(db, &["--as", "liqiang", "contract", "show", &contracts[1]]);
    assert!(e.contains("not found"), "{e}");
    let e = fails(
        db,
        &[
            "contact",
            "transfer",
            "x",
            "--to",
            "liqiang",
            "--with-documents",
        ],
    );
    assert!(e.contains("only for customers"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An issued invoice recorded by mistake is voided by its number with a
/// reason (发票作废): listed as 已作废 with the reason, no longer invoiced,
/// so the corrected invoice is issued; its number is not issued again, and
/// voiding twice or without a reason is refused.
fn void_invoice(db: &str) {
    ok(db, &["demo"]);
    ok(db, &["sales-setup"]);
    let customer = json(db, &["--as", "zhangwei", "customer", "list"])["items"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let c = zw_json(
        db,
        &[
            "contract",
            "add",
            "--customer",
            &customer,
            "--title",
            "开票测试",
            "--amount",
            "1000",
        ],
    );
    let code = c["code"].as_str().expect("code").to_string();
    zw(db, true, &["contract", "submit", &code]);
    ok(db, &["--as", "chenjing", "approval", "approve", &code]);
    let invoice = |number: &str| {
        vec![
            "--as", "zhangwei", "contract", "invoice", &code, "--amount", "1000", "--number",
        ]
        .into_iter()
        .map(str::to_string)
        .chain([number.to_string()])
        .collect::<Vec<String>>()
    };
    let args = invoice("04400123");
    ok(db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "void-invoice",
            &code,
            "04400123",
            "--reason",
            " ",
        ],
    );
    assert!(e.contains("reason"), "{e}");
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "void-invoice",
            &code,
            "04400999",
            "--reason",
            "开错",
        ],
    );
    assert!(
        e.contains("no invoice 04400999") && e.contains("04400123"),
        "{e}"
    );
    let out = zw(
        db,
        true,
        &[
            "contract",
            "void-invoice",
            &code,
            "04400123",
            "--reason",
            "金额开错",
        ],
    );
    assert!(
        out.contains("04400123") && out.contains("已作废") && out.contains("invoiced ¥0.00"),
        "{out}"
    );
    let list = zw(db, true, &["contract", "invoices", &code]);
    assert!(list.contains("已作废: 金额开错"), "{list}");
    let list = zw_json(db, &["contract", "invoices", &code]);
    assert_eq!(list[0]["status"], "voided", "{list}");
    assert_eq!(list[0]["void_reason"], "金额开错", "{list}");
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "void-invoice",
            &code,
            "04400123",
            "--reason",
            "再次",
        ],
    );
    assert!(e.contains("already"), "{e}");
    let args = invoice("04400123");
    let e = fails(db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("voided") && e.contains("04400123"), "{e}");
    // The corrected invoice, for the whole amount; then voided with --json.
    let args = invoice("04400124");
    ok(db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let v = zw_json(
        db,
        &[
            "contract",
            "void-invoice",
            &code,
            "04400124",
            "--reason",
            "抬头错",
        ],
    );
    assert_eq!(v["invoice"]["status"], "voided", "{v}");
    assert_eq!(v["invoice"]["void_reason"], "抬头错", "{v}");
    assert_eq!(v["contract"]["invoiced"]["minor"], 0, "{v}");
    let events = ok(db, &["events", "pending", "--limit", "200"]);
    assert!(events.contains("invoice.voided"), "{events}");
    let h = zw(db, true, &["contract", "history", &code]);
    assert!(h.contains("invoice_voided") && h.contains("抬头错"), "{h}");
    // Invoice plans and invoices stay within the amount, and issuing
    // fulfils the open plans: none is left open once all is invoiced.
    let c = zw_json(
        db,
        &[
            "contract",
            "add",
            "--customer",
            &customer,
            "--title",
            "开票计划测试",
            "--amount",
            "100",
        ],
    );
    let code = c["code"].as_str().expect("code").to_string();
    zw(db, true, &["contract", "submit", &code]);
    ok(db, &["--as", "chenjing", "approval", "approve", &code]);
    let plan = |amount: &str, on: &str| {
        vec![
            "contract", "invoice", &code, "--amount", amount, "--date", on,
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<String>>()
    };
    zw(
        db,
        true,
        &[
            "contract", "invoice", &code, "--amount", "60", "--number", "INV-1",
        ],
    );
    let first = plan("40", &days_from_today(40));
    zw(
        db,
        true,
        &first.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let second = plan("40", &days_from_today(70));
    let mut args = vec!["--as", "zhangwei"];
    args.extend(second.iter().map(String::as_str));
    let e = fails(db, &args);
    assert!(e.contains("left to plan") && e.contains("¥0.00"), "{e}");
    zw(
        db,
        true,
        &[
            "contract", "invoice", &code, "--amount", "40", "--number", "INV-2",
        ],
    );
    let list = zw(db, true, &["contract", "invoices", &code]);
    assert!(
        list.contains("invoiced ¥100.00 of ¥100.00") && list.contains("计划已开票"),
        "{list}"
    );
    let rows = zw_json(db, &["contract", "invoices", &code]);
    let open = rows
        .as_array()
        .expect("invoices")
        .iter()
        .filter(|i| i["status"] == "planned")
        .count();
    assert_eq!(open, 0, "{rows}");
}

#[test]
fn cli_void_invoice_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("crm-cli-void-invoice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("sales.db");
    let _ = std::fs::remove_file(&db);
    void_invoice(db.to_str().expect("path"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_void_invoice_on_postgres() {
    common::on_postgres("cli_void_invoice", void_invoice);
}

/// An invoice whose number an older build stored as typed (`r4-x`) is
/// voided by the number typed in any form (`R4-X`), and its number is not
/// issued again: both sides are compared normalised.
#[test]
fn cli_void_invoice_stored_as_typed_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("crm-cli-void-typed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("sales.db");
    let _ = std::fs::remove_file(&path);
    let db = path.to_str().expect("path");
    ok(db, &["demo"]);
    ok(db, &["sales-setup"]);
    let customer = json(db, &["--as", "zhangwei", "customer", "list"])["items"][0]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let c = zw_json(
        db,
        &[
            "contract",
            "add",
            "--customer",
            &customer,
            "--title",
            "旧发票号合同",
            "--amount",
            "1000",
        ],
    );
    let code = c["code"].as_str().expect("code").to_string();
    zw(db, true, &["contract", "submit", &code]);
    ok(db, &["--as", "chenjing", "approval", "approve", &code]);
    let invoice = |number: &str| -> Vec<String> {
        [
            "--as", "zhangwei", "contract", "invoice", &code, "--amount", "100", "--number", number,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = invoice("R4-X");
    ok(db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    // As an older build kept it: as typed.
    let conn = rusqlite::Connection::open(&path).expect("open");
    let changed = conn
        .execute(
            "UPDATE invoices SET number = 'r4-x' WHERE number = 'R4-X'",
            [],
        )
        .expect("update");
    assert_eq!(changed, 1);
    drop(conn);
    let out = zw(
        db,
        true,
        &[
            "contract",
            "void-invoice",
            &code,
            "R4-X",
            "--reason",
            "开错",
        ],
    );
    assert!(out.contains("r4-x") && out.contains("已作废"), "{out}");
    let args = invoice("ｒ４－Ｘ");
    let e = fails(db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("voided") && e.contains("'r4-x'"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Document lines are read without guessing: an unknown code is refused
/// (not read as a free-text line at the discount's price), a free-text line
/// is marked with `=` where its name could be a code, and a free-text line
/// named as a catalogue product counts a price below its list price as
/// discount. Contract dates are checked against the signing date, a
/// contract's start date is changed, and an opportunity's close date is
/// cleared by an empty value.
fn lines_dates_and_clearing(db: &str) {
    ok(db, &["demo"]);
    ok(db, &["sales-setup"]);
    ok(
        db,
        &[
            "product",
            "add",
            "--code",
            "P1",
            "--name",
            "服务器",
            "--price",
            "10000",
        ],
    );
    let customer = "北京华信智联科技有限公司";
    let quote = |line: &str| {
        vec![
            "quote".to_string(),
            "add".into(),
            "--customer".into(),
            customer.into(),
            "--title".into(),
            "报价".into(),
            "--line".into(),
            line.into(),
        ]
    };
    let refused = |line: &str| {
        let mut args = vec!["--as".to_string(), "zhangwei".into()];
        args.extend(quote(line));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(db, &refs)
    };
    for (line, says) in [
        (
            "P11:2:5",
            "no product coded P11; a free-text line starts with =",
        ),
        ("P9:1", "no product coded P9"),
        ("Install:1", "no product coded Install"),
        (
            "没有这个:1",
            "no product coded 没有这个; a free-text line needs a price",
        ),
        ("=P1:2:5", "P1 is the code of product 服务器"),
        ("P1:2:5:9", "write P1:QTY[:DISCOUNT%]"),
        ("=:1:5", "expected CODE:QTY[:DISCOUNT%]"),
    ] {
        let e = refused(line);
        assert!(e.contains(says), "{line}: {e}");
    }
    let made = |line: &str| {
        let mut args = vec!["--as".to_string(), "zhangwei".into()];
        args.extend(quote(line));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        json(db, &refs)
    };
    let q = made("=Install:1:500");
    assert_eq!(q["lines"][0]["name"], "Install");
    assert_eq!(q["totals"]["amount"]["minor"], 50_000);
    assert_eq!(q["totals"]["max_discount_bp"], 0);
    let q = made("实施服务:1:500");
    assert_eq!(q["lines"][0]["product_id"], serde_json::Value::Null);
    // Quantities typed in full-width digits read as amounts do.
    let q = made("P1:３");
    assert_eq!(q["lines"][0]["quantity"], 3, "{q}");
    let q = made("=Install:１２:500:６％");
    assert_eq!(q["lines"][0]["quantity"], 12, "{q}");
    assert_eq!(q["lines"][0]["tax_rate"], 600, "{q}");
    assert!(refused("P1:３.５").contains("quantity ３.５ is not a whole number"));
    let m = refused("P1:99999999999999999999");
    assert!(
        m.contains("quantity 99999999999999999999 is too large"),
        "{m}"
    );
    // A free-text line named as a product's code in full-width letters is
    // that product's code all the same.
    let m = refused("=Ｐ１:1:500");
    assert!(m.contains("is the code of product"), "{m}");
    // An opportunity's product lines are a sales amount too: over the
    // ceiling they are refused as a quote's lines are, in the same words.
    let over = "the lines add up to more than ¥10,000,000,000,000.00 (10万亿元), the most a \
                sales amount may be";
    let o = |product: &str| {
        fails(
            db,
            &[
                "--as",
                "zhangwei",
                "opportunity",
                "add",
                "--customer",
                customer,
                "--name",
                "超大机会",
                "--product",
                product,
                "--product",
                product,
            ],
        )
    };
    let e = o("=Svc:1:6000000000000");
    assert!(e.contains(over), "{e}");
    assert!(refused("=Svc:2:6000000000000").contains("10万亿元"));
    let e = o("=Svc:1000000:99999999.99");
    assert!(
        e.contains("is more than ¥10,000,000,000,000.00 (10万亿元)"),
        "{e}"
    );
    let o = json(
        db,
        &[
            "--as",
            "zhangwei",
            "opportunity",
            "add",
            "--customer",
            customer,
            "--name",
            "全角数量",
            "--product",
            "P1:２",
        ],
    );
    assert_eq!(o["products"][0]["quantity"], 2, "{o}");
    assert_eq!(o["amount"]["minor"], 2_000_000, "{o}");
    // The product's name at half price: a 50 % discount, for approval.
    let q = made("服务器:2:5000");
    assert_eq!(q["totals"]["max_discount_bp"], 5000, "{q}");
    let code = q["code"].as_str().expect("code").to_string();
    let shown = ok(db, &["--as", "zhangwei", "quote", "show", &code]);
    assert!(
        shown.contains("[list price ¥10,000.00: 50% off in all]"),
        "{shown}"
    );
    let s = json(db, &["--as", "zhangwei", "quote", "submit", &code]);
    assert_eq!(s["quote"]["status"], "pending_approval", "{s}");
    // Contract dates.
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "add",
            "--customer",
            customer,
            "--title",
            "日期",
            "--amount",
            "1000",
            "--signed",
            "2026-12-07",
            "--end",
            "2026-01-01",
        ],
    );
    assert!(
        e.contains("2026-01-01 is before the signing date (签约日期) 2026-12-07"),
        "{e}"
    );
    let c = json(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "add",
            "--customer",
            customer,
            "--title",
            "日期",
            "--amount",
            "1000",
            "--signed",
            "2026-12-07",
            "--end",
            "2027-12-31",
        ],
    );
    let contract = c["code"].as_str().expect("code").to_string();
    let c = json(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "edit",
            &contract,
            "--start",
            "2027-01-01",
        ],
    );
    assert_eq!(c["start_on"], "2027-01-01", "{c}");
    let e = fails(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "edit",
            &contract,
            "--end",
            "2026-12-01",
        ],
    );
    assert!(e.contains("before the start date 2027-01-01"), "{e}");
    // An opportunity's close date is cleared by an empty value.
    let o = json(
        db,
        &[
            "--as",
            "zhangwei",
            "opportunity",
            "add",
            "--customer",
            customer,
            "--name",
            "清空",
            "--amount",
            "1000",
            "--close",
            &days_from_today(55),
        ],
    );
    let opp = o["code"].as_str().expect("code").to_string();
    let o = json(
        db,
        &[
            "--as",
            "zhangwei",
            "opportunity",
            "edit",
            &opp,
            "--close",
            "",
        ],
    );
    assert_eq!(o["expected_close"], serde_json::Value::Null, "{o}");
    // Opportunity product lines read codes the same way.
    for (line, says) in [
        (
            "P11:2:5",
            "no product coded P11; a free-text line starts with =",
        ),
        ("=P1:2:5", "P1 is the code of product 服务器"),
        ("=Install:1", "write CODE:QTY[:PRICE] or =NAME:QTY:PRICE"),
    ] {
        let e = fails(
            db,
            &[
                "--as",
                "zhangwei",
                "opportunity",
                "edit",
                &opp,
                "--product",
                line,
            ],
        );
        assert!(e.contains(says), "{line}: {e}");
    }
    let o = json(
        db,
        &[
            "--as",
            "zhangwei",
            "opportunity",
            "edit",
            &opp,
            "--product",
            "=Install:1:500",
            "--product",
            "P1:2",
        ],
    );
    assert_eq!(o["products"][0]["name"], "Install", "{o}");
    assert_eq!(o["products"][0]["product_id"], serde_json::Value::Null);
    assert_eq!(o["products"][1]["unit_price"]["minor"], 1_000_000);
}

#[test]
fn cli_sales_lines_dates_and_clearing_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("crm-cli-sales-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("sales.db");
    let _ = std::fs::remove_file(&db);
    lines_dates_and_clearing(db.to_str().expect("path"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_sales_lines_dates_and_clearing_on_postgres() {
    common::on_postgres("cli_sales_lines", lines_dates_and_clearing);
}

/// A contract's history names the customers it moved between (a merge) by
/// code and name, and to a reader of contracts who may not read customers
/// as hidden customers: never by id.
#[test]
fn cli_contract_history_names_customers_or_hides_them() {
    let dir = std::env::temp_dir().join(format!("crm-cli-dochistory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("cli.db");
    let _ = std::fs::remove_file(&db);
    let db = db.to_str().expect("path");
    ok(db, &["demo"]);
    ok(db, &["sales-setup"]);
    ok(
        db,
        &["role", "add", "合同只读", "--perm", "contract:read:all"],
    );
    ok(db, &["user", "add", "ctr", "合同员", "--role", "合同只读"]);
    let code = |name: &str| {
        json(
            db,
            &[
                "--as",
                "zhangwei",
                "customer",
                "add",
                &format!("name={name}"),
            ],
        )["code"]
            .as_str()
            .expect("code")
            .to_string()
    };
    let (a, b) = (code("合并甲有限公司"), code("合并乙有限公司"));
    let contract = json(
        db,
        &[
            "--as",
            "zhangwei",
            "contract",
            "add",
            "--customer",
            &a,
            "--title",
            "合并合同",
            "--amount",
            "50",
        ],
    )["code"]
        .as_str()
        .expect("contract code")
        .to_string();
    ok(db, &["customer", "merge", &b, &a]);
    let ids: Vec<String> = [&a, &b]
        .iter()
        .map(|c| {
            json(db, &["customer", "show", c.as_str()])["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    let admin = ok(db, &["contract", "history", &contract]);
    assert!(
        admin.contains(&format!(
            "customer_id: {a} 合并甲有限公司 → {b} 合并乙有限公司"
        )),
        "{admin}"
    );
    let reader = ok(db, &["--as", "ctr", "contract", "history", &contract]);
    assert!(
        reader.contains("customer_id: （无权查看的客户）"),
        "{reader}"
    );
    for id in &ids {
        assert!(!reader.contains(id.as_str()), "{reader}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
