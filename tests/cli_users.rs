//! The example CLI's user commands: deactivating a user tells what they
//! leave behind (and how to hand it over), a user's contact details and
//! roles are changed or cleared with `user edit`, list filters name owners
//! and departments as the user commands do, and the birthday list names the
//! contact and its customer by code; on SQLite and on PostgreSQL.

mod common;

use common::{days_from_today, fails, json, ok, run};

fn temp_db(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("crm-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("cli.db");
    let _ = std::fs::remove_file(&db);
    let db = db.to_str().expect("path").to_string();
    (dir, db)
}

/// The codes of the customers `owner` owns, as the list gives them.
fn customers_of(db: &str, owner: &str) -> Vec<String> {
    let list = json(
        db,
        &[
            "customer",
            "list",
            "--per-page",
            "100",
            "-w",
            &format!("owner_id={owner}"),
        ],
    );
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["code"].as_str().expect("code").to_string())
        .collect()
}

/// The standard error of a run that must succeed.
fn notes(db: &str, args: &[&str]) -> String {
    let out = run(db, args);
    assert!(
        out.status.success(),
        "crm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).expect("utf-8 errors")
}

/// Deactivating a user who owns customers and sales documents, archived
/// and binned customers, administers a pool and leads active users: the
/// note counts all of it and suggests a transfer taking the documents.
fn deactivation_notes(db: &str) {
    ok(db, &["demo"]);
    ok(db, &["sales-setup"]);
    let mine = customers_of(db, "zhangwei");
    assert!(mine.len() >= 3, "{mine:?}");
    ok(
        db,
        &[
            "--as",
            "zhangwei",
            "opportunity",
            "add",
            "--customer",
            &mine[0],
            "--name",
            "服务器扩容",
            "--amount",
            "100000",
        ],
    );
    ok(db, &["customer", "archive", &mine[1]]);
    ok(db, &["customer", "delete", &mine[2]]);
    ok(
        db,
        &[
            "pool",
            "add",
            "停用测试公海",
            "--admin",
            "zhangwei",
            "--dept",
            "华北大区",
        ],
    );
    ok(db, &["user", "edit", "wangfang", "--superior", "zhangwei"]);
    // A deactivated user reporting to them is nobody they lead.
    ok(
        db,
        &["user", "add", "xiaoli", "小李", "--superior", "zhangwei"],
    );
    ok(db, &["user", "edit", "xiaoli", "--deactivate"]);
    let said = notes(db, &["user", "edit", "zhangwei", "--deactivate"]);
    for shown in [
        "--with-documents",
        "1 opportunity",
        "1 archived",
        "1 in the recycle bin",
        "停用测试公海",
        "wangfang",
    ] {
        assert!(said.contains(shown), "{shown} in {said}");
    }
    assert!(!said.contains("xiaoli"), "{said}");
    // Without documents, the hint needs no --with-documents.
    let said = notes(db, &["user", "edit", "zengli", "--deactivate"]);
    assert!(
        said.contains("owner_id=zengli") && !said.contains("--with-documents"),
        "{said}"
    );
}

#[test]
fn cli_deactivation_notes_what_is_left_on_sqlite() {
    let (dir, db) = temp_db("users-deactivate");
    deactivation_notes(&db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_deactivation_notes_what_is_left_on_postgres() {
    common::on_postgres("cli_users_deactivate", deactivation_notes);
}

/// `user edit` changes a user's mobile and e-mail (validated as `user add`
/// validates them; `none` clears them), and `--role none` takes every role
/// away.
fn contact_details_and_roles(db: &str) {
    ok(db, &["demo"]);
    ok(
        db,
        &[
            "user",
            "edit",
            "liuyang",
            "--mobile",
            "139 1234 5678",
            "--email",
            "liuyang@example.cn",
        ],
    );
    let u = json(db, &["user", "show", "liuyang"]);
    assert_eq!(u["mobile"], "13912345678", "{u}");
    assert_eq!(u["email"], "liuyang@example.cn", "{u}");
    let e = fails(db, &["user", "edit", "liuyang", "--mobile", "12345"]);
    assert!(e.contains("mobile"), "{e}");
    let e = fails(db, &["user", "edit", "liuyang", "--email", "不是邮箱"]);
    assert!(e.contains("email"), "{e}");
    ok(
        db,
        &[
            "user", "edit", "liuyang", "--mobile", "none", "--email", "none",
        ],
    );
    let u = json(db, &["user", "show", "liuyang"]);
    assert!(u["mobile"].is_null() && u["email"].is_null(), "{u}");
    // Clearing them again changes nothing, and says so.
    let out = ok(db, &["user", "edit", "liuyang", "--mobile", "none"]);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(
        json(db, &["user", "show", "liuyang"])["version"],
        u["version"]
    );

    ok(db, &["user", "edit", "liuyang", "--role", "none"]);
    let u = json(db, &["user", "show", "liuyang"]);
    assert_eq!(u["role_ids"], serde_json::json!([]), "{u}");
    let e = fails(
        db,
        &[
            "user", "edit", "liuyang", "--role", "none", "--role", "客服",
        ],
    );
    assert!(e.contains("--role none"), "{e}");
    ok(db, &["user", "edit", "liuyang", "--role", "客服"]);
    let u = json(db, &["user", "show", "liuyang"]);
    assert_eq!(u["role_ids"].as_array().map(Vec::len), Some(1), "{u}");
}

#[test]
fn cli_user_edit_contact_details_and_no_roles_on_sqlite() {
    let (dir, db) = temp_db("users-contact");
    contact_details_and_roles(&db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_user_edit_contact_details_and_no_roles_on_postgres() {
    common::on_postgres("cli_users_contact", contact_details_and_roles);
}

/// `-w owner_id=…` names the owner by username or display name, letter case
/// and accents aside; `-w department_id=…` names a department by name, and
/// a name two departments share is refused naming both.
fn filters_name_owners_and_departments(db: &str) {
    ok(db, &["demo"]);
    ok(
        db,
        &[
            "user",
            "add",
            "emile",
            "Émile Müller",
            "--dept",
            "华北大区",
            "--role",
            "销售",
        ],
    );
    let zhang = customers_of(db, "zhangwei");
    ok(db, &["customer", "transfer", &zhang[0], "--to", "emile"]);
    for typed in ["émile müller", "Émile Müller", "EMILE", "emile muller"] {
        assert_eq!(
            customers_of(db, typed),
            vec![zhang[0].clone()],
            "owner_id={typed}"
        );
    }
    // Display names as typed, any case.
    assert_eq!(customers_of(db, "张伟").len(), zhang.len() - 1);
    assert_eq!(customers_of(db, "ZhangWei").len(), zhang.len() - 1);
    // Departments by name.
    let north = json(
        db,
        &[
            "customer",
            "list",
            "--per-page",
            "100",
            "-w",
            "department_id=华北大区",
        ],
    );
    assert_eq!(
        north["items"].as_array().map(Vec::len),
        Some(zhang.len() + customers_of(db, "wangfang").len()),
        "{north}"
    );
    ok(db, &["dept", "add", "北京组", "--parent", "华北大区"]);
    ok(db, &["dept", "add", "北京组", "--parent", "华南大区"]);
    let e = fails(db, &["customer", "list", "-w", "department_id=北京组"]);
    assert!(
        e.contains("北京组") && e.contains("华北大区") && e.contains("华南大区"),
        "{e}"
    );
    // Two users of one display name: refused, naming them.
    ok(db, &["user", "add", "emile2", "émile müller"]);
    let e = fails(db, &["customer", "list", "-w", "owner_id=EMILE MÜLLER"]);
    assert!(e.contains("emile") && e.contains("emile2"), "{e}");
    // The username still finds its user.
    assert_eq!(customers_of(db, "Emile"), vec![zhang[0].clone()]);
    // A batch on a filter reads it the same way.
    ok(
        db,
        &[
            "customer",
            "transfer",
            "--where",
            "owner_id=Émile Müller",
            "--to",
            "zhangwei",
            "--yes",
        ],
    );
    assert_eq!(customers_of(db, "zhangwei").len(), zhang.len());
}

#[test]
fn cli_filters_name_owners_and_departments_on_sqlite() {
    let (dir, db) = temp_db("users-filters");
    filters_name_owners_and_departments(&db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_filters_name_owners_and_departments_on_postgres() {
    common::on_postgres("cli_users_filters", filters_name_owners_and_departments);
}

/// The birthday list names the contact and its customer by code.
#[test]
fn cli_birthdays_show_the_contact_and_customer_codes() {
    let (dir, db) = temp_db("users-birthdays");
    let db = db.as_str();
    ok(db, &["demo"]);
    let contacts = json(db, &["contact", "list", "--per-page", "1"]);
    let contact = &contacts["items"][0];
    let code = contact["code"].as_str().expect("code").to_string();
    let customer_id = contact["fields"]["customer_id"]
        .as_str()
        .expect("customer")
        .to_string();
    let customer = json(db, &["customer", "show", &customer_id]);
    let customer_code = customer["code"].as_str().expect("code").to_string();
    // A birthday a few days ahead (not on 29 February).
    let mut ahead = 3;
    while days_from_today(ahead).ends_with("02-29") {
        ahead += 1;
    }
    let birthday = format!("1990{}", &days_from_today(ahead)[4..]);
    ok(
        db,
        &["contact", "edit", &code, &format!("birthday={birthday}")],
    );
    let table = ok(db, &["customer", "birthdays", "--days", "10"]);
    let line = table
        .lines()
        .find(|l| l.contains(&code))
        .unwrap_or_else(|| panic!("{code} in {table}"));
    assert!(line.contains(&customer_code), "{table}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `user list SEARCH` names a superior outside the results as the plain
/// list does (王芳's superior 陈静, not an id); `user edit` refuses
/// `--deactivate` with `--activate` (changing nothing) and reads
/// `--dept NONE` as `--dept none`; `dept add` refuses `none` and a name
/// holding a line break; `user.*` events name the user in `events pending`.
fn user_commands_name_and_refuse(db: &str) {
    ok(db, &["demo"]);
    let table = ok(db, &["user", "list", "王芳"]);
    let line = table
        .lines()
        .find(|l| l.contains("wangfang"))
        .unwrap_or_else(|| panic!("wangfang in {table}"));
    assert!(line.contains("陈静"), "{table}");
    let chen = json(db, &["user", "show", "chenjing"]);
    let chen_id = chen["id"].as_str().expect("id");
    assert!(!table.contains(chen_id), "{table}");

    let before = json(db, &["user", "show", "wangfang"]);
    let out = run(
        db,
        &["user", "edit", "wangfang", "--deactivate", "--activate"],
    );
    assert!(!out.status.success(), "both flags accepted");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cannot be used with"), "{said}");
    assert!(!said.contains("hand"), "{said}");
    let after = json(db, &["user", "show", "wangfang"]);
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["active"], true);

    assert!(before["department_id"].is_string(), "{before}");
    ok(db, &["user", "edit", "wangfang", "--dept", "NONE"]);
    assert!(json(db, &["user", "show", "wangfang"])["department_id"].is_null());

    let e = fails(db, &["dept", "add", "None"]);
    assert!(e.contains("none"), "{e}");
    let e = fails(db, &["dept", "add", "市场部\n财务部"]);
    assert!(e.contains("control character"), "{e}");
    let e = fails(db, &["role", "add", "none"]);
    assert!(e.contains("none"), "{e}");
    let e = fails(db, &["group", "add", "NONE"]);
    assert!(e.contains("none"), "{e}");
    let tree = ok(db, &["dept", "list"]);
    assert!(!tree.contains("财务部"), "{tree}");

    // The user's events name the user, as a department's name it.
    ok(db, &["user", "edit", "wangfang", "--name", "王芳芳"]);
    let events = ok(
        db,
        &[
            "events",
            "pending",
            "--consumer",
            "cli-users",
            "--limit",
            "100000",
        ],
    );
    let line = events
        .lines()
        .rfind(|l| l.contains("user.updated"))
        .unwrap_or_else(|| panic!("user.updated in {events}"));
    assert!(line.contains("wangfang"), "{events}");
}

#[test]
fn cli_user_commands_name_and_refuse_on_sqlite() {
    let (dir, db) = temp_db("users-name-refuse");
    user_commands_name_and_refuse(&db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_user_commands_name_and_refuse_on_postgres() {
    common::on_postgres("cli_users_name_refuse", user_commands_name_and_refuse);
}

/// Two administrators of a fresh company deactivating each other at once:
/// never a role's "changed by someone else" (nobody edited a role), and
/// the company keeps an active administrator whatever the order.
fn admins_deactivating_each_other(db: &str) {
    ok(db, &["init", "--name", "q", "--code", "C", "--admin", "a"]);
    ok(
        db,
        &["--as", "a", "user", "add", "b", "B", "--role", "管理员"],
    );
    let one = std::thread::scope(|s| {
        let x = s.spawn(|| run(db, &["--as", "a", "user", "edit", "b", "--deactivate"]));
        let y = s.spawn(|| run(db, &["--as", "b", "user", "edit", "a", "--deactivate"]));
        [x.join().expect("a"), y.join().expect("b")]
    });
    for out in &one {
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!said.contains("role "), "{said}");
    }
    // Listed by whichever of them is still active.
    let users: serde_json::Value = ["a", "b"]
        .iter()
        .find_map(|who| {
            let out = run(db, &["--json", "--as", who, "user", "list"]);
            out.status
                .success()
                .then(|| serde_json::from_slice(&out.stdout).expect("json"))
        })
        .expect("an active administrator lists the users");
    let active = users
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["active"] == true)
        .count();
    assert!(active >= 1, "{users}");
}

#[test]
fn cli_admins_deactivating_each_other_on_sqlite() {
    let (dir, db) = temp_db("users-admins-race");
    admins_deactivating_each_other(&db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn cli_admins_deactivating_each_other_on_postgres() {
    common::on_postgres("cli_users_admins_race", admins_deactivating_each_other);
}
