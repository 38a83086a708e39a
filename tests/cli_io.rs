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
    let db = tmp.join("crm.db");
    template_export_import_and_undo(&tmp, db.to_str().expect("utf-8 path"));
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The same on PostgreSQL, in a schema of its own.
#[cfg(feature = "postgres")]
#[test]
fn template_export_import_and_undo_on_postgres() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    common::on_postgres("cli_io", |db| template_export_import_and_undo(&tmp, db));
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Template, export, dry run, a refused file, import with update and its
/// undo, on the store at `db`, with files in `tmp`.
fn template_export_import_and_undo(tmp: &Path, db: &str) {
    let run = |dir: &Path, args: &[&str]| common::run_in(Some(dir), db, args);
    let ok = |dir: &Path, args: &[&str]| common::succeeded(args, run(dir, args));
    let tmp = tmp.to_path_buf();
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
    // An undo stands alone: a trial run, an entity, a file or a listing
    // with it is refused by the command line, and nothing is undone.
    for args in [
        &["import", "--undo", &id, "--dry-run"][..],
        &["import", "customer", "all.xlsx", "--undo", &id],
        &["import", "--undo", &id, "--list"],
    ] {
        let out = run(&tmp, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot be used with"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let l = ok(&tmp, &["import", "--list"]);
    assert!(!l.contains("undone"), "{l}");
    let u = ok(&tmp, &["import", "--undo", &id]);
    assert!(u.contains("undid import"), "{u}");
    let l = ok(&tmp, &["import", "--list"]);
    assert!(l.contains("undone"), "{l}");
}

#[test]
fn product_template_import_and_price_update_from_the_command_line() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-product-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    let t = ok(&tmp, &["template", "product", "-o", "products-tpl.xlsx"]);
    assert!(t.contains("products-tpl.xlsx"), "{t}");
    let sheet = |name: &str, rows: &[&[&str]]| {
        let mut book = rust_xlsxwriter::Workbook::new();
        let ws = book.add_worksheet();
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                ws.write_string(r as u32, c as u16, *v).expect("cell");
            }
        }
        book.save(tmp.join(name)).expect("save");
    };
    sheet(
        "products.xlsx",
        &[
            &["产品编号", "产品名称", "单位", "标准价", "税率"],
            &["IMP-001", "扫描仪", "台", "1,280.50", "13%"],
            &["IMP-002", "碎纸机", "台", "-5", "13%"],
        ],
    );
    let out = run(&tmp, &["--json", "import", "product", "products.xlsx"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&text).expect("json report");
    assert_eq!(v["report"]["created"], 1, "{text}");
    assert_eq!(v["report"]["rejected"], 1, "{text}");
    let listed = ok(&tmp, &["product", "list"]);
    assert!(
        listed.contains("IMP-001") && listed.contains("1,280.50"),
        "{listed}"
    );
    // A price list: only codes and prices, updating what exists.
    sheet(
        "prices.xlsx",
        &[&["产品编号", "标准价"], &["IMP-001", "1300"]],
    );
    let u = ok(
        &tmp,
        &["import", "product", "prices.xlsx", "--policy", "update"],
    );
    assert!(u.contains("1 updated"), "{u}");
    let listed = ok(&tmp, &["product", "list"]);
    assert!(listed.contains("1,300.00"), "{listed}");
    // The exported price list imports back: every row is a known code.
    let e = ok(&tmp, &["export", "product", "-o", "price-list.xlsx"]);
    assert!(e.starts_with("exported "), "{e}");
    let d = ok(&tmp, &["import", "product", "price-list.xlsx", "--dry-run"]);
    assert!(d.contains("0 created"), "{d}");
    assert!(d.contains("0 rejected"), "{d}");
    // Imported back as an update, every value is what the catalogue holds.
    let u = ok(
        &tmp,
        &["import", "product", "price-list.xlsx", "--policy", "update"],
    );
    assert!(u.contains("0 updated") && u.contains("unchanged"), "{u}");
    assert!(!u.contains(" 0 unchanged"), "{u}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_refused_export_leaves_an_existing_file_as_it_was() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-keep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    let data = tmp.join("data.xlsx");
    let before = b"the user's own workbook, not ours".to_vec();
    std::fs::write(&data, &before).expect("write");
    // An unknown field is refused before anything is written.
    let out = run(
        &tmp,
        &[
            "export",
            "customer",
            "--fields",
            "typo",
            "--out",
            "data.xlsx",
        ],
    );
    assert!(!out.status.success(), "an unknown field is refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("typo"), "{err}");
    assert_eq!(
        std::fs::read(&data).expect("still there"),
        before,
        "the existing file is kept byte for byte"
    );
    let names: Vec<String> = std::fs::read_dir(&tmp)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".partial")),
        "no partial file left: {names:?}"
    );
    // A successful export replaces it.
    let e = ok(&tmp, &["export", "customer", "--out", "data.xlsx"]);
    assert!(e.starts_with("exported "), "{e}");
    let after = std::fs::read(&data).expect("exported");
    assert_ne!(after, before);
    assert!(after.starts_with(b"PK"), "a workbook (a zip file)");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_failed_import_says_nothing_was_created() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-fail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    let sheet = |name: &str, rows: &[&str]| {
        let mut book = rust_xlsxwriter::Workbook::new();
        let ws = book.add_worksheet();
        ws.write_string(0, 0, "客户名称").expect("cell");
        for (r, v) in rows.iter().enumerate() {
            ws.write_string(r as u32 + 1, 0, *v).expect("cell");
        }
        book.save(tmp.join(name)).expect("save");
    };
    sheet("seed.xlsx", &["失败测试已有有限公司"]);
    ok(&tmp, &["import", "customer", "seed.xlsx"]);
    sheet(
        "fail.xlsx",
        &[
            "失败测试甲有限公司",
            "失败测试乙有限公司",
            "失败测试已有有限公司",
        ],
    );
    for extra in [&[][..], &["--batches", "--batch-size", "1"][..]] {
        let mut args = vec!["import", "customer", "fail.xlsx", "--policy", "fail"];
        args.extend_from_slice(extra);
        let out = run(&tmp, &args);
        assert!(!out.status.success(), "{args:?}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.starts_with("failed import of ") && said.contains(" 0 created"),
            "{args:?}: {said}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("nothing was written"), "{args:?}: {err}");
    }
    // The reasons printed are in the language asked for.
    let reason = |lang: &str| {
        let said = ok(
            &tmp,
            &[
                "import",
                "customer",
                "fail.xlsx",
                "--dry-run",
                "--lang",
                lang,
            ],
        );
        said.lines()
            .find(|l| l.trim_start().starts_with("row 4:"))
            .unwrap_or_else(|| panic!("{lang}: {said}"))
            .to_string()
    };
    let (en, zh) = (reason("en"), reason("zh"));
    assert!(
        en.contains("skipped: name") && en.contains("already belongs to"),
        "{en}"
    );
    assert!(!zh.contains("already belongs to"), "{zh}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A contact export names each contact's customer by code too: importing
/// it back after a customer was renamed finds every contact's customer.
#[test]
fn contact_export_imports_back_after_its_customer_is_renamed() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-rename-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    let e = ok(&tmp, &["export", "contact", "-o", "contacts.xlsx"]);
    assert!(e.starts_with("exported "), "{e}");
    let contacts: serde_json::Value = serde_json::from_str(&ok(
        &tmp,
        &["--json", "contact", "list", "--per-page", "100"],
    ))
    .expect("json");
    let customer = contacts["items"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|c| c["fields"]["customer_id"].as_str())
        .expect("a contact's customer")
        .to_string();
    ok(
        &tmp,
        &["customer", "edit", &customer, "name=改名后的客户有限公司"],
    );
    let i = ok(
        &tmp,
        &[
            "--json",
            "import",
            "contact",
            "contacts.xlsx",
            "--policy",
            "update",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&i).expect("json report");
    assert_eq!(v["report"]["rejected"], 0, "{i}");
    assert_eq!(v["report"]["created"], 0, "{i}");
    let _ = std::fs::remove_dir_all(&tmp);
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

#[test]
fn imports_refuse_archived_contacts_in_groups_and_match_usernames_letter_case_aside() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-groups-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    let contacts: serde_json::Value = serde_json::from_str(&ok(
        &tmp,
        &["--json", "contact", "list", "--per-page", "100"],
    ))
    .expect("json");
    let contact = contacts["items"]
        .as_array()
        .and_then(|a| {
            a.iter().find(|c| {
                c["fields"]["mobile"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            })
        })
        .expect("a contact with a mobile")
        .clone();
    let code = contact["code"].as_str().expect("code").to_string();
    let name = contact["fields"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let mobile = contact["fields"]["mobile"]
        .as_str()
        .expect("mobile")
        .to_string();
    let customer_id = contact["fields"]["customer_id"].as_str().expect("customer");
    let customers: serde_json::Value = serde_json::from_str(&ok(
        &tmp,
        &["--json", "customer", "list", "--per-page", "100"],
    ))
    .expect("json");
    let customer = customers["items"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"].as_str() == Some(customer_id)))
        .expect("the contact's customer");
    let customer_code = customer["code"].as_str().expect("code").to_string();
    let customer_name = customer["fields"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    ok(&tmp, &["contact", "archive", &code]);
    write_sheet(
        &tmp.join("groups.xlsx"),
        &[
            &["编号", "客户名称", "联系人1姓名", "联系人1手机"],
            &[&customer_code, &customer_name, &name, &mobile],
        ],
    );
    let out = run(
        &tmp,
        &[
            "--json",
            "import",
            "customer",
            "groups.xlsx",
            "--policy",
            "update",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["report"]["rejected"], 1, "{text}");
    assert_eq!(v["report"]["contacts_created"], 0, "{text}");
    assert!(text.contains("archived"), "{text}");
    // Owners by username, letter case aside.
    write_sheet(
        &tmp.join("owners.xlsx"),
        &[&["客户名称", "负责人"], &["大写负责人有限公司", "ZHANGWEI"]],
    );
    let i = ok(
        &tmp,
        &[
            "--json",
            "import",
            "customer",
            "owners.xlsx",
            "--owner",
            "ZhangWei",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&i).expect("json report");
    assert_eq!(v["report"]["created"], 1, "{i}");
    assert_eq!(v["report"]["rejected"], 0, "{i}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A dry run of a customer file that would take its importer past a
/// pool's cap is refused as the import itself is — in the same one line
/// naming the owner, the pool, its cap and what they hold — and neither
/// writes anything.
#[test]
fn a_dry_run_is_refused_by_a_pool_cap_as_the_import_is() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-cap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    ok(
        &tmp,
        &[
            "pool",
            "add",
            "封顶公海",
            "--member",
            "liqiang",
            "--cap",
            "1",
        ],
    );
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    for (r, v) in ["客户名称", "封顶一有限公司", "封顶二有限公司"]
        .iter()
        .enumerate()
    {
        ws.write_string(r as u32, 0, *v).expect("cell");
    }
    book.save(tmp.join("capped.xlsx")).expect("save");
    let mut said = Vec::new();
    for dry in [true, false] {
        let mut args = vec!["--as", "liqiang", "import", "customer", "capped.xlsx"];
        if dry {
            args.push("--dry-run");
        }
        let out = run(&tmp, &args);
        assert!(!out.status.success(), "{args:?} passed the cap");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            err.starts_with("error: ") && err.trim().lines().count() == 1,
            "{err}"
        );
        for part in [
            "李强 already holds",
            "the limit of pool 封顶公海 is 1",
            "nothing of the import was written",
        ] {
            assert!(err.contains(part), "{args:?}: {err}");
        }
        said.push(err);
    }
    assert_eq!(said[0], said[1], "the dry run says what the import says");
    let listed = ok(&tmp, &["customer", "list", "--search", "封顶"]);
    assert!(!listed.contains("封顶一有限公司"), "{listed}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// An export imported back with `--policy update` after someone changed
/// one of its customers does not undo that change: the row is refused
/// (the record's version moved on since the export), the others are
/// unchanged.
#[test]
fn an_untouched_export_does_not_undo_a_later_edit() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-lost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    let e = ok(&tmp, &["export", "customer", "-o", "customers.xlsx"]);
    assert!(e.starts_with("exported "), "{e}");
    let customers: serde_json::Value = serde_json::from_str(&ok(
        &tmp,
        &["--json", "customer", "list", "--per-page", "100"],
    ))
    .expect("json");
    let items = customers["items"].as_array().expect("customers");
    // (A blank cell changes nothing: a customer with an industry.)
    let code = items
        .iter()
        .find(|c| {
            c["fields"]["industry"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .and_then(|c| c["code"].as_str())
        .expect("a customer with an industry")
        .to_string();
    ok(&tmp, &["customer", "edit", &code, "industry=后来改的行业"]);
    let i = ok(
        &tmp,
        &[
            "--json",
            "import",
            "customer",
            "customers.xlsx",
            "--policy",
            "update",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&i).expect("json report");
    assert_eq!(v["report"]["updated"], 0, "{i}");
    assert_eq!(v["report"]["rejected"], 1, "{i}");
    assert_eq!(v["report"]["unchanged"], items.len() - 1, "{i}");
    let message = v["report"]["issues"][0]["message_en"]
        .as_str()
        .expect("a message");
    assert!(
        message.contains(&format!("{code} was changed since this file was exported")),
        "{message}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&tmp, &["--json", "customer", "show", &code])).expect("json");
    assert_eq!(shown["fields"]["industry"], "后来改的行业", "{shown}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `import --policy update --blanks-clear` clears what a blank cell leaves
/// empty; without the flag the stored value stays; the flag without the
/// update policy is refused.
#[test]
fn an_update_import_clears_blank_cells_only_when_asked() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-blanks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    let added: serde_json::Value = serde_json::from_str(&ok(
        &tmp,
        &[
            "--json",
            "customer",
            "add",
            "name=清空命令测试有限公司",
            "phone=010-62345678",
        ],
    ))
    .expect("json");
    let code = added["code"].as_str().expect("code").to_string();
    let file = tmp.join("blanks.xlsx");
    write_sheet(
        &file,
        &[
            &["编号", "客户名称", "电话"],
            &[&code, "清空命令测试有限公司", ""],
        ],
    );
    let f = file.to_str().expect("path");
    ok(&tmp, &["import", "customer", f, "--policy", "update"]);
    let show = |tmp: &Path| -> serde_json::Value {
        serde_json::from_str(&ok(tmp, &["--json", "customer", "show", &code])).expect("json")
    };
    assert_eq!(show(&tmp)["fields"]["phone"], "010-62345678");
    let out = run(&tmp, &["import", "customer", f, "--blanks-clear"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--policy update"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(
        &tmp,
        &[
            "import",
            "customer",
            f,
            "--policy",
            "update",
            "--blanks-clear",
        ],
    );
    assert!(show(&tmp)["fields"]["phone"].is_null(), "{}", show(&tmp));
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `--lang en` speaks English only: a sheet without a required column is
/// refused without the Chinese hint the engine adds for Chinese readers
/// (缺少必填列), which `--lang zh` keeps; a user template's instructions
/// describe a user import, not a customer import.
#[test]
fn english_output_leaves_out_chinese_hints_and_templates_describe_their_entity() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-en-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    write_sheet(&tmp.join("no-name.xlsx"), &[&["Phone"], &["010-12345678"]]);
    let said = |lang: &str| {
        let out = run(
            &tmp,
            &["import", "customer", "no-name.xlsx", "--lang", lang],
        );
        assert!(!out.status.success(), "{lang}");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let en = said("en");
    assert!(
        en.contains("is missing") && !en.contains("缺少必填列"),
        "{en}"
    );
    let zh = said("zh");
    assert!(zh.contains("缺少必填列"), "{zh}");
    for lang in ["en", "zh"] {
        ok(
            &tmp,
            &["template", "user", "-o", "users.xlsx", "--lang", lang],
        );
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> =
            calamine::open_workbook(tmp.join("users.xlsx")).expect("template");
        let sheet = if lang == "en" {
            "Instructions"
        } else {
            "填写说明"
        };
        let range = book.worksheet_range(sheet).expect("instructions");
        let text = range
            .get_value((0, 0))
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert!(
            !text.contains("credit code") && !text.contains("统一社会信用代码"),
            "{lang}: a customer import described"
        );
        assert!(
            text.contains("username") || text.contains("用户名"),
            "{lang}: {text}"
        );
        let _ = std::fs::remove_file(tmp.join("users.xlsx"));
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// An import whose rows were all rejected wrote nothing: it reports them,
/// writes the error workbook and fails; its dry run only reports.
#[test]
fn an_import_rejecting_every_row_fails_after_its_report() {
    let tmp = std::env::temp_dir().join(format!("crm-cli-io-rejected-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("dir");
    ok(&tmp, &["demo"]);
    write_sheet(
        &tmp.join("bad.xlsx"),
        &[
            &["产品编号", "产品名称", "单位", "标准价", "税率"],
            &["REJ-001", "碎纸机", "台", "-5", "13%"],
        ],
    );
    let d = ok(&tmp, &["import", "product", "bad.xlsx", "--dry-run"]);
    assert!(d.contains("0 created") && d.contains("1 rejected"), "{d}");
    let out = run(&tmp, &["import", "product", "bad.xlsx"]);
    let said = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}\n{err}");
    assert!(
        said.contains("0 created") && said.contains("1 rejected"),
        "{said}"
    );
    assert!(
        err.contains("error: no row was imported (1 rejected)") && err.contains("bad.errors.xlsx"),
        "{err}"
    );
    assert!(tmp.join("bad.errors.xlsx").exists());
    let listed = ok(&tmp, &["product", "list"]);
    assert!(!listed.contains("REJ-001"), "{listed}");
    let _ = std::fs::remove_dir_all(&tmp);
}
