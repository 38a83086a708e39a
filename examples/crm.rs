//! The example CLI: every capability of the engine from a terminal.
//!
//! ```text
//! cargo run --example crm -- demo
//! cargo run --example crm -- customer list --search hwjs
//! cargo run --example crm -- --as zhangsan customer add name=某某科技有限公司 phone=010-62345678
//! cargo run --features postgres --example crm -- --db postgres://postgres@127.0.0.1/postgres demo
//! ```
//!
//! The acting user is given with `--as` (the host application's identity);
//! with `--password` (or `CRM_PASSWORD`) the CLI logs in with the local
//! password instead.

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use comfy_table::{ContentArrangement, Table as Grid, presets::UTF8_FULL_CONDENSED};
use crm::clock::Clock;
use crm::custom::{CustomFieldDef, CustomFieldType, NewCustomField};
use crm::ids::{RecordId, UserId};
use crm::org::{NewCompany, NewUser, RoleSpec, User, UserGroup, UserPatch};
use crm::store::Lifecycle;
use crm::{
    Actor, Cond, Crm, Entity, FieldRule, Fields, ListQuery, PageRequest, Permission, Record,
    ShareAccess,
};
use serde_json::{Value as Json, json};
use std::process::ExitCode;
use std::sync::Arc;

/// Prints a line on standard output. A reader that went away (`crm customer
/// list | head -3`) ends the program quietly with success, as command-line
/// tools do, instead of the panic `println!` gives on a closed pipe; any
/// other failure to write ends it with an error.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::emit(format_args!($($t)*))
    };
}

#[path = "crm_cli/sales.rs"]
mod sales;

#[cfg(feature = "xlsx")]
#[path = "crm_io/mod.rs"]
mod io_cmds;

// The engine leaves the allocator to its host. Bulk imports allocate and
// free many small values on several threads, where mimalloc is about a fifth
// faster than the system allocator (README, "Allocators").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The system clock, for the CLI (the engine itself never reads it).
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[derive(Parser)]
#[command(
    name = "crm",
    about = "An embeddable CRM engine, from the terminal",
    version
)]
struct Cli {
    /// A SQLite file path, `:memory:`, or a postgres:// URL (add `?schema=name` to pick the schema).
    #[arg(long, global = true, env = "CRM_DB", default_value = "crm.db")]
    db: String,
    /// The company code (default: the only company, or DEMO).
    #[arg(long, global = true, env = "CRM_COMPANY")]
    company: Option<String>,
    /// Act as this user (username).
    #[arg(long = "as", global = true, env = "CRM_USER", default_value = "admin")]
    user: String,
    /// Log in with this local password instead of trusting --as.
    #[arg(long, global = true, env = "CRM_PASSWORD")]
    password: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a company with its first administrator.
    Init {
        /// Company name.
        #[arg(long)]
        name: String,
        /// Company code (used to log in).
        #[arg(long)]
        code: String,
        /// Administrator username.
        #[arg(long, default_value = "admin")]
        admin: String,
        /// Administrator display name.
        #[arg(long, default_value = "管理员")]
        admin_name: String,
        /// Administrator password (for local login).
        #[arg(long)]
        admin_password: Option<String>,
    },
    /// Fills a company DEMO with realistic Chinese demo data.
    Demo,
    /// Shows who is acting and what they may do.
    Whoami,
    /// Lists the companies of the database file, for its operator: it runs
    /// before any login (as `init` and `demo` do), so `--as` does not narrow
    /// it; whoever may run the CLI on the file may read the file.
    Companies,
    /// Users (用户).
    #[command(subcommand)]
    User(UserCmd),
    /// Departments (部门).
    #[command(subcommand, alias = "department")]
    Dept(DeptCmd),
    /// Roles (角色).
    #[command(subcommand)]
    Role(RoleCmd),
    /// User groups (用户组).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Customers (客户).
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Contacts (联系人).
    #[command(subcommand)]
    Contact(RecordCmd),
    /// Follow-up records (跟进记录).
    #[command(subcommand, alias = "follow-up")]
    Followup(RecordCmd),
    /// Custom fields (自定义字段) and option lists.
    #[command(subcommand)]
    Field(FieldCmd),
    /// Outbox events for the host application.
    #[command(subcommand)]
    Events(EventsCmd),
    /// Customer pools (客户池/公海): claim, release, assign, rules, sweep.
    #[command(subcommand)]
    Pool(PoolCmd),
    /// Products (产品) and categories.
    #[command(subcommand)]
    Product(sales::ProductCmd),
    /// Sales opportunities (销售机会).
    #[command(subcommand, alias = "opp")]
    Opportunity(sales::OpportunityCmd),
    /// Quotes (报价).
    #[command(subcommand)]
    Quote(sales::QuoteCmd),
    /// Contracts (合同), payments (回款) and invoices (开票).
    #[command(subcommand)]
    Contract(sales::ContractCmd),
    /// Receivables (应收款) by customer and owner, with aging.
    Receivables,
    /// Approval flows (审批流) and approvals.
    #[command(subcommand)]
    Approval(sales::ApprovalCmd),
    /// Grants the customer roles sales rights and defines default contract
    /// and quote approval flows (administrators); roles holding sales rights
    /// already, and flows defined already, are left as they are.
    SalesSetup,
    /// Recomputes the pinyin search keys, the name sort keys and the
    /// customers' duplicate name keys of every record (administrators): run
    /// it once after upgrading.
    ///
    /// An upgrade may change how the keys are made. A database made before
    /// sort keys has records that sort after the others by name until this
    /// runs; one made before name keys folded accents and traditional
    /// Chinese (Müller GmbH and Muller GmbH, 華為技術有限公司 and
    /// 华为技术有限公司) has customers that are duplicates under the new
    /// key, and afterwards they show in `crm customer dupes` (nothing is
    /// merged or refused: merge them there).
    RebuildSearchKeys,
    /// Writes an Excel import template (导入模板) for customers, contacts, users or products.
    #[cfg(feature = "xlsx")]
    Template(io_cmds::TemplateArgs),
    /// Imports an Excel workbook (导入); `--undo ID` undoes one, `--list` lists them.
    #[cfg(feature = "xlsx")]
    Import(io_cmds::ImportArgs),
    /// Exports the records you may see to an Excel workbook (导出).
    #[cfg(feature = "xlsx")]
    Export(io_cmds::ExportArgs),
    /// Benchmarks Excel import and export against calamine, rusqlite and rust_xlsxwriter.
    #[cfg(feature = "xlsx")]
    BenchIo(io_cmds::BenchArgs),
}

#[derive(Subcommand)]
enum UserCmd {
    /// Adds a user.
    Add {
        /// Login name.
        username: String,
        /// Display name.
        name: String,
        /// Department (name or id).
        #[arg(long)]
        dept: Option<String>,
        /// Superior (username).
        #[arg(long)]
        superior: Option<String>,
        /// Roles (names), repeatable.
        #[arg(long)]
        role: Vec<String>,
        /// E-mail.
        #[arg(long)]
        email: Option<String>,
        /// Mobile.
        #[arg(long)]
        mobile: Option<String>,
        /// Initial password.
        #[arg(long)]
        set_password: Option<String>,
    },
    /// Lists users, optionally matching a name or pinyin.
    List {
        /// Search text.
        search: Option<String>,
    },
    /// Shows a user.
    Show {
        /// Username.
        username: String,
    },
    /// Changes a user.
    Edit {
        /// Username.
        username: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Department (name or id; "none" clears).
        #[arg(long)]
        dept: Option<String>,
        /// Superior (username; "none" clears).
        #[arg(long)]
        superior: Option<String>,
        /// Roles (names), replacing the current ones ("none" takes every
        /// role away).
        #[arg(long)]
        role: Vec<String>,
        /// E-mail ("none" clears).
        #[arg(long)]
        email: Option<String>,
        /// Mobile ("none" clears).
        #[arg(long)]
        mobile: Option<String>,
        /// Deactivate the user.
        #[arg(long, conflicts_with = "activate")]
        deactivate: bool,
        /// Activate the user.
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
    },
    /// Sets a user's password (administrators).
    Passwd {
        /// Username.
        username: String,
        /// The new password. (Not named `password`: that is the global
        /// `--password` the CLI logs in with, which clap would merge it
        /// into.)
        #[arg(value_name = "PASSWORD")]
        new_password: String,
    },
    /// Changes your own password.
    ChangePassword {
        /// The current password.
        current: String,
        /// The new password.
        new: String,
    },
}

#[derive(Subcommand)]
enum DeptCmd {
    /// Adds a department.
    Add {
        /// Name.
        name: String,
        /// Parent (name or id).
        #[arg(long)]
        parent: Option<String>,
    },
    /// Lists departments as a tree.
    List,
    /// Renames or moves a department.
    Edit {
        /// Department (name or id).
        dept: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New parent (name or id).
        #[arg(long)]
        parent: Option<String>,
    },
    /// Deletes an empty department.
    Delete {
        /// Department (name or id).
        dept: String,
    },
}

#[derive(Subcommand)]
enum RoleCmd {
    /// Adds a role. Permissions look like `customer:read:department_tree`,
    /// field rules like `contact.mobile=masked`.
    Add {
        /// Name.
        name: String,
        /// Grants, repeatable.
        #[arg(long = "perm")]
        permissions: Vec<String>,
        /// Field rules, repeatable.
        #[arg(long = "field")]
        fields: Vec<String>,
        /// Administrator role.
        #[arg(long)]
        admin: bool,
    },
    /// Lists roles.
    List,
    /// Replaces a role's grants, or its field rules, or both: what is not
    /// given is kept; `--perm none` / `--field none` clears it.
    Edit {
        /// Role name.
        name: String,
        /// Grants, repeatable (replacing all; `none` for no grant).
        #[arg(long = "perm")]
        permissions: Vec<String>,
        /// Field rules, repeatable (replacing all; `none` for no rule).
        #[arg(long = "field")]
        fields: Vec<String>,
    },
    /// Deletes a role that no user holds and no active approval flow names.
    Delete {
        /// Role name or id.
        name: String,
    },
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Adds a group.
    Add {
        /// Name.
        name: String,
        /// Members (usernames).
        members: Vec<String>,
    },
    /// Lists groups.
    List,
    /// Replaces a group's members: `group edit 华北组 zhangwei wangfang`
    /// (`group edit 华北组 none` empties it).
    Edit {
        /// Group name or id.
        name: String,
        /// Members (usernames), or `none` to empty the group.
        members: Vec<String>,
    },
    /// Deletes a group (shares made with it stay with its members).
    Delete {
        /// Group name or id.
        name: String,
    },
}

#[derive(Args, Clone)]
struct ListArgs {
    /// Conditions like `level=A`, `name~科技`, `contacts.mobile^138`, `city:null`; repeatable.
    #[arg(long = "where", short = 'w')]
    conditions: Vec<String>,
    /// Fuzzy search, pinyin initials included (e.g. hwjs).
    #[arg(long, short = 's')]
    search: Option<String>,
    /// Sort keys like `name` or `-created_at`; repeatable.
    #[arg(long, allow_hyphen_values = true)]
    sort: Vec<String>,
    /// Page number (from 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    page: u64,
    /// Rows per page.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    per_page: u64,
    /// Keyset paging: continue after this cursor ("" for the first page).
    #[arg(long)]
    after: Option<String>,
    /// Show the recycle bin.
    #[arg(long)]
    deleted: bool,
    /// Show archived records (history).
    #[arg(long)]
    archived: bool,
}

/// The customer commands: those of every record, and the customer-only ones.
#[derive(Subcommand)]
enum CustomerCmd {
    #[command(flatten)]
    Record(RecordCmd),
    #[command(flatten)]
    Extra(CustomerExtraCmd),
}

/// The commands only customers have.
#[derive(Subcommand)]
enum CustomerExtraCmd {
    /// The duplicate report, a check before creating
    /// (`--check name=… phone=…`), the duplicates of one customer (`--of`),
    /// and the duplicate settings (`--rules`, `--set email=block`).
    Dupes {
        /// Only these key fields (name, uscc, phone, email, custom.key).
        #[arg(long)]
        field: Vec<String>,
        /// Check these `field=value` pairs against the customers.
        #[arg(long, num_args = 1..)]
        check: Vec<String>,
        /// The duplicates of this customer (id or code).
        #[arg(long)]
        of: Option<String>,
        /// Show the duplicate settings.
        #[arg(long)]
        rules: bool,
        /// Change a setting: `field=block|warn|off` (administrators).
        #[arg(long)]
        set: Vec<String>,
        /// Recompute every key and flag (administrators).
        #[arg(long)]
        rebuild: bool,
        /// Continue the report after this cursor.
        #[arg(long)]
        after: Option<String>,
        /// Groups per page.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Merges others into a survivor (合并), choosing fields.
    Merge {
        /// The customer that stays (id or code).
        survivor: String,
        /// The customers merged into it.
        #[arg(required = true)]
        others: Vec<String>,
        /// `field=CODE`: take this field from that customer; repeatable.
        #[arg(long)]
        take: Vec<String>,
    },
    /// The 360° view (360°客户视图).
    View {
        /// Id or code.
        record: String,
    },
    /// Due for follow-up today, or overdue.
    Due {
        /// Overdue instead of today.
        #[arg(long)]
        overdue: bool,
        /// Page number (from 1).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
        /// Rows per page.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        per_page: u64,
    },
    /// Contacts with a birthday in the next days.
    Birthdays {
        /// How many days ahead.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// About to be recycled to the pool within days.
    Expiring {
        /// How many days ahead.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Transferred or assigned to you in the last days.
    Transferred {
        /// How many days back.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Page number (from 1).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
        /// Rows per page.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        per_page: u64,
    },
}

#[derive(Subcommand)]
enum RecordCmd {
    /// Adds a record from `field=value` pairs (API names or Chinese labels).
    Add {
        /// `field=value` pairs.
        fields: Vec<String>,
        /// For customers: a contact as `name=…,mobile=…`; repeatable. A comma
        /// starts the next pair only when followed by `key=` (key: letters,
        /// digits, `_`, `.` or CJK); otherwise it is part of the value, as
        /// in `tags=重点,华北`.
        #[arg(long)]
        contact: Vec<String>,
    },
    /// Changes fields of a record.
    Edit {
        /// Id or code.
        record: String,
        /// `field=value` pairs (`field=` clears).
        fields: Vec<String>,
        /// The version you read; refused if someone changed it since.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Shows a record.
    Show {
        /// Id or code.
        record: String,
    },
    /// Lists records.
    List(ListArgs),
    /// Searches records by name, code, phone or pinyin.
    Search {
        /// The text.
        text: String,
        /// Page number (from 1).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
        /// Rows per page.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        per_page: u64,
    },
    /// Moves records to the recycle bin.
    Delete {
        /// Ids or codes.
        records: Vec<String>,
        /// Or every record you can see matching a filter.
        #[command(flatten)]
        select: SelectArgs,
        /// With --where/--search: act even when the filter selects more
        /// than one record.
        #[arg(long)]
        yes: bool,
    },
    /// Restores records from the recycle bin.
    Restore {
        /// Ids or codes.
        records: Vec<String>,
    },
    /// Removes deleted records for good.
    Purge {
        /// Ids or codes.
        records: Vec<String>,
    },
    /// Moves records to history (转移到历史库).
    Archive {
        /// Ids or codes.
        records: Vec<String>,
        /// Or every record you can see matching a filter.
        #[command(flatten)]
        select: SelectArgs,
        /// With --where/--search: act even when the filter selects more
        /// than one record.
        #[arg(long)]
        yes: bool,
    },
    /// Brings archived records back from history (恢复归档).
    Unarchive {
        /// Ids or codes of archived records.
        records: Vec<String>,
    },
    /// Transfers records to another owner.
    Transfer {
        /// Ids or codes.
        records: Vec<String>,
        /// The new owner (username).
        #[arg(long)]
        to: String,
        /// Customers only: also the opportunities, quotes and contracts
        /// their former owner held on them (同时转移商机、报价、合同).
        #[arg(long)]
        with_documents: bool,
        /// Or every record you can see matching a filter.
        #[command(flatten)]
        select: SelectArgs,
        /// With --where/--search: act even when the filter selects more
        /// than one record.
        #[arg(long)]
        yes: bool,
    },
    /// Shares records with a user.
    Share {
        /// Ids or codes.
        records: Vec<String>,
        /// Or every record you can see matching a filter.
        #[command(flatten)]
        select: SelectArgs,
        /// The user (username).
        #[arg(long, required_unless_present = "group", conflicts_with = "group")]
        with: Option<String>,
        /// Or every active member of a user group (name or id).
        #[arg(long)]
        group: Option<String>,
        /// read or write.
        #[arg(long, default_value = "read")]
        access: String,
        /// When the share ends: a date alone (2026-12-31) means through that
        /// day; or a date and time (2026-12-31 18:00).
        #[arg(long)]
        until: Option<String>,
    },
    /// Ends a share.
    Unshare {
        /// Id or code.
        record: String,
        /// The user (username).
        #[arg(long)]
        with: String,
    },
    /// Lists a record's live shares: with whom, the access, until when.
    Shares {
        /// Id or code.
        record: String,
    },
    /// Shows who changed what.
    History {
        /// Id or code.
        record: String,
    },
}

#[derive(Subcommand)]
enum FieldCmd {
    /// Adds a custom field: `field add customer erp_code ERP编码 --type text`.
    Add {
        /// customer, contact or follow_up.
        entity: String,
        /// Key (a-z, 0-9, _).
        key: String,
        /// Label.
        label: String,
        /// text, number, money, date, select, multi_select, user, boolean.
        #[arg(long = "type", default_value = "text")]
        field_type: String,
        /// Options for select fields, comma separated.
        #[arg(long)]
        options: Option<String>,
        /// Required.
        #[arg(long)]
        required: bool,
        /// Unique among the company's records.
        #[arg(long)]
        unique: bool,
    },
    /// Lists the fields of an entity, built-in and custom.
    List {
        /// customer, contact or follow_up.
        entity: String,
    },
    /// Changes a custom field: its label, options or required flag, e.g.
    /// `field edit customer region --label 销售区域 --options 华东,华北,西南`.
    /// An option records still hold (archived or in the recycle bin too)
    /// cannot be removed: change them first.
    Edit {
        /// The entity.
        entity: String,
        /// The key.
        key: String,
        /// A new label.
        #[arg(long)]
        label: Option<String>,
        /// A new English label (empty: none).
        #[arg(long)]
        label_en: Option<String>,
        /// Every option of a select field, comma separated, in order.
        #[arg(long)]
        options: Option<String>,
        /// Whether a value is required (true or false).
        #[arg(long)]
        required: Option<bool>,
        /// The version you read (`field list --json`); refused if the field
        /// changed since.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Removes a custom field.
    Delete {
        /// The entity.
        entity: String,
        /// The key.
        key: String,
        /// The version you read (`field list --json`); refused if the field
        /// was deleted (or defined again) since.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Shows or sets the options of a built-in choice field, e.g. customer
    /// categories: without options it prints the current list and its
    /// version.
    Options {
        /// The entity.
        entity: String,
        /// The field (e.g. category).
        field: String,
        /// New options, comma separated (none given: show the current ones).
        options: Option<String>,
        /// The version of the list you read; refused if someone set the
        /// options since (0: the defaults, no list set yet).
        #[arg(long)]
        version: Option<i64>,
    },
}

#[derive(Subcommand)]
enum EventsCmd {
    /// Events of your company not yet acknowledged by a consumer
    /// (administrators). The outbox is the host application's queue for the
    /// whole database; the consumer's position here is its own for your
    /// company, so other companies' events are neither shown nor skipped.
    Pending {
        /// The consumer name.
        #[arg(long, default_value = "erp")]
        consumer: String,
        /// At most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
    },
    /// Acknowledges your company's events up to a sequence number
    /// (administrators). Only the consumer's position for your company
    /// moves: other companies' events stay pending for them.
    Ack {
        /// The consumer name.
        #[arg(long, default_value = "erp")]
        consumer: String,
        /// The last processed sequence number.
        seq: i64,
    },
}

type CliResult<T = ()> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Writes one line of output for [`out!`].
fn emit(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            std::process::exit(1);
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refuses: help and version as clap prints them, any
/// other problem in one line (clap's own first line, which names it) with
/// where to look, and exit code 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // Clap's message up to its usage block (a missing argument's name and
    // the possible values come on the lines after the first), in one line.
    let text = e.render().to_string();
    let said: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let said = if said.is_empty() {
        "error: the command line is not understood".to_string()
    } else {
        said.join(" ")
    };
    eprintln!("{said} (see `crm --help`, or `--help` after the command)");
    ExitCode::from(2)
}

struct Ctx {
    crm: Crm,
    json: bool,
    /// How the command line named the records it resolved (a code, or the
    /// id as typed), so that reports name them the same way: a record the
    /// actor may not see is told as the code they typed, never by its id.
    named: std::sync::Mutex<std::collections::HashMap<RecordId, String>>,
}

async fn run(cli: Cli) -> CliResult {
    #[cfg(feature = "xlsx")]
    let cli = match cli.command {
        Command::BenchIo(a) => return io_cmds::bench(cli.json, a).await,
        command => Cli { command, ..cli },
    };
    // Only `init` and `demo` make a database: any other command naming a
    // file or schema that is not there (a typo in `--db`) would otherwise
    // leave an empty database behind and say there is no company in it.
    if !matches!(cli.command, Command::Init { .. } | Command::Demo)
        && !crm::store_exists(&cli.db)
            .await
            .map_err(|e| format!("cannot open {}: {e}", cli.db))?
    {
        return Err(format!(
            "there is no database at {}: check the location given with --db (or CRM_DB; for \
             PostgreSQL its ?schema=), or create one with `crm --db '{}' init …` or `crm --db \
             '{}' demo`",
            cli.db, cli.db, cli.db
        ));
    }
    let store = crm::open_store(&cli.db)
        .await
        .map_err(|e| format!("cannot open {}: {e}", cli.db))?;
    let ctx = Ctx {
        crm: Crm::new(store, Arc::new(SystemClock)),
        json: cli.json,
        named: Default::default(),
    };
    let done = dispatch(&ctx, cli).await;
    done.map_err(|m| ctx.with_names(&m))
}

/// Runs a command.
async fn dispatch(ctx: &Ctx, cli: Cli) -> CliResult {
    match &cli.command {
        Command::Init {
            name,
            code,
            admin,
            admin_name,
            admin_password,
        } => {
            let (company, _) = ctx
                .crm
                .bootstrap(NewCompany {
                    name: name.clone(),
                    code: code.clone(),
                    admin_username: admin.clone(),
                    admin_display_name: admin_name.clone(),
                    admin_password: admin_password.clone(),
                })
                .await
                .map_err(err)?;
            ctx.print(json!(company), || {
                format!(
                    "created company {} ({}) with administrator {admin}",
                    company.name, company.code
                )
            });
            return Ok(());
        }
        Command::Demo => return demo(ctx).await,
        Command::Companies => {
            let list = ctx.crm.list_companies().await.map_err(err)?;
            ctx.table(
                json!(list),
                &["code", "name", "id"],
                list.iter()
                    .map(|c| vec![c.code.clone(), c.name.clone(), c.id.to_string()])
                    .collect(),
            );
            return Ok(());
        }
        _ => {}
    }
    let actor = login(ctx, &cli).await?;
    match cli.command {
        Command::Whoami => {
            let user = ctx.crm.user(&actor, actor.user_id).await.map_err(err)?;
            let company = ctx.crm.company(actor.company_id).await.map_err(err)?;
            let mut lines = vec![format!(
                "{} ({}), company {} {}",
                user.display_name, user.username, company.code, company.name
            )];
            for e in Entity::ALL {
                let grants: Vec<String> = crm::Action::ALL
                    .iter()
                    .filter_map(|a| actor.scope_for(e, *a).map(|s| format!("{a}:{}", s.name())))
                    .collect();
                if !grants.is_empty() {
                    lines.push(format!("  {:<13} {}", e.name(), grants.join(" ")));
                }
            }
            let role_names: Vec<&str> = actor.roles.iter().map(|r| r.name.as_str()).collect();
            lines.push(format!(
                "  roles 角色    {}",
                if role_names.is_empty() {
                    "(none 无)".to_string()
                } else {
                    role_names.join(", ")
                }
            ));
            // The field rules in force: per entity, each field not fully
            // accessible, its access and the roles it comes from (a user
            // without roles is held to the strictest rule of the company's
            // roles).
            let mut rules = Vec::new();
            let mut rule_lines = Vec::new();
            for e in Entity::ALL {
                let restricted = actor.restricted_fields(e);
                if restricted.is_empty() {
                    continue;
                }
                let customs = if restricted.iter().any(|(f, _)| f.starts_with("custom.")) {
                    ctx.crm.custom_fields(&actor, e).await.map_err(err)?
                } else {
                    Vec::new()
                };
                let mut shown = Vec::new();
                for (field, access) in restricted {
                    let label = match field.strip_prefix("custom.") {
                        Some(key) => customs
                            .iter()
                            .find(|d| d.key == key)
                            .map(|d| d.label.clone()),
                        None => e
                            .field(&field)
                            .or_else(|| {
                                // Products' fields are the catalogue's.
                                crm::import::import_fields(e)
                                    .into_iter()
                                    .find(|d| d.name == field)
                            })
                            .map(|d| d.zh.to_string()),
                    };
                    let access_zh = access.name_zh();
                    let from = actor.restricting_roles(e, &field);
                    let why = if from.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", from.join(", "))
                    };
                    shown.push(format!(
                        "{field}{} {} {access_zh}{why}",
                        label.as_ref().map(|l| format!(" {l}")).unwrap_or_default(),
                        access.name(),
                    ));
                    rules.push(json!({
                        "entity": e.name(),
                        "field": field,
                        "label": label,
                        "access": access.name(),
                        "roles": from,
                    }));
                }
                rule_lines.push(format!("    {:<11} {}", e.name(), shown.join("; ")));
            }
            if !rule_lines.is_empty() {
                lines.push(if actor.roles.is_empty() {
                    "  field rules 字段规则 (no roles: the strictest rule of the company's roles 无角色：按公司角色中最严格的规则)".to_string()
                } else {
                    "  field rules 字段规则 (from the roles in brackets 括号内为规则所在角色)"
                        .to_string()
                });
                lines.extend(rule_lines);
            }
            ctx.print(
                json!({
                    "user": user,
                    "company": company,
                    "admin": actor.is_admin(),
                    "roles": role_names,
                    "field_rules": rules,
                }),
                || lines.join("\n"),
            );
        }
        Command::User(cmd) => user_cmd(ctx, &actor, cmd).await?,
        Command::Dept(cmd) => dept_cmd(ctx, &actor, cmd).await?,
        Command::Role(cmd) => role_cmd(ctx, &actor, cmd).await?,
        Command::Group(cmd) => group_cmd(ctx, &actor, cmd).await?,
        Command::Customer(CustomerCmd::Record(cmd)) => {
            record_cmd(ctx, &actor, Entity::Customer, cmd).await?
        }
        Command::Customer(CustomerCmd::Extra(cmd)) => customer_extra_cmd(ctx, &actor, cmd).await?,
        Command::Contact(cmd) => record_cmd(ctx, &actor, Entity::Contact, cmd).await?,
        Command::Followup(cmd) => record_cmd(ctx, &actor, Entity::FollowUp, cmd).await?,
        Command::Field(cmd) => field_cmd(ctx, &actor, cmd).await?,
        Command::Events(cmd) => events_cmd(ctx, &actor, cmd).await?,
        Command::Pool(cmd) => pool_cmd(ctx, &actor, cmd).await?,
        Command::Product(cmd) => sales::product_cmd(ctx, &actor, cmd).await?,
        Command::Opportunity(cmd) => sales::opportunity_cmd(ctx, &actor, cmd).await?,
        Command::Quote(cmd) => sales::quote_cmd(ctx, &actor, cmd).await?,
        Command::Contract(cmd) => sales::contract_cmd(ctx, &actor, cmd).await?,
        Command::Receivables => sales::receivables_cmd(ctx, &actor).await?,
        Command::Approval(cmd) => sales::approval_cmd(ctx, &actor, cmd).await?,
        Command::SalesSetup => sales::sales_setup(ctx, &actor).await?,
        Command::RebuildSearchKeys => {
            let st = ctx.crm.rebuild_search_keys(&actor).await.map_err(err)?;
            ctx.print(json!(st), || {
                format!(
                    "search keys: {} rows looked at, {} brought up to date",
                    st.rows, st.updated
                )
            });
        }
        #[cfg(feature = "xlsx")]
        Command::Template(a) => io_cmds::template(ctx, &actor, a).await?,
        #[cfg(feature = "xlsx")]
        Command::Import(a) => io_cmds::import(ctx, &actor, a).await?,
        #[cfg(feature = "xlsx")]
        Command::Export(a) => io_cmds::export(ctx, &actor, a).await?,
        #[cfg(feature = "xlsx")]
        Command::BenchIo(_) => {}
        Command::Init { .. } | Command::Demo | Command::Companies => {}
    }
    Ok(())
}

async fn company_code(ctx: &Ctx, cli: &Cli) -> CliResult<String> {
    if let Some(c) = &cli.company {
        return Ok(c.clone());
    }
    let companies = ctx.crm.list_companies().await.map_err(err)?;
    match companies.as_slice() {
        [] => Err(format!(
            "{} has no company yet; run `crm demo` or `crm init --name … --code …` first",
            cli.db
        )),
        [one] => Ok(one.code.clone()),
        many => {
            if many.iter().any(|c| c.code == "DEMO") {
                Ok("DEMO".into())
            } else {
                Err(format!(
                    "several companies ({}); choose one with --company",
                    many.iter()
                        .map(|c| c.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
}

async fn login(ctx: &Ctx, cli: &Cli) -> CliResult<Actor> {
    let code = company_code(ctx, cli).await?;
    if let Some(p) = &cli.password {
        return ctx.crm.authenticate(&code, &cli.user, p).await.map_err(err);
    }
    let company = ctx.crm.company_by_code(&code).await.map_err(err)?;
    let user = find_user_in(ctx, company.id, &cli.user)
        .await
        .map_err(|_| format!("no user '{}' in company {}", cli.user, company.code))?;
    ctx.crm.actor(user).await.map_err(err)
}

/// Finds a user id by username (letter case aside) in a company without an
/// actor yet: the CLI plays the host application, which knows who is
/// logged in.
async fn find_user_in(
    ctx: &Ctx,
    company: crm::ids::CompanyId,
    username: &str,
) -> CliResult<UserId> {
    ctx.crm
        .user_id_by_login(company, username)
        .await
        .map_err(err)?
        .ok_or_else(|| format!("no user '{username}' in company {company}"))
}

impl Ctx {
    /// Remembers how the command line named a record.
    fn name(&self, id: RecordId, key: &str) {
        if let Ok(mut named) = self.named.lock() {
            named.insert(id, key.trim().to_string());
        }
    }

    /// A message with the ids of the records the command line named by
    /// code told by those codes.
    fn with_names(&self, message: &str) -> String {
        let Ok(named) = self.named.lock() else {
            return message.to_string();
        };
        let mut out = message.to_string();
        for (id, name) in named.iter() {
            out = out.replace(&id.to_string(), name);
        }
        out
    }

    /// How the command line named a record (its id when it named none).
    fn name_of(&self, id: RecordId) -> String {
        self.named
            .lock()
            .ok()
            .and_then(|n| n.get(&id).cloned())
            .unwrap_or_else(|| id.to_string())
    }

    fn print(&self, value: Json, human: impl FnOnce() -> String) {
        if self.json {
            out!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        } else {
            out!("{}", human());
        }
    }

    fn table(&self, value: Json, header: &[&str], rows: Vec<Vec<String>>) {
        if self.json {
            out!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            return;
        }
        let mut t = Grid::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(header.to_vec());
        for r in rows {
            t.add_row(r);
        }
        out!("{t}");
    }
}

fn users_by_id(users: &[User]) -> impl Fn(Option<UserId>) -> String + '_ {
    move |id| match id {
        Some(id) => users
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.display_name.clone())
            .unwrap_or_else(|| id.to_string()),
        None => String::new(),
    }
}

/// How the command line names the ids a record holds, for people: users
/// by display name, departments and pools by name, customers and contacts
/// by code and name where the actor may read them, else a placeholder —
/// never the id.
struct Names {
    users: Vec<User>,
    departments: std::collections::HashMap<crm::Uuid, String>,
    pools: std::collections::HashMap<crm::Uuid, String>,
    /// Records looked up so far, by id: code and name, none when the
    /// actor may not read the record.
    records: std::collections::HashMap<crm::Uuid, Option<(String, String)>>,
}

impl Names {
    /// The company's users, departments and pools, read once.
    async fn load(ctx: &Ctx, actor: &Actor) -> CliResult<Names> {
        use crm::store::Select;
        let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
        // Every department and pool of the company, deleted ones too (a
        // history names the department or pool a record left), and pools
        // the actor is no member of (a customer they may read names its
        // pool).
        let names_of = |table| async move {
            let mut sel = Select::all(table, actor.company_id.0, ctx.crm.now());
            sel.lifecycle = Lifecycle::Any;
            Ok::<_, String>(
                ctx.crm
                    .store()
                    .select(&sel)
                    .await
                    .map_err(err)?
                    .rows
                    .iter()
                    .map(|r| {
                        (
                            r.id(),
                            r.get("name").as_text().unwrap_or_default().to_string(),
                        )
                    })
                    .collect::<std::collections::HashMap<_, _>>(),
            )
        };
        let departments = names_of(crm::schema::Table::Departments).await?;
        let pools = names_of(crm::schema::Table::Pools).await?;
        Ok(Names {
            users,
            departments,
            pools,
            records: Default::default(),
        })
    }

    /// A user by display name (empty for none).
    fn user(&self, id: Option<UserId>) -> String {
        users_by_id(&self.users)(id)
    }

    /// The code and name (as the actor sees it) of the `target` record
    /// with the id `id`; none when the actor may not read it (or it is
    /// gone: the core does not tell them apart).
    async fn readable(
        &mut self,
        ctx: &Ctx,
        actor: &Actor,
        target: Entity,
        id: &str,
    ) -> Option<(String, String)> {
        let uuid = crm::Uuid::parse_str(id.trim()).ok()?;
        if let Some(known) = self.records.get(&uuid) {
            return known.clone();
        }
        let found = ctx
            .crm
            .get_record(actor, target, RecordId(uuid))
            .await
            .ok()
            .map(|r| {
                (
                    r.code.clone().unwrap_or_default(),
                    r.text("name").unwrap_or_default().to_string(),
                )
            });
        self.records.insert(uuid, found.clone());
        found
    }

    /// A customer or contact as `code name` when the actor may read it,
    /// else [`hidden`]: its id is not told. A text that is no id (a masked
    /// value, say) as it is.
    async fn record(&mut self, ctx: &Ctx, actor: &Actor, target: Entity, id: &str) -> String {
        if crm::Uuid::parse_str(id.trim()).is_err() {
            return id.to_string();
        }
        match self.readable(ctx, actor, target, id).await {
            Some((code, name)) => [code, name]
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            None => hidden(target),
        }
    }

    /// A value of `field` of an `entity` record (a field's API name, a
    /// record column such as `owner_id` or `deleted_at`, or `custom.key`)
    /// for people: ids by name, money custom fields in yuan, instants in
    /// local time.
    async fn value(
        &mut self,
        ctx: &Ctx,
        actor: &Actor,
        entity: Entity,
        customs: &[CustomFieldDef],
        field: &str,
        v: &Json,
    ) -> String {
        let text = v.as_str();
        let id = || text.and_then(|t| crm::Uuid::parse_str(t).ok());
        if v.is_null() {
            return String::new();
        }
        if let Some(key) = field.strip_prefix("custom.") {
            let user_field = customs
                .iter()
                .any(|d| d.key == key && d.field_type == CustomFieldType::User);
            return match id() {
                Some(u) if user_field => self.user(Some(UserId(u))),
                _ => custom_cell(customs, key, v),
            };
        }
        match field {
            "owner_id" | "created_by" | "updated_by" | "deleted_by" => {
                return match id() {
                    Some(u) => self.user(Some(UserId(u))),
                    None => cell(Some(v)),
                };
            }
            // The users whose shares a transfer or a release ended.
            "shares" => {
                if let Some(users) = v.as_array() {
                    return users
                        .iter()
                        .map(
                            |u| match u.as_str().and_then(|t| crm::Uuid::parse_str(t).ok()) {
                                Some(u) => self.user(Some(UserId(u))),
                                None => cell(Some(u)),
                            },
                        )
                        .collect::<Vec<_>>()
                        .join(", ");
                }
            }
            "department_id" => {
                if let Some(name) = id().and_then(|d| self.departments.get(&d)) {
                    return name.clone();
                }
            }
            "pool_id" if entity == Entity::Customer => {
                if let Some(name) = id().and_then(|p| self.pools.get(&p)) {
                    return name.clone();
                }
            }
            _ => {}
        }
        if let (Some(def), Some(t)) = (entity.field(field), text)
            && let crm::entity::FieldKind::Ref(target) = def.kind
        {
            return self.record(ctx, actor, target, t).await;
        }
        match text {
            // Instants (deleted, archived, owned since …) in local time.
            Some(t) => local_text(ctx, t),
            None => cell(Some(v)),
        }
    }

    /// A custom field's label (its key when it has none).
    fn custom_label(customs: &[CustomFieldDef], key: &str) -> String {
        customs
            .iter()
            .find(|d| d.key == key)
            .map(|d| d.label.clone())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| key.to_string())
    }
}

/// How many times a change given without a version (an edit without
/// `--version`, a pool's settings) is applied again to the record as it is
/// now after a colleague's change reached it first: enough for a dozen
/// people at one record at once.
const EDIT_TRIES: u32 = 16;

/// A short pause before such a change is tried again: longer each time, and
/// spread by the clock's nanoseconds, so that writers who met once do not
/// meet again in step.
fn back_off(attempt: u32) {
    let spread = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos() % 8));
    std::thread::sleep(std::time::Duration::from_millis(
        u64::from(attempt.min(8)) * 4 + spread,
    ));
}

/// The version an edit's own write produced. `update_record` writes the
/// version after the one it was given (`expected`) and then reads the
/// record again, by which time another edit may have moved it on; an edit
/// that changed nothing wrote nothing and hands back the version it read.
fn written_version(expected: i64, read_back: i64) -> i64 {
    if read_back > expected {
        expected + 1
    } else {
        read_back
    }
}

/// The custom field of `e` keyed `key` (`custom.` prefix optional).
async fn custom_field_named(
    ctx: &Ctx,
    actor: &crm::Actor,
    e: Entity,
    key: &str,
) -> CliResult<CustomFieldDef> {
    let key = key.strip_prefix("custom.").unwrap_or(key);
    ctx.crm
        .custom_fields(actor, e)
        .await
        .map_err(err)?
        .into_iter()
        .find(|d| d.key == key)
        .ok_or_else(|| format!("{e} has no custom field '{key}'"))
}

/// A 360° view section's count: what the user sees, and how many more
/// the customer has that they may not see.
fn section_count(s: &crm::view::ViewSection) -> String {
    if s.hidden > 0 {
        format!("{}; {} more not shown to you", s.total, s.hidden)
    } else {
        s.total.to_string()
    }
}

/// What stands for a record the actor may not read, in place of its id
/// (as exports write it).
fn hidden(target: Entity) -> String {
    crm::export::hidden_record(target)
}

/// The record an event is about as users know it: what its payload names
/// it by (`code`, `document_code` for approvals, a username or a name),
/// else the id.
fn event_record(e: &crm::store::NewEvent) -> String {
    let payload = e.payload.to_value();
    // A custom field by its entity, key and label.
    if let (true, Some(entity), Some(key)) = (
        e.event_type.starts_with("custom_field."),
        payload["entity"].as_str(),
        payload["key"].as_str(),
    ) {
        let label = payload["label"].as_str().unwrap_or_default();
        return format!("{entity}.{key} ({label})");
    }
    // By what the event says of it: a code, a username, a name.
    let named = ["code", "document_code", "username", "name", "contract_code"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
        .filter(|c| !c.is_empty())
        .map_or_else(|| e.record_id.to_string(), str::to_string);
    // A transfer or a reassignment: from whom to whom, by username.
    let who = |k: &str| match &payload[k] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => Some(
            a.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    };
    match (e.event_type.as_str(), payload["step"].as_str()) {
        ("approval.reassigned", step) => format!(
            "{named} {}: {} → {}",
            step.unwrap_or_default(),
            who("from").unwrap_or_default(),
            who("to").unwrap_or_default()
        ),
        (t, _) if t.ends_with(".transferred") => format!(
            "{named}: {} → {}",
            who("from_username").unwrap_or_else(|| "-".into()),
            who("to_username").unwrap_or_default()
        ),
        _ => named,
    }
}

/// A pool's limits as users read them, e.g. `每人上限 50, 每日领取 5, 冷却 7 天`;
/// `不限` when there are none.
fn limits_text(l: &crm::pool::PoolLimits) -> String {
    let mut parts = Vec::new();
    if let Some(n) = l.max_owned_per_user {
        parts.push(format!("每人上限 {n}"));
    }
    if let Some(n) = l.max_owned_per_department {
        parts.push(format!("每部门上限 {n}"));
    }
    if (l.max_owned_per_user.is_some() || l.max_owned_per_department.is_some())
        && l.deals_count_toward_cap
    {
        parts.push("成交客户计入上限".to_string());
    }
    if let Some(n) = l.max_claims_per_day {
        parts.push(format!("每日领取 {n}"));
    }
    if let Some(n) = l.max_per_claim {
        parts.push(format!("每次领取 {n}"));
    }
    if l.reclaim_cooldown_days > 0 {
        parts.push(format!("冷却 {} 天", l.reclaim_cooldown_days));
    }
    if l.warn_days > 0 {
        parts.push(format!("回收前 {} 天提醒", l.warn_days));
    }
    if parts.is_empty() {
        "不限".to_string()
    } else {
        parts.join(", ")
    }
}

async fn resolve_user(ctx: &Ctx, actor: &Actor, key: &str) -> CliResult<User> {
    ctx.crm.resolve_user(actor, key).await.map_err(err)
}

async fn user_cmd(ctx: &Ctx, actor: &Actor, cmd: UserCmd) -> CliResult {
    match cmd {
        UserCmd::Add {
            username,
            name,
            dept,
            superior,
            role,
            email,
            mobile,
            set_password,
        } => {
            let department_id = match dept {
                Some(d) => Some(ctx.crm.resolve_department(actor, &d).await.map_err(err)?.id),
                None => actor.department_id,
            };
            let superior_id = match superior {
                Some(s) => Some(resolve_user(ctx, actor, &s).await?.id),
                None => None,
            };
            let mut role_ids = Vec::new();
            for r in role {
                role_ids.push(ctx.crm.resolve_role(actor, &r).await.map_err(err)?.id);
            }
            let u = ctx
                .crm
                .create_user(
                    actor,
                    NewUser {
                        username,
                        display_name: name,
                        department_id,
                        superior_id,
                        role_ids,
                        email,
                        mobile,
                        password: set_password,
                    },
                )
                .await
                .map_err(err)?;
            ctx.print(json!(u), || {
                format!("added user {} ({})", u.username, u.display_name)
            });
        }
        UserCmd::List { search } => {
            let users = ctx
                .crm
                .list_users(actor, search.as_deref())
                .await
                .map_err(err)?;
            let depts = ctx.crm.list_departments(actor).await.map_err(err)?;
            let roles = ctx.crm.list_roles(actor).await.map_err(err)?;
            // A superior outside the search's results is named all the
            // same: by every user, not only those found.
            let everyone = match search.as_deref().filter(|q| !q.trim().is_empty()) {
                Some(_) => ctx.crm.list_users(actor, None).await.map_err(err)?,
                None => Vec::new(),
            };
            let name = users_by_id(if everyone.is_empty() {
                &users
            } else {
                &everyone
            });
            let rows = users
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.display_name.clone(),
                        u.department_id
                            .and_then(|d| depts.iter().find(|x| x.id == d))
                            .map(|d| d.name.clone())
                            .unwrap_or_default(),
                        name(u.superior_id),
                        u.role_ids
                            .iter()
                            .filter_map(|r| roles.iter().find(|x| x.id == *r))
                            .map(|r| r.name.clone())
                            .collect::<Vec<_>>()
                            .join(","),
                        if u.active { "是".into() } else { "否".into() },
                    ]
                })
                .collect();
            ctx.table(
                json!(users),
                &["用户名", "姓名", "部门", "上级", "角色", "启用"],
                rows,
            );
        }
        UserCmd::Show { username } => {
            let u = resolve_user(ctx, actor, &username).await?;
            if ctx.json {
                ctx.print(json!(u), String::new);
                return Ok(());
            }
            let dept = match u.department_id {
                Some(d) => ctx
                    .crm
                    .list_departments(actor)
                    .await
                    .map_err(err)?
                    .into_iter()
                    .find(|x| x.id == d)
                    .map(|x| x.name)
                    .unwrap_or_else(|| d.to_string()),
                None => String::new(),
            };
            let roles = ctx.crm.list_roles(actor).await.map_err(err)?;
            let superior = match u.superior_id {
                Some(s) => ctx
                    .crm
                    .user(actor, s)
                    .await
                    .map(|x| format!("{} ({})", x.username, x.display_name))
                    .unwrap_or_else(|_| s.to_string()),
                None => String::new(),
            };
            let yes_no = |b: bool| if b { "是" } else { "否" }.to_string();
            let rows = vec![
                vec!["用户名 username".into(), u.username.clone()],
                vec!["姓名 name".into(), u.display_name.clone()],
                vec!["部门 department".into(), dept],
                vec!["上级 superior".into(), superior],
                vec![
                    "角色 roles".into(),
                    u.role_ids
                        .iter()
                        .map(|r| {
                            roles
                                .iter()
                                .find(|x| x.id == *r)
                                .map(|x| x.name.clone())
                                .unwrap_or_else(|| r.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ],
                vec!["邮箱 email".into(), u.email.clone().unwrap_or_default()],
                vec!["手机 mobile".into(), u.mobile.clone().unwrap_or_default()],
                vec!["启用 active".into(), yes_no(u.active)],
                vec!["本地密码 password".into(), yes_no(u.has_password)],
                vec![
                    "锁定至 locked until".into(),
                    u.locked_until.map(|t| local(ctx, t)).unwrap_or_default(),
                ],
                vec!["id".into(), u.id.to_string()],
                vec!["版本 version".into(), u.version.to_string()],
            ];
            let mut t = Grid::new();
            t.load_style(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic);
            for r in rows {
                t.add_row(r);
            }
            out!("{t}");
        }
        UserCmd::Edit {
            username,
            name,
            dept,
            superior,
            role,
            email,
            mobile,
            deactivate,
            activate,
        } => {
            let u = resolve_user(ctx, actor, &username).await?;
            // `none` (or an empty value) clears a contact detail.
            let cleared = |v: Option<String>| {
                v.map(|v| {
                    (!v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("none")).then_some(v)
                })
            };
            let mut patch = UserPatch {
                display_name: name,
                email: cleared(email),
                mobile: cleared(mobile),
                ..UserPatch::default()
            };
            if let Some(d) = dept {
                // No department is named `none` (letter case aside).
                patch.department_id = Some(if d.trim().eq_ignore_ascii_case("none") {
                    None
                } else {
                    Some(ctx.crm.resolve_department(actor, &d).await.map_err(err)?.id)
                });
            }
            if let Some(s) = superior {
                patch.superior_id = Some(if s == "none" {
                    None
                } else {
                    Some(resolve_user(ctx, actor, &s).await?.id)
                });
            }
            if role.len() == 1 && role[0].trim().eq_ignore_ascii_case("none") {
                patch.role_ids = Some(Vec::new());
            } else if !role.is_empty() {
                let mut ids = Vec::new();
                for r in role {
                    if r.trim().eq_ignore_ascii_case("none") {
                        return Err(
                            "--role none takes every role away: give it alone, not with other roles"
                                .into(),
                        );
                    }
                    ids.push(ctx.crm.resolve_role(actor, &r).await.map_err(err)?.id);
                }
                patch.role_ids = Some(ids);
            }
            if deactivate {
                patch.active = Some(false);
            }
            if activate {
                patch.active = Some(true);
            }
            let read = u.version;
            let u = ctx
                .crm
                .update_user(actor, u.id, u.version, patch)
                .await
                .map_err(err)?;
            ctx.print(json!(u), || {
                if u.version == read {
                    format!("user {} unchanged (nothing to change)", u.username)
                } else {
                    format!("updated user {}", u.username)
                }
            });
            if deactivate {
                warn_records_left(ctx, actor, &u).await?;
            }
        }
        UserCmd::Passwd {
            username,
            new_password: password,
        } => {
            let u = resolve_user(ctx, actor, &username).await?;
            ctx.crm
                .set_password(actor, u.id, &password)
                .await
                .map_err(err)?;
            ctx.print(json!({"ok": true}), || {
                format!("password of {} set", u.username)
            });
        }
        UserCmd::ChangePassword { current, new } => {
            ctx.crm
                .change_password(actor, &current, &new)
                .await
                .map_err(err)?;
            ctx.print(json!({"ok": true}), || "password changed".into());
        }
    }
    Ok(())
}

async fn dept_cmd(ctx: &Ctx, actor: &Actor, cmd: DeptCmd) -> CliResult {
    match cmd {
        DeptCmd::Add { name, parent } => {
            let parent = match parent {
                Some(p) => Some(ctx.crm.resolve_department(actor, &p).await.map_err(err)?.id),
                None => ctx
                    .crm
                    .list_departments(actor)
                    .await
                    .map_err(err)?
                    .into_iter()
                    .find(|d| d.parent_id.is_none())
                    .map(|d| d.id),
            };
            let d = ctx
                .crm
                .create_department(actor, &name, parent)
                .await
                .map_err(err)?;
            ctx.print(json!(d), || format!("added department {}", d.name));
        }
        DeptCmd::List => {
            let all = ctx.crm.list_departments(actor).await.map_err(err)?;
            let mut lines = Vec::new();
            // The tree by name, each under its parent. Departments are
            // named by name on the command line, and a name several
            // departments share (data from before sibling names had to
            // differ) is refused as ambiguous, so such a name also gives
            // the id, the only way to name them.
            fn walk(
                all: &[crm::org::Department],
                parent: Option<crm::ids::DepartmentId>,
                depth: usize,
                out: &mut Vec<String>,
            ) {
                for d in all.iter().filter(|d| d.parent_id == parent) {
                    let shared = all.iter().filter(|o| o.name == d.name).count() > 1;
                    out.push(if shared {
                        format!("{}{}  (id {})", "  ".repeat(depth), d.name, d.id)
                    } else {
                        format!("{}{}", "  ".repeat(depth), d.name)
                    });
                    walk(all, Some(d.id), depth + 1, out);
                }
            }
            walk(&all, None, 0, &mut lines);
            ctx.print(json!(all), || lines.join("\n"));
        }
        DeptCmd::Edit { dept, name, parent } => {
            let d = ctx
                .crm
                .resolve_department(actor, &dept)
                .await
                .map_err(err)?;
            let parent = match parent {
                Some(p) if p.trim().eq_ignore_ascii_case("none") => Some(None),
                Some(p) => Some(Some(
                    ctx.crm.resolve_department(actor, &p).await.map_err(err)?.id,
                )),
                None => None,
            };
            let d = ctx
                .crm
                .update_department(actor, d.id, d.version, name.as_deref(), parent)
                .await
                .map_err(err)?;
            ctx.print(json!(d), || format!("updated department {}", d.name));
        }
        DeptCmd::Delete { dept } => {
            let d = ctx
                .crm
                .resolve_department(actor, &dept)
                .await
                .map_err(err)?;
            ctx.crm.delete_department(actor, d.id).await.map_err(err)?;
            ctx.print(json!({"ok": true}), || {
                format!("deleted department {}", d.name)
            });
        }
    }
    Ok(())
}

fn role_spec(
    name: String,
    permissions: Vec<String>,
    fields: Vec<String>,
    admin: bool,
) -> CliResult<RoleSpec> {
    Ok(RoleSpec {
        name,
        is_admin: admin,
        permissions: permissions
            .iter()
            .map(|p| p.parse::<Permission>())
            .collect::<Result<_, _>>()?,
        field_rules: fields
            .iter()
            .map(|f| f.parse::<FieldRule>())
            .collect::<Result<_, _>>()?,
    })
}

async fn role_cmd(ctx: &Ctx, actor: &Actor, cmd: RoleCmd) -> CliResult {
    match cmd {
        RoleCmd::Add {
            name,
            permissions,
            fields,
            admin,
        } => {
            let r = ctx
                .crm
                .create_role(actor, role_spec(name, permissions, fields, admin)?)
                .await
                .map_err(err)?;
            ctx.print(json!(r), || format!("added role {}", r.name));
        }
        RoleCmd::List => {
            let roles = ctx.crm.list_roles(actor).await.map_err(err)?;
            let rows = roles
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        if r.is_admin {
                            "全部".into()
                        } else {
                            r.permissions
                                .iter()
                                .map(|p| format!("{}:{}:{}", p.entity, p.action, p.scope.name()))
                                .collect::<Vec<_>>()
                                .join(" ")
                        },
                        r.field_rules
                            .iter()
                            .map(|f| format!("{}.{}={:?}", f.entity, f.field, f.access))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]
                })
                .collect();
            ctx.table(json!(roles), &["角色", "权限", "字段规则"], rows);
        }
        RoleCmd::Edit {
            name,
            permissions,
            fields,
        } => {
            let r = ctx.crm.resolve_role(actor, &name).await.map_err(err)?;
            if permissions.is_empty() && fields.is_empty() {
                return Err(format!(
                    "nothing to change for role {}: give --perm or --field (`none` clears them)",
                    r.name
                ));
            }
            // What is not given is kept; `none` alone clears it.
            let cleared = |v: &[String]| v.len() == 1 && v[0].trim().eq_ignore_ascii_case("none");
            let mut spec = role_spec(
                r.name.clone(),
                if cleared(&permissions) {
                    Vec::new()
                } else {
                    permissions.clone()
                },
                if cleared(&fields) {
                    Vec::new()
                } else {
                    fields.clone()
                },
                r.is_admin,
            )?;
            if permissions.is_empty() {
                spec.permissions = r.permissions.clone();
            }
            if fields.is_empty() {
                spec.field_rules = r.field_rules.clone();
            }
            let r = ctx
                .crm
                .update_role(actor, r.id, r.version, spec)
                .await
                .map_err(err)?;
            ctx.print(json!(r), || format!("updated role {}", r.name));
        }
        RoleCmd::Delete { name } => {
            let r = ctx.crm.resolve_role(actor, &name).await.map_err(err)?;
            ctx.crm
                .delete_role(actor, r.id, r.version)
                .await
                .map_err(err)?;
            ctx.print(json!({"deleted": r.id}), || {
                format!("deleted role {}", r.name)
            });
        }
    }
    Ok(())
}

/// A user group found by name or id. A name several groups share (kept
/// from before names were checked) is refused, naming their ids: acting
/// on the first of them would act on the wrong one.
async fn find_group(ctx: &Ctx, actor: &Actor, key: &str) -> Result<UserGroup, String> {
    match ctx.crm.resolve_group(actor, key).await {
        Err(crm::error::Error::NotFound { .. }) => Err(format!("no user group '{key}'")),
        other => other.map_err(err),
    }
}

async fn group_cmd(ctx: &Ctx, actor: &Actor, cmd: GroupCmd) -> CliResult {
    match cmd {
        GroupCmd::Add { name, members } => {
            let mut ids = Vec::new();
            for m in members {
                ids.push(resolve_user(ctx, actor, &m).await?.id);
            }
            let g = ctx
                .crm
                .create_group(actor, &name, &ids)
                .await
                .map_err(err)?;
            ctx.print(json!(g), || {
                format!("added group {} with {} members", g.name, g.members.len())
            });
        }
        GroupCmd::List => {
            let groups = ctx.crm.list_groups(actor).await.map_err(err)?;
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = users_by_id(&users);
            let rows = groups
                .iter()
                .map(|g| {
                    vec![
                        g.name.clone(),
                        g.members
                            .iter()
                            .map(|m| name(Some(*m)))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]
                })
                .collect();
            ctx.table(json!(groups), &["用户组", "成员"], rows);
        }
        GroupCmd::Edit { name, members } => {
            let g = find_group(ctx, actor, &name).await?;
            // Emptying a group is said in so many words.
            let members: Vec<&String> = match members.as_slice() {
                [] => {
                    return Err(
                        "name the members, or `none` to empty the group: group edit NAME none"
                            .into(),
                    );
                }
                [one] if one.trim() == "none" => Vec::new(),
                more => more.iter().collect(),
            };
            let mut ids = Vec::new();
            for m in members {
                ids.push(resolve_user(ctx, actor, m).await?.id);
            }
            let g = ctx
                .crm
                .set_group_members(actor, g.id, g.version, &ids)
                .await
                .map_err(err)?;
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let shown = users_by_id(&users);
            ctx.print(json!(g), || {
                format!(
                    "group {} now has {} members: {}",
                    g.name,
                    g.members.len(),
                    g.members
                        .iter()
                        .map(|m| shown(Some(*m)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        GroupCmd::Delete { name } => {
            let g = find_group(ctx, actor, &name).await?;
            ctx.crm
                .delete_group(actor, g.id, g.version)
                .await
                .map_err(err)?;
            ctx.print(json!({"deleted": g.id}), || {
                format!("deleted group {}", g.name)
            });
        }
    }
    Ok(())
}

/// Splits `name=…,mobile=…` into its pairs. A comma separates two pairs
/// only when it is followed by `key=`, the key a field-like word (letters,
/// digits, `_`, `.`, CJK); any other comma belongs to the value, so
/// `tags=重点,华北` is one pair.
fn split_pairs(text: &str) -> Vec<String> {
    fn starts_pair(rest: &str) -> bool {
        let rest = rest.trim_start();
        let key_len: usize = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .map(char::len_utf8)
            .sum();
        key_len > 0 && rest[key_len..].trim_start().starts_with('=')
    }
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ',' && starts_pair(&text[i + 1..]) {
            out.push(text[start..i].to_string());
            start = i + 1;
        }
    }
    out.push(text[start..].to_string());
    out
}

/// Parses `field=value` pairs; `field=` gives null.
fn parse_pairs(pairs: &[String]) -> CliResult<Fields> {
    let mut out = Fields::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("'{p}' must look like field=value"))?;
        let v = v.trim();
        let before = out.insert(
            k.trim().to_string(),
            if v.is_empty() {
                Json::Null
            } else {
                Json::String(v.to_string())
            },
        );
        if before.is_some() {
            return Err(format!("{} is given twice; give each field once", k.trim()));
        }
    }
    Ok(out)
}

async fn find_record(
    ctx: &Ctx,
    actor: &Actor,
    entity: Entity,
    key: &str,
    lifecycle: Lifecycle,
) -> CliResult<Record> {
    if let Ok(id) = key.parse::<RecordId>() {
        return ctx.crm.get_record(actor, entity, id).await.map_err(err);
    }
    let by_code = |lifecycle| {
        ListQuery::default()
            .filter(Cond::Eq(
                "code".into(),
                Json::String(key.trim().to_string()),
            ))
            .lifecycle(lifecycle)
    };
    let found = ctx
        .crm
        .list_records(actor, entity, &by_code(lifecycle))
        .await
        .map_err(err)?
        .items
        .into_iter()
        .next();
    if let Some(r) = found {
        ctx.name(r.id, key);
        return Ok(r);
    }
    // Not where the command looks: say so when the record is elsewhere
    // (live rather than in the recycle bin, or not archived).
    let elsewhere = match lifecycle {
        Lifecycle::Deleted => "is not in the recycle bin",
        Lifecycle::Archived => "is not archived",
        // A live record read otherwise than by data scope (a customer's
        // follow-up by its new owner, a document by its approver).
        Lifecycle::Active | Lifecycle::Any => {
            return match ctx.crm.get_record_by_code(actor, entity, key).await {
                Ok(r) => {
                    ctx.name(r.id, key);
                    Ok(r)
                }
                // Archived, and the actor may read it: a command on live
                // records says so ("unarchive it first") ...
                Err(crm::Error::InvalidState(why)) if lifecycle == Lifecycle::Active => Err(why),
                // ... and one that reads any record reads it.
                Err(crm::Error::InvalidState(_)) => {
                    match any_record_id(ctx, actor, entity, key).await? {
                        Some(id) => match ctx.crm.get_record(actor, entity, id).await {
                            Ok(r) => {
                                ctx.name(r.id, key);
                                Ok(r)
                            }
                            Err(_) => Err(format!("{entity} {key} not found")),
                        },
                        None => Err(format!("{entity} {key} not found")),
                    }
                }
                Err(_) => Err(format!("{entity} {key} not found")),
            };
        }
    };
    let exists = !ctx
        .crm
        .list_records(actor, entity, &by_code(Lifecycle::Any))
        .await
        .map_err(err)?
        .items
        .is_empty();
    Err(if exists {
        format!("{entity} {key} {elsewhere}")
    } else {
        format!("{entity} {key} not found")
    })
}

/// The id of the record with the code `key` that is not in the recycle bin
/// (live or archived), whether or not the actor may read it.
async fn any_record_id(
    ctx: &Ctx,
    actor: &Actor,
    entity: Entity,
    key: &str,
) -> CliResult<Option<RecordId>> {
    use crm::store::{CmpOp, Col, Filter, Lifecycle as L, Select};
    let mut sel = Select::all(entity.table(), actor.company_id.0, ctx.crm.now());
    sel.lifecycle = L::Any;
    sel.filter = Filter::And(vec![
        Filter::Cmp(
            Col::Column("code"),
            CmpOp::Eq,
            crm::validate::record_code(key).into(),
        ),
        Filter::IsNull(Col::Column("deleted_at")),
    ]);
    let rows = ctx.crm.store().select(&sel).await.map_err(err)?.rows;
    Ok(rows.first().map(|r| RecordId(r.id())))
}

async fn find_ids(
    ctx: &Ctx,
    actor: &Actor,
    entity: Entity,
    keys: &[String],
    lifecycle: Lifecycle,
) -> CliResult<Vec<RecordId>> {
    if keys.is_empty() {
        return Err("name at least one record (id or code)".into());
    }
    let mut ids = Vec::new();
    for k in keys {
        ids.push(find_record(ctx, actor, entity, k, lifecycle).await?.id);
    }
    Ok(ids)
}

fn columns(entity: Entity) -> (&'static [&'static str], &'static [&'static str]) {
    match entity {
        Entity::Customer => (
            &[
                "编号",
                "客户名称",
                "分类",
                "级别",
                "城市",
                "电话",
                "负责人",
                "下次跟进",
            ],
            &[
                "code",
                "name",
                "category",
                "level",
                "city",
                "phone",
                "owner_id",
                "next_follow_up",
            ],
        ),
        Entity::Contact => (
            &["编号", "姓名", "客户", "职务", "手机", "邮箱", "负责人"],
            &[
                "code",
                "name",
                "customer_id",
                "title",
                "mobile",
                "email",
                "owner_id",
            ],
        ),
        _ => (
            &["编号", "客户", "方式", "内容", "跟进时间", "负责人"],
            &[
                "code",
                "customer_id",
                "channel",
                "content",
                "occurred_at",
                "owner_id",
            ],
        ),
    }
}

fn cell(v: Option<&Json>) -> String {
    match v {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

async fn print_records(
    ctx: &Ctx,
    actor: &Actor,
    entity: Entity,
    page: &crm::Page<Record>,
) -> CliResult {
    if ctx.json {
        ctx.print(json!(page), String::new);
        return Ok(());
    }
    let mut names = Names::load(ctx, actor).await?;
    let (header, cols) = columns(entity);
    let mut rows = Vec::new();
    for r in &page.items {
        let mut row = Vec::new();
        for c in cols {
            row.push(match *c {
                "code" => r.code.clone().unwrap_or_default(),
                "owner_id" => names.user(r.owner_id),
                // The customer by name as the list shows it; one the actor
                // may no longer read (a share revoked) is not told by id.
                "customer_id" => match r.fields.get("customer_id").and_then(Json::as_str) {
                    Some(id) => match names.readable(ctx, actor, Entity::Customer, id).await {
                        Some((_, name)) => name,
                        None => hidden(Entity::Customer),
                    },
                    None => cell(r.fields.get("customer_id")),
                },
                "occurred_at" => local_text(ctx, &cell(r.fields.get("occurred_at"))),
                other => cell(r.fields.get(other)),
            });
        }
        rows.push(row);
    }
    ctx.table(Json::Null, header, rows);
    let mut foot = Vec::new();
    if let Some(t) = page.total {
        foot.push(format!("{t} in all"));
    }
    if let Some(c) = &page.next_cursor {
        foot.push(format!("next page: --after '{c}'"));
    } else if page.has_more {
        foot.push("more on the next page (--page)".into());
    }
    if !foot.is_empty() {
        out!("{}", foot.join("; "));
    }
    Ok(())
}

/// A custom field's value for people: money fields are stored in minor
/// units (fen) and shown in yuan with two decimals, the way they are typed;
/// numbers without a needless `.0` (120, as typed, not the stored 120.0);
/// multi-select options as a list, without the commas that bound them in
/// the stored column.
fn custom_cell(customs: &[CustomFieldDef], key: &str, v: &Json) -> String {
    let ty = customs.iter().find(|d| d.key == key).map(|d| d.field_type);
    match (ty, v) {
        // As typed: money in yuan, numbers without a needless `.0` (120),
        // options as `show` lists them (a history entry holds the column as
        // stored, `,German,English,`).
        (
            Some(
                ty @ (CustomFieldType::Money
                | CustomFieldType::Number
                | CustomFieldType::MultiSelect),
            ),
            Json::Number(_) | Json::String(_),
        ) => ty.display(v),
        _ => cell(Some(v)),
    }
}

/// Prints a record for people: ids by the names and codes users know
/// (owner, department, pool, customer, contact), custom fields by label.
async fn print_record(
    ctx: &Ctx,
    actor: &Actor,
    entity: Entity,
    r: &Record,
    customs: &[CustomFieldDef],
) -> CliResult {
    if ctx.json {
        ctx.print(json!(r), String::new);
        return Ok(());
    }
    let mut names = Names::load(ctx, actor).await?;
    let mut t = Grid::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t.add_row(vec![
        "编号 code".to_string(),
        r.code.clone().unwrap_or_default(),
    ]);
    t.add_row(vec!["id".to_string(), r.id.to_string()]);
    t.add_row(vec!["版本 version".to_string(), r.version.to_string()]);
    t.add_row(vec!["负责人 owner".to_string(), names.user(r.owner_id)]);
    if let Some(d) = r.department_id.and_then(|d| names.departments.get(&d.0)) {
        t.add_row(vec!["所属部门 department".to_string(), d.clone()]);
    }
    for def in entity.fields() {
        if let Some(v) = r.fields.get(def.name) {
            let shown = match v.as_str() {
                Some(text) if matches!(def.kind, crm::entity::FieldKind::DateTime) => {
                    local_text(ctx, text)
                }
                Some(_)
                    if matches!(def.kind, crm::entity::FieldKind::Ref(_))
                        || def.name == "pool_id" =>
                {
                    names.value(ctx, actor, entity, customs, def.name, v).await
                }
                _ => cell(Some(v)),
            };
            t.add_row(vec![format!("{} {}", def.zh, def.name), shown]);
        }
    }
    for (k, v) in &r.custom {
        let shown = names
            .value(ctx, actor, entity, customs, &format!("custom.{k}"), v)
            .await;
        // As the built-in fields: the label, then the name to type.
        t.add_row(vec![
            format!("{} custom.{k}", Names::custom_label(customs, k)),
            shown,
        ]);
    }
    t.add_row(vec![
        "创建 created".to_string(),
        format!(
            "{} by {}",
            local(ctx, r.created_at),
            names.user(r.created_by)
        ),
    ]);
    t.add_row(vec!["更新 updated".to_string(), local(ctx, r.updated_at)]);
    if let Some(d) = r.deleted_at {
        t.add_row(vec!["删除 deleted".to_string(), local(ctx, d)]);
    }
    if let Some(d) = r.archived_at {
        t.add_row(vec!["归档 archived".to_string(), local(ctx, d)]);
    }
    out!("{t}");
    Ok(())
}

/// Prints whom a record is shared with: the user, read or write, until
/// when, by whom.
async fn print_shares(ctx: &Ctx, actor: &Actor, entity: Entity, id: RecordId) -> CliResult {
    let shares = ctx.crm.list_shares(actor, entity, id).await.map_err(err)?;
    let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
    let name = users_by_id(&users);
    let rows = shares
        .iter()
        .map(|s| {
            vec![
                name(Some(s.user_id)),
                match s.access {
                    ShareAccess::Read => "read 只读".to_string(),
                    ShareAccess::Write => "write 读写".to_string(),
                },
                s.expires_at.map(|d| until(ctx, d)).unwrap_or_default(),
                name(Some(s.granted_by)),
            ]
        })
        .collect();
    ctx.table(
        json!(shares),
        &["共享给 user", "权限 access", "到期 until", "共享人 by"],
        rows,
    );
    Ok(())
}

/// Tells (on standard error) what a deactivated user still owns, which
/// nobody works on until it is transferred: their records (archived
/// customers and those in the recycle bin counted apart, as a transfer
/// does not take them), the pools they administer and the active users
/// whose superior they are (a deactivated superior approves nothing:
/// approvals pass over them).
async fn warn_records_left(ctx: &Ctx, actor: &Actor, u: &crm::org::User) -> CliResult {
    let owned = |entity: Entity, lifecycle: Lifecycle| {
        let mut q = ListQuery::default()
            .filter(Cond::Eq(
                "owner_id".into(),
                Json::String(u.id.0.to_string()),
            ))
            .page(PageRequest::Offset {
                page: 1,
                per_page: 1,
            })
            .with_total();
        q.lifecycle = lifecycle;
        async move {
            // What the actor may not list is not told.
            ctx.crm
                .list_records(actor, entity, &q)
                .await
                .ok()
                .and_then(|page| page.total)
                .filter(|n| *n > 0)
        }
    };
    let mut left = Vec::new();
    for entity in [
        Entity::Customer,
        Entity::Opportunity,
        Entity::Quote,
        Entity::Contract,
    ] {
        if let Some(n) = owned(entity, Lifecycle::Active).await {
            left.push((entity, n));
        }
    }
    let archived = owned(Entity::Customer, Lifecycle::Archived).await;
    let binned = owned(Entity::Customer, Lifecycle::Deleted).await;
    let pools: Vec<String> = ctx
        .crm
        .list_pools(actor)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.admins.contains(&u.id))
        .map(|p| p.name)
        .collect();
    let reports: Vec<String> = ctx
        .crm
        .list_users(actor, None)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|x| x.active && x.superior_id == Some(u.id))
        .map(|x| x.username)
        .collect();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if !left.is_empty() {
        let what: Vec<String> = left
            .iter()
            .map(|(e, n)| format!("{n} {} ({})", e.name(), e.name_zh()))
            .collect();
        let documents = left.iter().any(|(e, _)| *e != Entity::Customer);
        eprintln!(
            "note: {} still owns {}; hand them over, e.g. `crm customer transfer --where \
             owner_id={} --to <username>{} --yes`",
            u.display_name,
            what.join(", "),
            u.username,
            if documents { " --with-documents" } else { "" }
        );
    }
    let mut put_away = Vec::new();
    if let Some(n) = archived {
        put_away.push(format!(
            "{n} archived (已归档; `crm customer unarchive` first)"
        ));
    }
    if let Some(n) = binned {
        put_away.push(format!(
            "{n} in the recycle bin (回收站; `crm customer restore` first)"
        ));
    }
    if !put_away.is_empty() {
        eprintln!(
            "note: {} also owns customers a transfer does not take: {}",
            u.display_name,
            put_away.join(", ")
        );
    }
    if !pools.is_empty() {
        eprintln!(
            "note: {} administers the pool(s) {}; give them another administrator \
             (`crm pool edit <pool> --admin <username>`)",
            u.display_name,
            pools.join(", ")
        );
    }
    if !reports.is_empty() {
        eprintln!(
            "note: {} is the superior of {} active user(s): {}; approvals pass over a \
             deactivated superior, so give them another (`crm user edit <username> --superior \
             <username>`)",
            u.display_name,
            reports.len(),
            reports.join(", ")
        );
    }
    Ok(())
}

/// Warns (on standard error) of the customers a saved customer shares a
/// key with that the company's settings only warn about: saved, it is
/// flagged as a possible duplicate.
async fn warn_duplicates(ctx: &Ctx, actor: &Actor, id: RecordId) -> CliResult {
    for m in ctx.crm.duplicates_of(actor, id).await.map_err(err)? {
        let whose = match (&m.code, &m.name) {
            (Some(code), Some(name)) => format!("{code} {name}, {}", m.owner),
            (Some(code), None) => format!("{code}, {}", m.owner),
            _ => format!("a customer {}", m.owner),
        };
        let value = if m.value.is_empty() {
            String::new()
        } else {
            format!(" {}", m.value)
        };
        // (After what standard output said, in order.)
        let _ = std::io::Write::flush(&mut std::io::stdout());
        eprintln!(
            "warning: possible duplicate (疑似重复): {}{value} is also held by {whose}",
            m.field
        );
    }
    Ok(())
}

/// Prints a batch's report: how many records were done and each refusal
/// with its reason.
fn print_report(ctx: &Ctx, verb: &str, r: &crm::BatchReport) {
    let (refused, lines) = report_parts(ctx, verb, r);
    ctx.print(json!({"done": r.done, "refused": refused}), || {
        lines.join("\n")
    });
}

/// A batch report's refused records as the command line named them (a
/// code stays a code: the id of a record the actor may not reach is not
/// told), for JSON, and its lines for people.
fn report_parts(ctx: &Ctx, verb: &str, r: &crm::BatchReport) -> (Vec<Json>, Vec<String>) {
    let refused: Vec<Json> = r
        .refused
        .iter()
        .map(|(id, why)| json!([ctx.name_of(*id), ctx.with_names(why)]))
        .collect();
    let mut lines = vec![format!(
        "{verb}: {} done, {} refused",
        r.done.len(),
        r.refused.len()
    )];
    for (id, why) in &r.refused {
        lines.push(format!(
            "  refused {}: {}",
            ctx.name_of(*id),
            ctx.with_names(why)
        ));
    }
    (refused, lines)
}

/// A batch's outcome for the exit status: an error when any record was
/// refused, so that scripts can tell a partial batch from a whole one.
fn batch_outcome(verb: &str, r: &crm::BatchReport) -> CliResult {
    if r.refused.is_empty() {
        return Ok(());
    }
    if r.done.is_empty() {
        return Err(format!("nothing was {verb}"));
    }
    Err(format!(
        "{} of {} records were not {verb} (see the report)",
        r.refused.len(),
        r.refused.len() + r.done.len()
    ))
}

/// Prints a batch's report, then fails when any record was refused.
fn report(ctx: &Ctx, verb: &str, r: &crm::BatchReport) -> CliResult {
    print_report(ctx, verb, r);
    batch_outcome(verb, r)
}

async fn record_cmd(ctx: &Ctx, actor: &Actor, entity: Entity, cmd: RecordCmd) -> CliResult {
    match cmd {
        RecordCmd::Add { fields, contact } => {
            let f = parse_pairs(&fields)?;
            let r = if contact.is_empty() {
                ctx.crm.create_record(actor, entity, f).await.map_err(err)?
            } else {
                if entity != Entity::Customer {
                    return Err("--contact is only for customers".into());
                }
                let contacts = contact
                    .iter()
                    .map(|c| parse_pairs(&split_pairs(c)))
                    .collect::<CliResult<Vec<_>>>()?;
                ctx.crm
                    .create_customer_with_contacts(actor, f, contacts)
                    .await
                    .map_err(err)?
            };
            ctx.print(json!(r), || {
                format!(
                    "added {} {} {}",
                    entity.name_zh(),
                    r.code.clone().unwrap_or_default(),
                    r.text("name").unwrap_or_default()
                )
            });
            if entity == Entity::Customer {
                warn_duplicates(ctx, actor, r.id).await?;
            }
        }
        RecordCmd::Edit {
            record,
            fields,
            version,
        } => {
            if fields.is_empty() {
                return Err("nothing to change: give field=value pairs".into());
            }
            let pairs = parse_pairs(&fields)?;
            // Without --version the change is meant for the record as it is
            // now: a write that meets a concurrent edit reads the record
            // again and applies the same fields on top of it (a few times).
            // With --version, the version given is the one the change must
            // meet, and a conflict is reported.
            let mut attempts = 0;
            let (expected, r) = loop {
                let current = find_record(ctx, actor, entity, &record, Lifecycle::Active).await?;
                let expected = version.unwrap_or(current.version);
                match ctx
                    .crm
                    .update_record(actor, entity, current.id, expected, pairs.clone())
                    .await
                {
                    Ok(r) => break (expected, r),
                    Err(crm::Error::Conflict { .. })
                        if version.is_none() && attempts < EDIT_TRIES =>
                    {
                        attempts += 1;
                        back_off(attempts);
                    }
                    Err(e) => return Err(err(e)),
                }
            };
            let written = written_version(expected, r.version);
            ctx.print(json!(r), || {
                let mut line = format!(
                    "updated {} {} (version {written})",
                    entity.name_zh(),
                    r.code.clone().unwrap_or_default(),
                );
                if r.version > written {
                    line.push_str(&format!(
                        "; since edited by someone else, now at version {}",
                        r.version
                    ));
                }
                line
            });
        }
        RecordCmd::Show { record } => {
            let r = find_record(ctx, actor, entity, &record, Lifecycle::Any).await?;
            let customs = ctx.crm.custom_fields(actor, entity).await.map_err(err)?;
            print_record(ctx, actor, entity, &r, &customs).await?;
        }
        RecordCmd::List(args) => {
            let mut q = ListQuery::default();
            for c in &args.conditions {
                q = q.filter(Cond::parse(c)?);
            }
            if let Some(s) = args.search {
                q = q.search(s);
            }
            for s in &args.sort {
                q.sort.push(crm::query::SortBy::parse(s));
            }
            q.page = match args.after {
                Some(a) => PageRequest::Keyset {
                    after: (!a.is_empty()).then_some(a),
                    limit: args.per_page,
                },
                None => PageRequest::Offset {
                    page: args.page,
                    per_page: args.per_page,
                },
            };
            q.with_total = true;
            q.lifecycle = if args.deleted {
                Lifecycle::Deleted
            } else if args.archived {
                Lifecycle::Archived
            } else {
                Lifecycle::Active
            };
            let q = named_in_filters(ctx, actor, q).await?;
            let page = ctx.crm.list_records(actor, entity, &q).await.map_err(err)?;
            print_records(ctx, actor, entity, &page).await?;
        }
        RecordCmd::Search {
            text,
            page,
            per_page,
        } => {
            let q = ListQuery::default()
                .search(text)
                .page(PageRequest::Offset { page, per_page })
                .with_total();
            let page = ctx.crm.list_records(actor, entity, &q).await.map_err(err)?;
            print_records(ctx, actor, entity, &page).await?;
        }
        RecordCmd::Delete {
            records,
            select,
            yes,
        } => {
            let guard = Guard::Confirm("delete", yes);
            let ids = batch_ids(ctx, actor, entity, &records, &select, guard).await?;
            report(
                ctx,
                "deleted",
                &ctx.crm.delete_records(actor, entity, &ids).await,
            )?;
        }
        RecordCmd::Restore { records } => {
            let ids = find_ids(ctx, actor, entity, &records, Lifecycle::Deleted).await?;
            report(
                ctx,
                "restored",
                &ctx.crm.restore_records(actor, entity, &ids).await,
            )?;
        }
        RecordCmd::Purge { records } => {
            let ids = find_ids(ctx, actor, entity, &records, Lifecycle::Deleted).await?;
            report(
                ctx,
                "purged",
                &ctx.crm.purge_records(actor, entity, &ids).await,
            )?;
        }
        RecordCmd::Archive {
            records,
            select,
            yes,
        } => {
            let guard = Guard::Confirm("archive", yes);
            let ids = batch_ids(ctx, actor, entity, &records, &select, guard).await?;
            report(
                ctx,
                "archived",
                &ctx.crm.archive_records(actor, entity, &ids).await,
            )?;
        }
        RecordCmd::Unarchive { records } => {
            let ids = find_ids(ctx, actor, entity, &records, Lifecycle::Archived).await?;
            report(
                ctx,
                "unarchived",
                &ctx.crm.unarchive_records(actor, entity, &ids).await,
            )?;
        }
        RecordCmd::Shares { record } => {
            let r = find_record(ctx, actor, entity, &record, Lifecycle::Any).await?;
            print_shares(ctx, actor, entity, r.id).await?;
        }
        RecordCmd::Transfer {
            records,
            to,
            with_documents,
            select,
            yes,
        } => {
            if with_documents && entity != Entity::Customer {
                return Err("--with-documents is only for customers".into());
            }
            let to = resolve_user(ctx, actor, &to).await?;
            let guard = Guard::Confirm("transfer", yes);
            let ids = batch_ids(ctx, actor, entity, &records, &select, guard).await?;
            if !with_documents {
                let r = ctx
                    .crm
                    .transfer_records(actor, entity, &ids, to.id)
                    .await
                    .map_err(err)?;
                return report(ctx, "transferred", &r);
            }
            let (r, docs) = ctx
                .crm
                .transfer_customers_with_documents(actor, &ids, to.id)
                .await
                .map_err(err)?;
            let (refused, mut lines) = report_parts(ctx, "transferred", &r);
            let shown = json!({"done": r.done, "refused": refused, "documents": docs});
            ctx.print(shown, || {
                // A quote's versions share its code: named once.
                let mut codes: Vec<String> = Vec::new();
                let mut unnamed = 0;
                for d in docs.iter().filter(|d| d.refused.is_none()) {
                    match &d.code {
                        Some(c) if !codes.contains(c) => codes.push(c.clone()),
                        Some(_) => {}
                        None => unnamed += 1,
                    }
                }
                if unnamed > 0 {
                    codes.push(format!("{unnamed} you may not read"));
                }
                lines.push(format!(
                    "documents transferred (转移单据): {}",
                    if codes.is_empty() {
                        "none".to_string()
                    } else {
                        codes.join(", ")
                    }
                ));
                for d in docs.iter() {
                    if let Some(why) = &d.refused {
                        lines.push(format!(
                            "  stayed {} {}: {}",
                            d.entity,
                            d.code.as_deref().unwrap_or("(not yours to read)"),
                            ctx.with_names(why)
                        ));
                    }
                }
                lines.join("\n")
            });
            batch_outcome("transferred", &r)?;
            if docs.iter().any(|d| d.refused.is_some()) {
                return Err("some documents were not transferred (see the report)".into());
            }
        }
        RecordCmd::Share {
            records,
            select,
            with,
            group,
            access,
            until,
        } => {
            let access: ShareAccess = access.parse()?;
            // A date alone means through that day.
            let until = match until {
                Some(t) => Some(ctx.crm.share_end(&t).map_err(|e| format!("--until: {e}"))?),
                None => None,
            };
            if let Some(name) = group {
                let g = find_group(ctx, actor, &name).await?;
                let ids = if records.len() != 1 || select.is_set() {
                    batch_ids(ctx, actor, entity, &records, &select, Guard::None).await?
                } else {
                    vec![
                        find_record(ctx, actor, entity, &records[0], Lifecycle::Active)
                            .await?
                            .id,
                    ]
                };
                let per_member = ctx
                    .crm
                    .share_with_group(actor, entity, &ids, g.id, access, until)
                    .await
                    .map_err(err)?;
                let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
                let name = users_by_id(&users);
                let json: Vec<Json> = per_member
                    .iter()
                    .map(|(u, r)| json!({"user": u, "report": r}))
                    .collect();
                ctx.print(json!(json), || {
                    per_member
                        .iter()
                        .map(|(u, r)| {
                            let mut line = format!(
                                "shared with {}: {} done, {} refused",
                                name(Some(*u)),
                                r.done.len(),
                                r.refused.len()
                            );
                            // Each record as the command line named it
                            // (its code), not by id.
                            for (id, why) in &r.refused {
                                line.push_str(&format!(
                                    "\n  refused {}: {}",
                                    ctx.name_of(*id),
                                    ctx.with_names(why)
                                ));
                            }
                            line
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                });
                if per_member.iter().all(|(_, r)| r.done.is_empty()) {
                    return Err(format!("nothing was shared with group {}", g.name));
                }
                let refused: usize = per_member.iter().map(|(_, r)| r.refused.len()).sum();
                if refused > 0 {
                    return Err(format!(
                        "{refused} shares with members of group {} were refused (see the report)",
                        g.name
                    ));
                }
                return Ok(());
            }
            let with = with.ok_or("--with USER or --group GROUP")?;
            let u = resolve_user(ctx, actor, &with).await?;
            if records.len() != 1 || select.is_set() {
                let ids = batch_ids(ctx, actor, entity, &records, &select, Guard::None).await?;
                let r = ctx
                    .crm
                    .share_records(actor, entity, &ids, u.id, access, until)
                    .await;
                return report(ctx, "shared", &r);
            }
            let r = find_record(ctx, actor, entity, &records[0], Lifecycle::Active).await?;
            ctx.crm
                .share_record(actor, entity, r.id, u.id, access, until)
                .await
                .map_err(err)?;
            ctx.print(json!({"ok": true}), || {
                format!(
                    "shared {} with {}",
                    r.code.clone().unwrap_or_default(),
                    u.display_name
                )
            });
        }
        RecordCmd::Unshare { record, with } => {
            let r = find_record(ctx, actor, entity, &record, Lifecycle::Active).await?;
            let u = resolve_user(ctx, actor, &with).await?;
            ctx.crm
                .unshare_record(actor, entity, r.id, u.id)
                .await
                .map_err(err)?;
            ctx.print(json!({"ok": true}), || {
                format!(
                    "{} no longer shared with {}",
                    r.code.clone().unwrap_or_default(),
                    u.display_name
                )
            });
        }
        RecordCmd::History { record } => {
            // A record purged for good is named by its id (its code is
            // gone); administrators still read its history.
            let id = match find_record(ctx, actor, entity, &record, Lifecycle::Any).await {
                Ok(r) => r.id.0,
                Err(e) => match record.parse::<RecordId>() {
                    Ok(id) => id.0,
                    Err(_) => return Err(e),
                },
            };
            let h = ctx.crm.history(actor, entity, id).await.map_err(err)?;
            // Each value by the field it was written under, deleted since
            // or not (a money field's 分 in yuan, a user field's id by name).
            let ever = ctx
                .crm
                .custom_fields_ever(actor, entity)
                .await
                .map_err(err)?;
            let mut keys: Vec<&str> = ever.iter().map(|f| f.def.key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            // Owners, customers, pools and departments by the names users
            // know, not by id.
            let mut names = Names::load(ctx, actor).await?;
            let mut rows = Vec::with_capacity(h.len());
            for e in &h {
                let customs: Vec<CustomFieldDef> = keys
                    .iter()
                    .filter_map(|k| crm::custom::field_as_of(&ever, k, e.at).cloned())
                    .collect();
                let mut changes = Vec::with_capacity(e.changes.len());
                for c in &e.changes {
                    let before = names
                        .value(ctx, actor, entity, &customs, &c.field, &c.before)
                        .await;
                    let after = names
                        .value(ctx, actor, entity, &customs, &c.field, &c.after)
                        .await;
                    changes.push(format!("{}: {before} → {after}", c.field));
                }
                rows.push(vec![
                    local_secs(ctx, e.at),
                    names.user(e.actor_id.map(UserId)),
                    e.action.clone(),
                    changes.join("\n"),
                ]);
            }
            ctx.table(json!(h), &["时间", "操作人", "操作", "变更"], rows);
        }
    }
    Ok(())
}

async fn field_cmd(ctx: &Ctx, actor: &Actor, cmd: FieldCmd) -> CliResult {
    match cmd {
        FieldCmd::Add {
            entity,
            key,
            label,
            field_type,
            options,
            required,
            unique,
        } => {
            let d = ctx
                .crm
                .define_custom_field(
                    actor,
                    NewCustomField {
                        entity: entity.parse()?,
                        key,
                        label,
                        label_en: None,
                        field_type: field_type.parse::<CustomFieldType>()?,
                        options: options
                            .map(|o| o.split([',', '，']).map(|s| s.trim().to_string()).collect())
                            .unwrap_or_default(),
                        required,
                        unique,
                    },
                )
                .await
                .map_err(err)?;
            ctx.print(json!(d), || {
                format!("added custom field {}.{} ({})", d.entity, d.key, d.label)
            });
        }
        FieldCmd::List { entity } => {
            let e: Entity = entity.parse()?;
            let mut rows: Vec<Vec<String>> = e
                .fields()
                .iter()
                .map(|f| {
                    vec![
                        f.name.to_string(),
                        f.zh.to_string(),
                        kind_text(f.kind),
                        if f.required {
                            "是".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            let customs = ctx.crm.custom_fields(actor, e).await.map_err(err)?;
            for d in &customs {
                rows.push(vec![
                    format!("custom.{}", d.key),
                    d.label.clone(),
                    format!(
                        "{}{}",
                        d.field_type.name(),
                        if d.options.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", d.options.join(","))
                        }
                    ),
                    if d.required {
                        "是".into()
                    } else {
                        String::new()
                    },
                ]);
            }
            ctx.table(json!({"builtin": e.fields().iter().map(|f| f.name).collect::<Vec<_>>(), "custom": customs}), &["字段", "名称", "类型", "必填"], rows);
        }
        FieldCmd::Edit {
            entity,
            key,
            label,
            label_en,
            options,
            required,
            version,
        } => {
            let e: Entity = entity.parse()?;
            let def = custom_field_named(ctx, actor, e, &key).await?;
            let d = ctx
                .crm
                .update_custom_field(
                    actor,
                    def.id,
                    version.unwrap_or(def.version),
                    crm::custom::CustomFieldUpdate {
                        label,
                        label_en,
                        options: options
                            .map(|o| o.split([',', '，']).map(|s| s.trim().to_string()).collect()),
                        required,
                    },
                )
                .await
                .map_err(err)?;
            ctx.print(json!(d), || {
                let options = if d.options.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", d.options.join(","))
                };
                format!(
                    "changed custom field {}.{} ({}){options}",
                    d.entity, d.key, d.label
                )
            });
        }
        FieldCmd::Delete {
            entity,
            key,
            version,
        } => {
            let e: Entity = entity.parse()?;
            let def = custom_field_named(ctx, actor, e, &key).await?;
            ctx.crm
                .delete_custom_field(actor, def.id, version.unwrap_or(def.version))
                .await
                .map_err(err)?;
            ctx.print(json!({"ok": true}), || {
                format!("removed custom field {}.{}", def.entity, def.key)
            });
        }
        FieldCmd::Options {
            entity,
            field,
            options: None,
            ..
        } => {
            let list = ctx
                .crm
                .picklist_with_version(actor, entity.parse()?, &field)
                .await
                .map_err(err)?;
            ctx.print(json!(list), || {
                format!(
                    "{entity}.{field} options: {} (version {})",
                    list.options.join(", "),
                    list.version
                )
            });
        }
        FieldCmd::Options {
            entity,
            field,
            options: Some(options),
            version,
        } => {
            let e: Entity = entity.parse()?;
            let opts: Vec<String> = options
                .split([',', '，'])
                .map(|s| s.trim().to_string())
                .collect();
            let version = match version {
                Some(v) => v,
                None => {
                    ctx.crm
                        .picklist_with_version(actor, e, &field)
                        .await
                        .map_err(err)?
                        .version
                }
            };
            ctx.crm
                .set_picklist(actor, e, &field, version, &opts)
                .await
                .map_err(err)?;
            ctx.print(json!({"ok": true}), || {
                format!("{entity}.{field} options: {}", opts.join(", "))
            });
        }
    }
    Ok(())
}

async fn events_cmd(ctx: &Ctx, actor: &Actor, cmd: EventsCmd) -> CliResult {
    // The outbox is the host application's queue, shared by every company of
    // the database: only administrators may read or move it.
    if !actor.is_admin() {
        return Err(
            "events are the host application's queue: only an administrator may read or acknowledge them"
                .into(),
        );
    }
    match cmd {
        EventsCmd::Pending { consumer, limit } => {
            // The queue is shared by every company of the database: only
            // this company's events are shown, the others stay pending.
            let events = ctx
                .crm
                .pending_events_of(&consumer, actor.company_id, limit)
                .await
                .map_err(err)?;
            let rows = events
                .iter()
                .map(|e| {
                    vec![
                        e.seq.to_string(),
                        local_secs(ctx, e.event.at),
                        e.event.event_type.clone(),
                        event_record(&e.event),
                    ]
                })
                .collect();
            ctx.table(json!(events), &["seq", "时间", "事件", "记录"], rows);
        }
        EventsCmd::Ack { consumer, seq } => {
            // An acknowledgement never moves back: one below the next
            // pending event changes nothing, and says so.
            let next = ctx
                .crm
                .pending_events_of(&consumer, actor.company_id, 1)
                .await
                .map_err(err)?
                .first()
                .map(|e| e.seq);
            ctx.crm
                .ack_events_of(&consumer, actor.company_id, seq)
                .await
                .map_err(err)?;
            ctx.print(json!({"ok": true, "next_pending": next}), || match next {
                Some(n) if seq < n => format!(
                    "{consumer} had acknowledged every event before {n} already; nothing changed \
                     (the next pending event is {n})"
                ),
                Some(_) => format!("{consumer} acknowledged up to {seq}"),
                None => format!(
                    "{consumer} had acknowledged every event already; nothing changed (nothing \
                     is pending)"
                ),
            });
        }
    }
    Ok(())
}

/// How a built-in field's kind reads in `field list`: the kind, with its
/// values where it has a fixed set.
fn kind_text(kind: crm::entity::FieldKind) -> String {
    use crm::entity::FieldKind as K;
    match kind {
        K::Text(max) => format!("文本 text (≤{max})"),
        K::CompanyName => "名称 name".into(),
        K::PersonName => "姓名 person name".into(),
        K::Phone(_) => "电话 phone".into(),
        K::Mobile(_) => "手机 mobile".into(),
        K::Email => "邮箱 e-mail".into(),
        K::Url => "网址 URL".into(),
        K::Uscc => "统一社会信用代码 USCC".into(),
        K::ResidentId => "身份证号 ID number".into(),
        K::Date => "日期 date".into(),
        K::DateTime => "日期时间 date-time".into(),
        K::Enum(values) => format!(
            "选项 one of: {}",
            values
                .iter()
                .map(|(v, zh)| format!("{v} {zh}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        K::Choice(defaults) => format!("可配置选项 options (default {})", defaults.join(", ")),
        K::Tags => "标签 tags".into(),
        K::Ref(e) => format!("关联 {} ({})", e.name_zh(), e.name()),
        K::Attachments => "附件 attachments".into(),
    }
}

/// Builds a valid unified social credit code from a region and a serial.
fn demo_uscc(region: &str, serial: u32) -> String {
    let body = format!("91{region}{:09}", serial % 1_000_000_000);
    let body: String = body.chars().take(17).collect();
    let check = crm::validate::uscc_check_char(&body).unwrap_or('0');
    format!("{body}{check}")
}

async fn demo(ctx: &Ctx) -> CliResult {
    if ctx.crm.company_by_code("DEMO").await.is_ok() {
        return Err("the demo company DEMO exists already in this database; use another --db or explore it with `crm customer list`".into());
    }
    let (company, admin_id) = ctx
        .crm
        .bootstrap(NewCompany {
            name: "示例科技有限公司".into(),
            code: "DEMO".into(),
            admin_username: "admin".into(),
            admin_display_name: "系统管理员".into(),
            admin_password: Some("Demo#2026".into()),
        })
        .await
        .map_err(err)?;
    let admin = ctx.crm.actor(admin_id).await.map_err(err)?;
    let c = &ctx.crm;
    let root = admin.department_id;
    let sales = c
        .create_department(&admin, "销售部", root)
        .await
        .map_err(err)?
        .id;
    let north = c
        .create_department(&admin, "华北大区", Some(sales))
        .await
        .map_err(err)?
        .id;
    let south = c
        .create_department(&admin, "华南大区", Some(sales))
        .await
        .map_err(err)?
        .id;
    let service = c
        .create_department(&admin, "客服部", root)
        .await
        .map_err(err)?
        .id;
    let perms = |scope: &str| -> Vec<String> {
        ["customer", "contact", "follow_up"]
            .iter()
            .flat_map(|e| {
                [
                    "read", "create", "update", "delete", "transfer", "share", "export", "import",
                ]
                .map(|a| format!("{e}:{a}:{scope}"))
            })
            .collect()
    };
    let seller = c
        .create_role(
            &admin,
            role_spec("销售".into(), perms("own"), vec![], false)?,
        )
        .await
        .map_err(err)?;
    let manager = c
        .create_role(
            &admin,
            role_spec("销售经理".into(), perms("department_tree"), vec![], false)?,
        )
        .await
        .map_err(err)?;
    let support = c
        .create_role(
            &admin,
            role_spec(
                "客服".into(),
                vec![
                    "customer:read:all".into(),
                    "contact:read:all".into(),
                    "follow_up:read:all".into(),
                    "follow_up:create:all".into(),
                ],
                vec![
                    "contact.mobile=masked".into(),
                    "contact.id_number=hidden".into(),
                    "customer.uscc=masked".into(),
                ],
                false,
            )?,
        )
        .await
        .map_err(err)?;
    let mk =
        |username: &str, name: &str, dept, superior: Option<UserId>, role: &crm::Role| NewUser {
            username: username.into(),
            display_name: name.into(),
            department_id: Some(dept),
            superior_id: superior,
            role_ids: vec![role.id],
            password: Some("Demo#2026".into()),
            ..NewUser::default()
        };
    let chen = c
        .create_user(&admin, mk("chenjing", "陈静", sales, None, &manager))
        .await
        .map_err(err)?;
    let users = [
        c.create_user(
            &admin,
            mk("zhangwei", "张伟", north, Some(chen.id), &seller),
        )
        .await
        .map_err(err)?,
        c.create_user(
            &admin,
            mk("wangfang", "王芳", north, Some(chen.id), &seller),
        )
        .await
        .map_err(err)?,
        c.create_user(&admin, mk("liqiang", "李强", south, Some(chen.id), &seller))
            .await
            .map_err(err)?,
        c.create_user(&admin, mk("zengli", "曾丽", south, Some(chen.id), &seller))
            .await
            .map_err(err)?,
    ];
    c.create_user(&admin, mk("liuyang", "刘洋", service, None, &support))
        .await
        .map_err(err)?;
    c.create_group(&admin, "重点客户攻坚组", &[users[0].id, users[2].id])
        .await
        .map_err(err)?;
    let companies: [(&str, &str, &str, &str, &str, &str); 12] = [
        (
            "北京华信智联科技有限公司",
            "北京",
            "110108",
            "010-62345678",
            "软件和信息技术",
            "VIP",
        ),
        (
            "上海浦江精密机械股份有限公司",
            "上海",
            "310115",
            "021-58761234",
            "机械制造",
            "普通",
        ),
        (
            "深圳市鹏城电子有限公司",
            "深圳",
            "440300",
            "0755-26781234",
            "电子元器件",
            "潜在",
        ),
        (
            "广州岭南食品集团有限公司",
            "广州",
            "440100",
            "020-87654321",
            "食品饮料",
            "VIP",
        ),
        (
            "重庆长江物流有限公司",
            "重庆",
            "500000",
            "023-63451234",
            "交通物流",
            "代理",
        ),
        (
            "杭州西湖数字传媒有限公司",
            "杭州",
            "330106",
            "0571-87651234",
            "文化传媒",
            "潜在",
        ),
        (
            "成都天府医疗器械有限公司",
            "成都",
            "510100",
            "028-85671234",
            "医疗器械",
            "普通",
        ),
        (
            "天津滨海新材料有限公司",
            "天津",
            "120116",
            "022-25671234",
            "新材料",
            "合作",
        ),
        (
            "武汉光谷光电技术有限公司",
            "武汉",
            "420100",
            "027-87561234",
            "光电",
            "普通",
        ),
        (
            "南京紫金教育科技有限公司",
            "南京",
            "320102",
            "025-84561234",
            "教育",
            "潜在",
        ),
        (
            "厦门鹭岛贸易有限公司",
            "厦门",
            "350200",
            "0592-5671234",
            "贸易",
            "分销商",
        ),
        (
            "苏州工业园区智造有限公司",
            "苏州",
            "320500",
            "0512-62561234",
            "智能制造",
            "VIP",
        ),
    ];
    let people = [
        ("赵敏", "总经理", "13810010001"),
        ("钱勇", "采购经理", "13910020002"),
        ("孙丽", "技术总监", "13710030003"),
        ("周杰", "财务经理", "13610040004"),
        ("吴倩", "行政主管", "15010050005"),
        ("郑浩", "项目经理", "15110060006"),
        ("冯晓", "副总裁", "18610070007"),
        ("陈晨", "IT经理", "18710080008"),
    ];
    let levels = ["A", "B", "C", "B"];
    // The demo's follow-ups are planned ahead of the day it is run, so that
    // its data reads the same whenever it is made: none of them is overdue.
    let today = c.today();
    let ahead = |days: usize| today + chrono::Days::new(days as u64);
    let mut count = 0;
    for (i, (name, city, region, phone, industry, category)) in companies.iter().enumerate() {
        let owner = &users[i % users.len()];
        let owner_actor = c.actor(owner.id).await.map_err(err)?;
        let mut f = Fields::new();
        for (k, v) in [
            ("name", name.to_string()),
            ("city", city.to_string()),
            ("phone", phone.to_string()),
            ("industry", industry.to_string()),
            ("category", category.to_string()),
            ("level", levels[i % 4].to_string()),
            (
                "source",
                ["展会", "客户介绍", "网络推广", "自主开发"][i % 4].to_string(),
            ),
            ("uscc", demo_uscc(region, 20_260_000 + i as u32 * 7919)),
            (
                "next_follow_up",
                ahead(1 + i).format("%Y-%m-%d").to_string(),
            ),
            (
                "tags",
                if i % 3 == 0 {
                    "重点客户".into()
                } else {
                    "常规".into()
                },
            ),
        ] {
            f.insert(k.into(), json!(v));
        }
        let contacts: Vec<Fields> = (0..2)
            .map(|j| {
                let (pn, title, mobile) = people[(i * 2 + j) % people.len()];
                let mut m = Fields::new();
                m.insert("name".into(), json!(pn));
                m.insert("title".into(), json!(title));
                m.insert(
                    "mobile".into(),
                    json!(format!("{}{}", &mobile[..9], (i * 2 + j) % 100 + 10)),
                );
                m.insert(
                    "email".into(),
                    json!(format!("contact{}@example.cn", i * 2 + j)),
                );
                m.insert(
                    "birthday".into(),
                    json!(format!("198{}-0{}-1{}", j + 2, 1 + i % 9, i % 9)),
                );
                m
            })
            .collect();
        let cust = c
            .create_customer_with_contacts(&owner_actor, f, contacts)
            .await
            .map_err(err)?;
        let mut fu = Fields::new();
        fu.insert("customer_id".into(), json!(cust.id.to_string()));
        fu.insert(
            "channel".into(),
            json!(["电话", "拜访", "微信", "邮件"][i % 4]),
        );
        fu.insert(
            "content".into(),
            json!(format!(
                "与{}沟通了年度采购计划，对方关注交付周期和价格",
                name
            )),
        );
        fu.insert(
            "next_follow_up_at".into(),
            json!(format!("{} 10:00", ahead(10 + i).format("%Y-%m-%d"))),
        );
        c.create_record(&owner_actor, Entity::FollowUp, fu)
            .await
            .map_err(err)?;
        count += 1;
    }
    ctx.print(json!({"company": company, "customers": count}), || {
        format!(
            "demo company {} ({}) ready: 5 departments, 3 roles, 6 users (password Demo#2026), {count} customers with 2 contacts and a follow-up each.\n\
             Try: crm customer list | crm customer search hxzl | crm --as zhangwei customer list | crm --as liuyang contact list",
            company.name, company.code
        )
    });
    Ok(())
}

// ---------------------------------------------------------------------------
/// One line of a linked record of the 360° view: its code, title, status
/// and amount in 元 (a sales document as the sales module reads it; a
/// payment or invoice by its contract's code).
fn view_item_line(table: &str, r: &Record) -> String {
    use crm::sales::{Contract, Invoice, Opportunity, Payment, Quote};
    let fields = Json::Object(r.fields.clone().into_iter().collect());
    macro_rules! read {
        ($t:ty) => {
            serde_json::from_value::<$t>(fields.clone()).ok()
        };
    }
    let text = |k: &str| r.text(k).unwrap_or_default().to_string();
    let line = match table {
        "opportunities" => read!(Opportunity).map(|o| {
            format!(
                "{} {} · {} {} · {}",
                o.code,
                o.name,
                o.status.label_zh(),
                o.stage_name,
                o.amount
            )
        }),
        "quotes" => read!(Quote).map(|q| {
            format!(
                "{} v{} {} · {} · {}",
                q.code,
                q.quote_version,
                q.title,
                q.status.label_zh(),
                q.totals.amount
            )
        }),
        "contracts" => read!(Contract).map(|c| {
            format!(
                "{} {} · {} · {} (received {}, outstanding {})",
                c.code,
                c.title,
                c.status.label_zh(),
                c.amount,
                c.received,
                c.outstanding
            )
        }),
        "payments" => read!(Payment).map(|p| {
            let status = crm::sales::payment_status_label(p.status.as_str()).1;
            format!(
                "{} {} {}{} · {} · {}",
                text("contract_code"),
                p.received_on,
                p.method,
                p.receipt_no.map(|n| format!(" {n}")).unwrap_or_default(),
                status,
                p.amount
            )
        }),
        "invoices" => read!(Invoice).map(|i| {
            // A plan says whether it was invoiced since (计划已开票), as
            // `contract invoices` does: else it reads as another invoice.
            let kind = match i.kind.as_str() {
                _ if i.is_voided() => "已作废".to_string(),
                "plan" => i.status_label_zh().to_string(),
                "issued" => "已开票".to_string(),
                other => other.to_string(),
            };
            format!(
                "{} {} {} · {} · {}",
                text("contract_code"),
                i.invoice_date.map(|d| d.to_string()).unwrap_or_default(),
                i.number.unwrap_or_default(),
                kind,
                i.amount
            )
        }),
        _ => None,
    };
    line.unwrap_or_else(|| {
        let title = ["name", "title"]
            .iter()
            .find_map(|k| r.text(k))
            .unwrap_or_default();
        format!("{} {title}", r.code.clone().unwrap_or_default())
    })
}

// Pools, duplicates, the 360° view, lists and batches on a filter.
// ---------------------------------------------------------------------------

#[derive(Args, Clone, Default)]
struct SelectArgs {
    /// Act on every record you can see matching these conditions (as in
    /// `list --where`); repeatable.
    #[arg(long = "where", short = 'w')]
    conditions: Vec<String>,
    /// Act on every record you can see matching this search.
    #[arg(long, short = 's')]
    search: Option<String>,
}

impl SelectArgs {
    fn is_set(&self) -> bool {
        !self.conditions.is_empty() || self.search.is_some()
    }

    /// The filter as a query; an empty search or condition is refused, as
    /// it would select every record.
    fn query(&self) -> CliResult<ListQuery> {
        let mut q = ListQuery::default();
        for c in &self.conditions {
            if c.trim().is_empty() {
                return Err(
                    "--where is empty: give a condition such as level=A (an empty one would select every record)"
                        .into(),
                );
            }
            q = q.filter(Cond::parse(c)?);
        }
        if let Some(s) = &self.search {
            if s.trim().is_empty() {
                return Err(
                    "--search is empty: give a text to search for (an empty one would select every record)"
                        .into(),
                );
            }
            q = q.search(s.clone());
        }
        Ok(q)
    }
}

/// A query whose conditions on the owner, the creator and the owning
/// department name them as the user commands do: a user by username or
/// display name, letter case, width and accents aside (`émile müller`
/// finds Émile Müller), a department by name. Each such value becomes the
/// id; a name several users or departments answer to is refused, naming
/// them. A value naming none is left for the engine to refuse.
async fn named_in_filters(ctx: &Ctx, actor: &Actor, mut q: ListQuery) -> CliResult<ListQuery> {
    let mut users = None;
    let mut conditions = Vec::with_capacity(q.conditions.len());
    for c in std::mem::take(&mut q.conditions) {
        conditions.push(named_in(ctx, actor, c, &mut users).await?);
    }
    q.conditions = conditions;
    Ok(q)
}

/// What a filter column holds when it names a user or a department.
#[derive(Clone, Copy, PartialEq)]
enum NamedColumn {
    User,
    Department,
}

/// Whether the field a condition names (by API name, Chinese or English
/// label, as the engine takes them) holds a user's or a department's id.
fn named_column(field: &str) -> Option<NamedColumn> {
    let f = field.trim();
    let (name, _, _) = crm::entity::STANDARD_FIELDS
        .iter()
        .find(|(n, zh, en)| *n == f || *zh == f || en.eq_ignore_ascii_case(f))?;
    match *name {
        "owner_id" | "created_by" => Some(NamedColumn::User),
        "department_id" => Some(NamedColumn::Department),
        _ => None,
    }
}

/// One condition of [`named_in_filters`], its inner ones too; `users` is
/// the company's users, read at the first user named.
fn named_in<'a>(
    ctx: &'a Ctx,
    actor: &'a Actor,
    c: Cond,
    users: &'a mut Option<Vec<User>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = CliResult<Cond>> + 'a>> {
    Box::pin(async move {
        Ok(match c {
            Cond::Eq(f, v) => {
                let v = named_value(ctx, actor, &f, v, users).await?;
                Cond::Eq(f, v)
            }
            Cond::Ne(f, v) => {
                let v = named_value(ctx, actor, &f, v, users).await?;
                Cond::Ne(f, v)
            }
            Cond::In(f, vs) => {
                let mut out = Vec::with_capacity(vs.len());
                for v in vs {
                    out.push(named_value(ctx, actor, &f, v, users).await?);
                }
                Cond::In(f, out)
            }
            Cond::And(cs) => {
                let mut out = Vec::with_capacity(cs.len());
                for c in cs {
                    out.push(named_in(ctx, actor, c, users).await?);
                }
                Cond::And(out)
            }
            Cond::Or(cs) => {
                let mut out = Vec::with_capacity(cs.len());
                for c in cs {
                    out.push(named_in(ctx, actor, c, users).await?);
                }
                Cond::Or(out)
            }
            Cond::Not(c) => Cond::Not(Box::new(named_in(ctx, actor, *c, users).await?)),
            Cond::Related(r, c) => {
                Cond::Related(r, Box::new(named_in(ctx, actor, *c, users).await?))
            }
            other => other,
        })
    })
}

/// A value of a condition on `field` as [`named_in_filters`] gives it.
async fn named_value(
    ctx: &Ctx,
    actor: &Actor,
    field: &str,
    v: Json,
    users: &mut Option<Vec<User>>,
) -> CliResult<Json> {
    let (Some(column), Json::String(text)) = (named_column(field), &v) else {
        return Ok(v);
    };
    if text.trim().is_empty() || crm::Uuid::parse_str(text.trim()).is_ok() {
        return Ok(v);
    }
    Ok(match column {
        NamedColumn::Department => Json::String(
            ctx.crm
                .resolve_department(actor, text)
                .await
                .map_err(err)?
                .id
                .to_string(),
        ),
        NamedColumn::User => {
            if users.is_none() {
                *users = Some(ctx.crm.list_users(actor, None).await.map_err(err)?);
            }
            match user_named_loosely(users.as_deref().unwrap_or_default(), text)? {
                Some(id) => Json::String(id.to_string()),
                None => v,
            }
        }
    })
}

/// The user `text` names among `users`: the username or the display name
/// as typed, else letter case, full-width letters and accents aside
/// ([`crm::pinyin::normalise_query`]). A name several users answer to is
/// refused, naming their usernames; `None` when nobody answers to it.
fn user_named_loosely(users: &[User], text: &str) -> CliResult<Option<UserId>> {
    let typed = text.trim();
    let one = |found: Vec<&User>| -> CliResult<Option<UserId>> {
        match found.as_slice() {
            [] => Ok(None),
            [u] => Ok(Some(u.id)),
            more => Err(format!(
                "'{typed}' is the name of several users ({}); give the username",
                more.iter()
                    .map(|u| format!("{} {}", u.username, u.display_name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    };
    if let Some(u) = users.iter().find(|u| u.username == typed) {
        return Ok(Some(u.id));
    }
    let exact = one(users.iter().filter(|u| u.display_name == typed).collect())?;
    if exact.is_some() {
        return Ok(exact);
    }
    let key = crm::pinyin::normalise_query(typed);
    if key.is_empty() {
        return Ok(None);
    }
    let folded = |s: &str| crm::pinyin::normalise_query(s) == key;
    let by_username = one(users.iter().filter(|u| folded(&u.username)).collect())?;
    if by_username.is_some() {
        return Ok(by_username);
    }
    one(users.iter().filter(|u| folded(&u.display_name)).collect())
}

/// How a batch on a filter goes ahead: `Confirm` for a batch that
/// removes, moves or hands records away, which acts on more than one
/// selected record only with `--yes`.
#[derive(Clone, Copy)]
enum Guard<'a> {
    /// Acts on whatever the filter selects (e.g. sharing).
    None,
    /// The verb (`delete`, `transfer` …) and whether `--yes` was given.
    Confirm(&'a str, bool),
}

/// The records a batch acts on: the ids or codes given, or every visible
/// record matching the filter. A filter's selection is counted on the
/// output (text mode), and under [`Guard::Confirm`] more than one record
/// needs `--yes`.
async fn batch_ids(
    ctx: &Ctx,
    actor: &Actor,
    entity: Entity,
    records: &[String],
    select: &SelectArgs,
    guard: Guard<'_>,
) -> CliResult<Vec<RecordId>> {
    if !select.is_set() {
        return find_ids(ctx, actor, entity, records, Lifecycle::Active).await;
    }
    if !records.is_empty() {
        return Err("name records or give a filter (--where/--search), not both".into());
    }
    let q = named_in_filters(ctx, actor, select.query()?).await?;
    let ids = ctx
        .crm
        .resolve_targets(actor, entity, &crm::view::Targets::Matching(q))
        .await
        .map_err(err)?;
    if ids.is_empty() {
        return Err(format!("no {entity} you can see matches the filter"));
    }
    if let Guard::Confirm(verb, false) = guard
        && ids.len() > 1
    {
        return Err(format!(
            "the filter selects {} {entity} records: add --yes to {verb} them all, or name the records",
            ids.len()
        ));
    }
    if !ctx.json {
        out!("selected {} {entity} record(s) by the filter", ids.len());
    }
    Ok(ids)
}

#[derive(Subcommand)]
enum PoolCmd {
    /// Adds a pool (administrators).
    Add {
        /// Name, e.g. 华东公海.
        name: String,
        /// Pool admins (usernames), repeatable or comma separated.
        #[arg(long, value_delimiter = ',')]
        admin: Vec<String>,
        /// Member users (usernames), repeatable or comma separated.
        #[arg(long, value_delimiter = ',')]
        member: Vec<String>,
        /// Member departments (name or id; sub-departments included), repeatable.
        #[arg(long)]
        dept: Vec<String>,
        /// Customers per claim at most.
        #[arg(long)]
        max_per_claim: Option<u32>,
        /// Claims per user per day at most.
        #[arg(long)]
        max_daily: Option<u32>,
        /// Customers a user may hold at most.
        #[arg(long)]
        cap: Option<u32>,
        /// Customers a department may hold at most.
        #[arg(long)]
        dept_cap: Option<u32>,
        /// Closed-deal customers count toward the caps.
        #[arg(long)]
        deals_count: bool,
        /// Days before a former owner may claim a customer back.
        #[arg(long, default_value_t = 0)]
        cooldown: u32,
        /// Days before recycling that owners are warned.
        #[arg(long, default_value_t = 0)]
        warn: u32,
    },
    /// Lists the pools you belong to.
    List,
    /// Shows a pool with its rules and how many customers it holds.
    Show {
        /// Pool name or id.
        pool: String,
    },
    /// Adds a recycling rule: `pool rule 华东公海 --kind no_follow_up --days 30 --level A=60`.
    Rule {
        /// Pool name or id.
        pool: String,
        /// no_follow_up, no_opportunity or no_deal.
        #[arg(long)]
        kind: String,
        /// N days (for levels without their own).
        #[arg(long, default_value_t = 0)]
        days: u32,
        /// `LEVEL=DAYS`, repeatable.
        #[arg(long)]
        level: Vec<String>,
        /// Closed-deal customers are exempt.
        #[arg(long)]
        exempt_deals: bool,
        /// Customers with an open opportunity are exempt.
        #[arg(long)]
        exempt_open: bool,
    },
    /// Changes a pool's settings (administrators); what is not given stays.
    /// A list flag given replaces that list (`--member none` empties it), a
    /// limit `none` removes it.
    Edit {
        /// Pool name or id.
        pool: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// Pool admins (usernames), repeatable or comma separated; replaces
        /// the admins.
        #[arg(long, value_delimiter = ',')]
        admin: Vec<String>,
        /// Member users (usernames), repeatable or comma separated; replaces
        /// the member users.
        #[arg(long, value_delimiter = ',')]
        member: Vec<String>,
        /// Member departments (name or id), repeatable; replaces them.
        #[arg(long)]
        dept: Vec<String>,
        /// Customers per claim at most (`none`: no limit).
        #[arg(long)]
        max_per_claim: Option<String>,
        /// Claims per user per day at most (`none`: no limit).
        #[arg(long)]
        max_daily: Option<String>,
        /// Customers a user may hold at most (`none`: no limit).
        #[arg(long)]
        cap: Option<String>,
        /// Customers a department may hold at most (`none`: no limit).
        #[arg(long)]
        dept_cap: Option<String>,
        /// Closed-deal customers count toward the caps (`--deals-count false` undoes it).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        deals_count: Option<bool>,
        /// Days before a former owner may claim a customer back.
        #[arg(long)]
        cooldown: Option<u32>,
        /// Days before recycling that owners are warned.
        #[arg(long)]
        warn: Option<u32>,
    },
    /// Removes an empty pool (administrators).
    Delete {
        /// Pool name or id.
        pool: String,
    },
    /// Changes a recycling rule (ids in `pool show`); what is not given stays.
    RuleEdit {
        /// The rule id.
        rule: String,
        /// no_follow_up, no_opportunity or no_deal.
        #[arg(long)]
        kind: Option<String>,
        /// N days (for levels without their own).
        #[arg(long)]
        days: Option<u32>,
        /// `LEVEL=DAYS`, repeatable; replaces the levels' days (`--level none` removes them).
        #[arg(long)]
        level: Vec<String>,
        /// Closed-deal customers are exempt (`--exempt-deals false` undoes it).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        exempt_deals: Option<bool>,
        /// Customers with an open opportunity are exempt (`--exempt-open false` undoes it).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        exempt_open: Option<bool>,
        /// Switch the rule off.
        #[arg(long, conflicts_with = "on")]
        off: bool,
        /// Switch the rule back on.
        #[arg(long)]
        on: bool,
    },
    /// Removes a recycling rule (ids in `pool show`).
    RuleDelete {
        /// The rule id.
        rule: String,
    },
    /// Lists the customers in a pool's public (or invalid) area.
    Customers {
        /// Pool name or id.
        pool: String,
        /// The invalid area instead (pool admins).
        #[arg(long)]
        invalid: bool,
        /// Fuzzy search.
        #[arg(long, short = 's')]
        search: Option<String>,
        /// Page number.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
    },
    /// Claims customers from the public pool (领取).
    Claim {
        /// Ids or codes.
        #[arg(required = true)]
        records: Vec<String>,
    },
    /// Releases customers to the pool (退回) with a reason.
    Release {
        /// Ids or codes.
        records: Vec<String>,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The pool (default: the one it came from or its owner's).
        #[arg(long)]
        to: Option<String>,
        /// Or every customer you can see matching a filter.
        #[command(flatten)]
        select: SelectArgs,
        /// With --where/--search: act even when the filter selects more
        /// than one record.
        #[arg(long)]
        yes: bool,
    },
    /// Assigns pool customers to a user (分配; pool admins).
    Assign {
        /// Ids or codes.
        #[arg(required = true)]
        records: Vec<String>,
        /// The user (username).
        #[arg(long)]
        to: String,
    },
    /// Moves customers into a pool's public or invalid area.
    Move {
        /// Ids or codes.
        records: Vec<String>,
        /// The pool.
        #[arg(long)]
        to: String,
        /// To the invalid area (无效客户库).
        #[arg(long)]
        invalid: bool,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Or every customer you can see matching a filter.
        #[command(flatten)]
        select: SelectArgs,
        /// With --where/--search: act even when the filter selects more
        /// than one record.
        #[arg(long)]
        yes: bool,
    },
    /// Creates customers straight into a pool: `--row 'name=…,phone=…'`, repeatable.
    Import {
        /// Pool name or id.
        pool: String,
        /// One customer as comma-separated `field=value` pairs. A comma
        /// starts the next pair only when followed by `key=` (key: letters,
        /// digits, `_`, `.` or CJK); otherwise it is part of the value, as
        /// in `tags=重点,华北`.
        #[arg(long, required = true)]
        row: Vec<String>,
    },
    /// Runs the recycling rules (回收); `--dry-run --at DATE` explains instead.
    Sweep {
        /// Change nothing; show what would happen and why.
        #[arg(long)]
        dry_run: bool,
        /// For a dry run: evaluate at this date or time.
        #[arg(long)]
        at: Option<String>,
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
    },
    /// Explains rule by rule whether and when a customer would be recycled.
    Explain {
        /// Id or code.
        record: String,
        /// Evaluate at this date or time.
        #[arg(long)]
        at: Option<String>,
    },
    /// Shows every move of a customer between places.
    History {
        /// Id or code.
        record: String,
    },
    /// Locks customers against recycling (managers); `--unlock` undoes it.
    Lock {
        /// Ids or codes.
        #[arg(required = true)]
        records: Vec<String>,
        /// Unlock instead.
        #[arg(long)]
        unlock: bool,
    },
    /// Marks a customer closed-deal (成交).
    Deal {
        /// Id or code.
        record: String,
        /// When (default now).
        #[arg(long)]
        at: Option<String>,
    },
}

/// A customer id by id or code, whether or not the actor can see it (pool
/// customers have no owner); the engine checks the permissions.
async fn customer_id(ctx: &Ctx, actor: &Actor, key: &str) -> CliResult<RecordId> {
    find_customer_id(ctx, actor, key)
        .await?
        .ok_or_else(|| format!("customer {} not found", key.trim()))
}

/// A customer id by id or code as [`customer_id`] finds it; `None` when no
/// customer has the code.
async fn find_customer_id(ctx: &Ctx, actor: &Actor, key: &str) -> CliResult<Option<RecordId>> {
    if let Ok(id) = key.trim().parse::<RecordId>() {
        return Ok(Some(id));
    }
    let id = any_record_id(ctx, actor, Entity::Customer, key).await?;
    if let Some(id) = id {
        ctx.name(id, key);
    }
    Ok(id)
}

/// The customers a batch names by id or code. A code no customer has is
/// passed on as an id no record has, named by that code: the batch refuses
/// it as not found, exactly as it refuses a customer the actor may not
/// reach, so that the answer does not tell a hidden customer from a
/// missing one.
async fn customer_ids(ctx: &Ctx, actor: &Actor, keys: &[String]) -> CliResult<Vec<RecordId>> {
    let mut out = Vec::new();
    for k in keys {
        if k.trim().is_empty() {
            return Err("a customer id or code is empty".into());
        }
        let id = match find_customer_id(ctx, actor, k).await? {
            Some(id) => id,
            None => {
                let nobody = RecordId(crm::Uuid::now_v7());
                ctx.name(nobody, k);
                nobody
            }
        };
        out.push(id);
    }
    Ok(out)
}

/// A time in the companies' local time zone, to the minute.
fn local(ctx: &Ctx, t: DateTime<Utc>) -> String {
    t.with_timezone(&ctx.crm.config().utc_offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// When something given "until" a moment ends, in local time: a moment at
/// local midnight reads as the day before, through its end (`--until
/// 2027-01-31` is shown `2027-01-31 24:00`, not `2027-02-01 00:00`).
fn until(ctx: &Ctx, t: DateTime<Utc>) -> String {
    let l = t.with_timezone(&ctx.crm.config().utc_offset);
    if l.format("%H:%M:%S%.f").to_string() == "00:00:00" {
        let day = l.date_naive().pred_opt().unwrap_or(l.date_naive());
        return format!("{} 24:00", day.format("%Y-%m-%d"));
    }
    l.format("%Y-%m-%d %H:%M").to_string()
}

/// A time in the companies' local time zone, to the second.
fn local_secs(ctx: &Ctx, t: DateTime<Utc>) -> String {
    t.with_timezone(&ctx.crm.config().utc_offset)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A stored instant (RFC 3339 text, as records hold their date-time
/// fields) in local time to the minute; any other text as it is.
fn local_text(ctx: &Ctx, text: &str) -> String {
    match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => local(ctx, t.with_timezone(&Utc)),
        Err(_) => text.to_string(),
    }
}

/// `LEVEL=DAYS` pairs as a rule's days per level.
fn level_days(levels: &[String]) -> CliResult<std::collections::BTreeMap<String, u32>> {
    let mut out = std::collections::BTreeMap::new();
    for l in levels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("'{l}' must look like LEVEL=DAYS"))?;
        let n: u32 = v
            .trim()
            .parse()
            .map_err(|_| format!("'{v}' is not a number of days"))?;
        if out.insert(k.trim().to_string(), n).is_some() {
            return Err(format!(
                "level {} is given twice; give each level once",
                k.trim()
            ));
        }
    }
    Ok(out)
}

/// A pool limit given on `pool edit`: a number, or `none` for no limit;
/// not given keeps the current one.
fn limit_arg(given: Option<String>, current: Option<u32>, what: &str) -> CliResult<Option<u32>> {
    match given.as_deref().map(str::trim) {
        None => Ok(current),
        Some("none") => Ok(None),
        Some(n) => n
            .parse()
            .map(Some)
            .map_err(|_| format!("--{what} takes a number or none, not '{n}'")),
    }
}

/// Whether a repeatable flag asks to empty its list (`--member none`).
fn clears(values: &[String]) -> bool {
    matches!(values, [one] if one.trim() == "none")
}

/// A recycling rule by id among the pools the actor belongs to.
async fn find_rule(
    ctx: &Ctx,
    actor: &Actor,
    key: &str,
) -> CliResult<(crm::pool::Pool, crm::pool::RecycleRule)> {
    let id: crm::pool::RuleId = key
        .parse()
        .map_err(|_| format!("'{key}' is not a rule id (`pool show POOL` lists them)"))?;
    for p in ctx.crm.list_pools(actor).await.map_err(err)? {
        let rules = ctx.crm.recycle_rules(actor, p.id).await.map_err(err)?;
        if let Some(r) = rules.into_iter().find(|r| r.id == id) {
            return Ok((p, r));
        }
    }
    Err(format!("rule {key} not found"))
}

async fn pool_cmd(ctx: &Ctx, actor: &Actor, cmd: PoolCmd) -> CliResult {
    use crm::pool::{Place, PoolLimits, PoolSpec, RuleSpec, SweepOptions};
    match cmd {
        PoolCmd::Add {
            name,
            admin,
            member,
            dept,
            max_per_claim,
            max_daily,
            cap,
            dept_cap,
            deals_count,
            cooldown,
            warn,
        } => {
            let mut spec = PoolSpec {
                name,
                limits: PoolLimits {
                    max_per_claim,
                    max_claims_per_day: max_daily,
                    max_owned_per_user: cap,
                    max_owned_per_department: dept_cap,
                    deals_count_toward_cap: deals_count,
                    reclaim_cooldown_days: cooldown,
                    warn_days: warn,
                },
                ..PoolSpec::default()
            };
            for u in admin {
                spec.admins.push(resolve_user(ctx, actor, &u).await?.id);
            }
            for u in member {
                spec.member_users
                    .push(resolve_user(ctx, actor, &u).await?.id);
            }
            for d in dept {
                spec.member_departments
                    .push(ctx.crm.resolve_department(actor, &d).await.map_err(err)?.id);
            }
            let p = ctx.crm.create_pool(actor, spec).await.map_err(err)?;
            ctx.print(json!(p), || format!("added pool {}", p.name));
        }
        PoolCmd::List => {
            let pools = ctx.crm.list_pools(actor).await.map_err(err)?;
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = users_by_id(&users);
            let rows = pools
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.admins
                            .iter()
                            .map(|u| name(Some(*u)))
                            .collect::<Vec<_>>()
                            .join(","),
                        format!(
                            "{}{}",
                            p.member_users
                                .iter()
                                .map(|u| name(Some(*u)))
                                .collect::<Vec<_>>()
                                .join(","),
                            if p.member_departments.is_empty() {
                                String::new()
                            } else {
                                format!(" +{} 部门", p.member_departments.len())
                            }
                        ),
                        limits_text(&p.limits),
                    ]
                })
                .collect();
            ctx.table(json!(pools), &["公海", "管理员", "成员", "规则限制"], rows);
        }
        PoolCmd::Show { pool } => {
            let p = ctx.crm.resolve_pool(actor, &pool).await.map_err(err)?;
            let rules = ctx.crm.recycle_rules(actor, p.id).await.map_err(err)?;
            let counts = ctx.crm.pool_counts(actor, p.id).await.map_err(err)?;
            ctx.print(json!({"pool": p, "rules": rules, "counts": counts}), || {
                let mut lines = vec![
                    format!("{} ({})", p.name, p.id),
                    // The invalid area is counted for the pool's admins only.
                    format!(
                        "  公海 {}{}",
                        counts.get(&Place::Public).copied().unwrap_or(0),
                        counts
                            .get(&Place::Invalid)
                            .map(|n| format!(" · 无效 {n}"))
                            .unwrap_or_default()
                    ),
                    format!("  限制: {}", limits_text(&p.limits)),
                ];
                for r in &rules {
                    lines.push(format!(
                        "  rule {}: {}{}",
                        r.id,
                        r.describe(),
                        if r.spec.enabled { "" } else { " (off)" }
                    ));
                }
                lines.join("\n")
            });
        }
        PoolCmd::Rule {
            pool,
            kind,
            days,
            level,
            exempt_deals,
            exempt_open,
        } => {
            let p = ctx.crm.resolve_pool(actor, &pool).await.map_err(err)?;
            let mut spec = RuleSpec::new(kind.parse()?, days);
            spec.level_days = level_days(&level)?;
            spec.exempt_deals = exempt_deals;
            spec.exempt_open_opportunities = exempt_open;
            let r = ctx
                .crm
                .add_recycle_rule(actor, p.id, spec)
                .await
                .map_err(err)?;
            ctx.print(json!(r), || {
                format!("pool {}: rule {} added ({})", p.name, r.id, r.describe())
            });
        }
        PoolCmd::Edit {
            pool,
            name,
            admin,
            member,
            dept,
            max_per_claim,
            max_daily,
            cap,
            dept_cap,
            deals_count,
            cooldown,
            warn,
        } => {
            // Only what is given changes: the rest is the pool as read
            // (read again by its id when it changed meanwhile, renamed as
            // it may have been).
            let pool_id = ctx.crm.resolve_pool(actor, &pool).await.map_err(err)?.id;
            let mut attempt = 0;
            let p = loop {
                attempt += 1;
                let p = ctx.crm.pool(actor, pool_id).await.map_err(err)?;
                let l = &p.limits;
                let mut spec = PoolSpec {
                    name: name.clone().unwrap_or_else(|| p.name.clone()),
                    admins: p.admins.clone(),
                    member_users: p.member_users.clone(),
                    member_departments: p.member_departments.clone(),
                    limits: PoolLimits {
                        max_per_claim: limit_arg(
                            max_per_claim.clone(),
                            l.max_per_claim,
                            "max-per-claim",
                        )?,
                        max_claims_per_day: limit_arg(
                            max_daily.clone(),
                            l.max_claims_per_day,
                            "max-daily",
                        )?,
                        max_owned_per_user: limit_arg(cap.clone(), l.max_owned_per_user, "cap")?,
                        max_owned_per_department: limit_arg(
                            dept_cap.clone(),
                            l.max_owned_per_department,
                            "dept-cap",
                        )?,
                        deals_count_toward_cap: deals_count.unwrap_or(l.deals_count_toward_cap),
                        reclaim_cooldown_days: cooldown.unwrap_or(l.reclaim_cooldown_days),
                        warn_days: warn.unwrap_or(l.warn_days),
                    },
                };
                if !admin.is_empty() {
                    spec.admins.clear();
                    if !clears(&admin) {
                        for u in &admin {
                            spec.admins.push(resolve_user(ctx, actor, u).await?.id);
                        }
                    }
                }
                if !member.is_empty() {
                    spec.member_users.clear();
                    if !clears(&member) {
                        for u in &member {
                            spec.member_users
                                .push(resolve_user(ctx, actor, u).await?.id);
                        }
                    }
                }
                if !dept.is_empty() {
                    spec.member_departments.clear();
                    if !clears(&dept) {
                        for d in &dept {
                            spec.member_departments
                                .push(ctx.crm.resolve_department(actor, d).await.map_err(err)?.id);
                        }
                    }
                }
                match ctx.crm.update_pool(actor, p.id, p.version, spec).await {
                    // Changed meanwhile (a rule, the members): the change is
                    // made again on the pool as it is now.
                    Err(crm::Error::Conflict { .. }) if attempt < EDIT_TRIES => {
                        back_off(attempt);
                        continue;
                    }
                    done => break done.map_err(err)?,
                }
            };
            ctx.print(json!(p), || {
                format!("updated pool {}; 限制: {}", p.name, limits_text(&p.limits))
            });
        }
        PoolCmd::Delete { pool } => {
            let p = ctx.crm.resolve_pool(actor, &pool).await.map_err(err)?;
            ctx.crm.delete_pool(actor, p.id).await.map_err(err)?;
            ctx.print(json!({"ok": true}), || format!("deleted pool {}", p.name));
        }
        PoolCmd::RuleEdit {
            rule,
            kind,
            days,
            level,
            exempt_deals,
            exempt_open,
            off,
            on,
        } => {
            let (p, r) = find_rule(ctx, actor, &rule).await?;
            let mut spec = r.spec.clone();
            if let Some(k) = kind {
                spec.kind = k.parse()?;
            }
            if let Some(d) = days {
                spec.days = d;
            }
            if clears(&level) {
                spec.level_days.clear();
            } else if !level.is_empty() {
                spec.level_days = level_days(&level)?;
            }
            if let Some(e) = exempt_deals {
                spec.exempt_deals = e;
            }
            if let Some(e) = exempt_open {
                spec.exempt_open_opportunities = e;
            }
            if off {
                spec.enabled = false;
            }
            if on {
                spec.enabled = true;
            }
            let r = ctx
                .crm
                .update_recycle_rule(actor, r.id, r.version, spec)
                .await
                .map_err(err)?;
            ctx.print(json!(r), || {
                format!(
                    "pool {}: rule {} changed ({}){}",
                    p.name,
                    r.id,
                    r.describe(),
                    if r.spec.enabled { "" } else { " (off)" }
                )
            });
        }
        PoolCmd::RuleDelete { rule } => {
            let (p, r) = find_rule(ctx, actor, &rule).await?;
            ctx.crm
                .delete_recycle_rule(actor, r.id)
                .await
                .map_err(err)?;
            ctx.print(json!({"ok": true}), || {
                format!("pool {}: rule {} removed ({})", p.name, r.id, r.describe())
            });
        }
        PoolCmd::Customers {
            pool,
            invalid,
            search,
            page,
        } => {
            let p = ctx.crm.resolve_pool(actor, &pool).await.map_err(err)?;
            let mut q = ListQuery::default()
                .page(PageRequest::Offset { page, per_page: 20 })
                .with_total();
            if let Some(s) = search {
                q = q.search(s);
            }
            let place = if invalid {
                Place::Invalid
            } else {
                Place::Public
            };
            let page = ctx
                .crm
                .pool_customers(actor, p.id, place, &q)
                .await
                .map_err(err)?;
            print_records(ctx, actor, Entity::Customer, &page).await?;
        }
        PoolCmd::Claim { records } => {
            let ids = customer_ids(ctx, actor, &records).await?;
            let r = ctx.crm.claim(actor, &ids).await.map_err(err)?;
            report(ctx, "claimed", &r)?;
        }
        PoolCmd::Release {
            records,
            reason,
            to,
            select,
            yes,
        } => {
            let ids = if select.is_set() {
                let guard = Guard::Confirm("release", yes);
                batch_ids(ctx, actor, Entity::Customer, &records, &select, guard).await?
            } else {
                customer_ids(ctx, actor, &records).await?
            };
            let to = match to {
                Some(t) => Some(ctx.crm.resolve_pool(actor, &t).await.map_err(err)?.id),
                None => None,
            };
            let r = ctx
                .crm
                .release(actor, &ids, &reason, to)
                .await
                .map_err(err)?;
            report(ctx, "released", &r)?;
        }
        PoolCmd::Assign { records, to } => {
            let ids = customer_ids(ctx, actor, &records).await?;
            let u = resolve_user(ctx, actor, &to).await?;
            let r = ctx.crm.assign(actor, &ids, u.id).await.map_err(err)?;
            report(ctx, "assigned", &r)?;
        }
        PoolCmd::Move {
            records,
            to,
            invalid,
            reason,
            select,
            yes,
        } => {
            let ids = if select.is_set() {
                let guard = Guard::Confirm("move", yes);
                batch_ids(ctx, actor, Entity::Customer, &records, &select, guard).await?
            } else {
                customer_ids(ctx, actor, &records).await?
            };
            let p = ctx.crm.resolve_pool(actor, &to).await.map_err(err)?;
            let place = if invalid {
                Place::Invalid
            } else {
                Place::Public
            };
            let r = ctx
                .crm
                .move_to_pool(actor, &ids, p.id, place, &reason)
                .await
                .map_err(err)?;
            report(ctx, "moved", &r)?;
        }
        PoolCmd::Import { pool, row } => {
            let p = ctx.crm.resolve_pool(actor, &pool).await.map_err(err)?;
            let inputs = row
                .iter()
                .map(|r| parse_pairs(&split_pairs(r)))
                .collect::<CliResult<Vec<_>>>()?;
            let ids = ctx
                .crm
                .import_into_pool(actor, p.id, inputs)
                .await
                .map_err(err)?;
            ctx.print(json!(ids), || {
                format!("{} customers imported into pool {}", ids.len(), p.name)
            });
        }
        PoolCmd::Sweep { dry_run, at, pool } => {
            let at = match at {
                Some(t) => Some(ctx.crm.parse_datetime(&t)?),
                None => None,
            };
            let pool = match pool {
                Some(p) => Some(ctx.crm.resolve_pool(actor, &p).await.map_err(err)?.id),
                None => None,
            };
            let s = ctx
                .crm
                .sweep(actor, &SweepOptions { dry_run, at, pool })
                .await
                .map_err(err)?;
            if ctx.json {
                ctx.print(json!(s), String::new);
                return Ok(());
            }
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = users_by_id(&users);
            let (gone, warned) = if s.dry_run {
                ("would recycle", "due soon")
            } else {
                ("recycled", "warned")
            };
            let mut rows = Vec::new();
            for (what, items) in [
                (gone, &s.recycled),
                (warned, &s.warned),
                ("due soon", &s.upcoming),
            ] {
                for i in items {
                    rows.push(vec![
                        what.to_string(),
                        i.code.clone().unwrap_or_default(),
                        i.name.clone(),
                        name(i.owner_id),
                        i.pool.clone(),
                        i.rule.clone(),
                        i.due_at.map(|d| local(ctx, d)).unwrap_or_default(),
                        i.why.clone(),
                    ]);
                }
            }
            // The totals count the customers the actor may not see too
            // (listed below only as a count).
            let h = &s.hidden;
            let refused = s.refused.len() as u64 + h.refused;
            out!(
                "{} at {}: {} {}, {} {}{}",
                if s.dry_run { "dry run" } else { "sweep" },
                local(ctx, s.at),
                s.recycled.len() as u64 + h.recycled,
                gone,
                (s.warned.len() + s.upcoming.len()) as u64 + h.warned + h.upcoming,
                warned,
                if refused == 0 {
                    String::new()
                } else {
                    format!(", {refused} refused")
                }
            );
            if !rows.is_empty() {
                ctx.table(
                    Json::Null,
                    &[
                        "",
                        "编号",
                        "客户名称",
                        "负责人",
                        "公海",
                        "规则",
                        "到期",
                        "原因",
                    ],
                    rows,
                );
            }
            // Refused customers named by code (the actor may read them: the
            // others are only counted), not by id.
            for (id, why) in &s.refused {
                let code = ctx
                    .crm
                    .store()
                    .get(crm::schema::Table::Customers, id.0)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.get("code").as_text().map(str::to_string))
                    .unwrap_or_else(|| id.to_string());
                out!("  refused {code}: {why}");
            }
            // Customers the actor may not read are only counted.
            if h.total() > 0 {
                let parts: Vec<String> = [
                    (h.recycled, gone),
                    (h.warned, warned),
                    (h.upcoming, "due soon"),
                    (h.refused, "refused"),
                ]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
                out!(
                    "of which {} customers you may not see ({})",
                    h.total(),
                    parts.join(", ")
                );
            }
        }
        PoolCmd::Explain { record, at } => {
            let id = customer_id(ctx, actor, &record).await?;
            let at = match at {
                Some(t) => Some(ctx.crm.parse_datetime(&t)?),
                None => None,
            };
            let e = ctx
                .crm
                .explain_recycling(actor, id, at)
                .await
                .map_err(err)?;
            ctx.print(json!(e), || {
                let mut lines = vec![format!("{} at {}: {}", record, local(ctx, e.at), e.summary)];
                for o in &e.outcomes {
                    lines.push(format!(
                        "  {:?}: {}{} — {}",
                        o.status,
                        o.rule,
                        o.due_at
                            .map(|d| format!(", due {}", local(ctx, d)))
                            .unwrap_or_default(),
                        o.why
                    ));
                }
                lines.join("\n")
            });
        }
        PoolCmd::History { record } => {
            let id = customer_id(ctx, actor, &record).await?;
            let h = ctx.crm.pool_history(actor, id).await.map_err(err)?;
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let name = users_by_id(&users);
            let rows = h
                .iter()
                .map(|m| {
                    vec![
                        local(ctx, m.at),
                        m.action.clone(),
                        format!(
                            "{} → {}",
                            m.from.map(|p| p.name_zh()).unwrap_or("新建"),
                            m.to.name_zh()
                        ),
                        format!("{} → {}", name(m.from_owner), name(m.to_owner)),
                        m.actor_id
                            .map(|a| name(Some(a)))
                            .unwrap_or_else(|| "系统回收".into()),
                        m.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            ctx.table(
                json!(h),
                &["时间", "操作", "去向", "负责人", "操作人", "原因"],
                rows,
            );
        }
        PoolCmd::Lock { records, unlock } => {
            let ids = customer_ids(ctx, actor, &records).await?;
            let r = ctx.crm.set_locked(actor, &ids, !unlock).await;
            report(ctx, if unlock { "unlocked" } else { "locked" }, &r)?;
        }
        PoolCmd::Deal { record, at } => {
            let id = customer_id(ctx, actor, &record).await?;
            let at = match at {
                Some(t) => Some(
                    ctx.crm
                        .parse_datetime(&t)
                        .map_err(|e| format!("--at: {e}"))?,
                ),
                None => None,
            };
            ctx.crm.mark_deal(actor, id, at).await.map_err(err)?;
            ctx.print(json!({"ok": true}), || {
                format!("{record} marked closed-deal (成交)")
            });
        }
    }
    Ok(())
}

async fn customer_extra_cmd(ctx: &Ctx, actor: &Actor, cmd: CustomerExtraCmd) -> CliResult {
    use crm::dedupe::{DuplicateQuery, MergeSpec};
    match cmd {
        CustomerExtraCmd::Dupes {
            field,
            check,
            of,
            rules,
            set,
            rebuild,
            after,
            limit,
        } => {
            for s in &set {
                let (f, m) = s
                    .split_once('=')
                    .ok_or_else(|| format!("'{s}' must look like field=block|warn|off"))?;
                ctx.crm
                    .set_dedupe_rule(actor, f, m.parse()?)
                    .await
                    .map_err(err)?;
            }
            if rebuild {
                let st = ctx.crm.rebuild_duplicate_keys(actor).await.map_err(err)?;
                ctx.print(json!(st), || {
                    format!(
                        "{} customers: {} keys added, {} removed, {} flags changed",
                        st.customers, st.added, st.removed, st.flagged
                    )
                });
                return Ok(());
            }
            if rules || !set.is_empty() {
                let r = ctx.crm.dedupe_rules(actor).await.map_err(err)?;
                let rows = r
                    .iter()
                    .map(|x| vec![x.field.clone(), x.mode.to_string()])
                    .collect();
                ctx.table(json!(r), &["字段", "处理"], rows);
                return Ok(());
            }
            let matches = if !check.is_empty() {
                Some(
                    ctx.crm
                        .find_duplicates(actor, &parse_pairs(&check)?)
                        .await
                        .map_err(err)?,
                )
            } else if let Some(key) = of {
                let r = find_record(ctx, actor, Entity::Customer, &key, Lifecycle::Any).await?;
                Some(ctx.crm.duplicates_of(actor, r.id).await.map_err(err)?)
            } else {
                None
            };
            if let Some(m) = matches {
                let rows = m
                    .iter()
                    .map(|x| {
                        vec![
                            x.field.clone(),
                            x.value.clone(),
                            x.mode.to_string(),
                            x.code.clone().unwrap_or_else(|| "(hidden)".into()),
                            x.name.clone().unwrap_or_default(),
                            x.owner.clone(),
                        ]
                    })
                    .collect();
                ctx.table(
                    json!(m),
                    &["字段", "值", "处理", "编号", "客户名称", "负责人"],
                    rows,
                );
                return Ok(());
            }
            let rep = ctx
                .crm
                .duplicate_report(
                    actor,
                    &DuplicateQuery {
                        fields: field,
                        after,
                        limit,
                    },
                )
                .await
                .map_err(err)?;
            if ctx.json {
                ctx.print(json!(rep), String::new);
                return Ok(());
            }
            let mut rows = Vec::new();
            for g in &rep.groups {
                rows.push(vec![
                    g.reason.clone(),
                    g.mode.to_string(),
                    g.members
                        .iter()
                        .map(|m| format!("{} {}", m.code.clone().unwrap_or_default(), m.name))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    if g.hidden > 0 {
                        format!("+{} hidden", g.hidden)
                    } else {
                        String::new()
                    },
                ]);
            }
            out!("{} duplicate groups", rep.groups.len());
            if !rows.is_empty() {
                ctx.table(Json::Null, &["原因", "处理", "客户", ""], rows);
            }
            if let Some(n) = rep.next {
                out!("more: --after '{n}'");
            }
        }
        CustomerExtraCmd::Merge {
            survivor,
            others,
            take,
        } => {
            let s = find_record(ctx, actor, Entity::Customer, &survivor, Lifecycle::Active).await?;
            let others = find_ids(ctx, actor, Entity::Customer, &others, Lifecycle::Active).await?;
            let mut chosen = std::collections::BTreeMap::new();
            for t in take {
                let (f, c) = t
                    .split_once('=')
                    .ok_or_else(|| format!("'{t}' must look like field=CODE"))?;
                let r = find_record(ctx, actor, Entity::Customer, c, Lifecycle::Active).await?;
                chosen.insert(f.trim().to_string(), r.id);
            }
            let r = ctx
                .crm
                .merge_customers(
                    actor,
                    &MergeSpec {
                        survivor: s.id,
                        others: others.clone(),
                        take: chosen,
                    },
                )
                .await
                .map_err(err)?;
            ctx.print(json!(r), || {
                format!(
                    "merged {} customers into {} {}",
                    others.len(),
                    r.code.clone().unwrap_or_default(),
                    r.text("name").unwrap_or_default()
                )
            });
        }
        CustomerExtraCmd::View { record } => {
            let id = customer_id(ctx, actor, &record).await?;
            let v = ctx.crm.customer_view(actor, id).await.map_err(err)?;
            if ctx.json {
                ctx.print(json!(v), String::new);
                return Ok(());
            }
            let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
            let customs = ctx
                .crm
                .custom_fields(actor, Entity::Customer)
                .await
                .map_err(err)?;
            print_record(ctx, actor, Entity::Customer, &v.customer, &customs).await?;
            let name = users_by_id(&users);
            out!(
                "place: {}{}{}",
                v.place.place_zh.as_deref().unwrap_or("—"),
                v.place
                    .pool
                    .as_ref()
                    .map(|(_, n)| format!(" · pool {n}"))
                    .unwrap_or_default(),
                if v.place.locked == Some(true) {
                    " · locked"
                } else {
                    ""
                }
            );
            if let Some(r) = &v.recycling {
                out!("recycling: {}", r.summary);
            }
            out!("contacts ({}):", section_count(&v.contacts));
            for c in &v.contacts.items {
                out!(
                    "  {} {} {} {}",
                    c.code.clone().unwrap_or_default(),
                    c.text("name").unwrap_or_default(),
                    c.text("title").unwrap_or_default(),
                    c.text("mobile").unwrap_or_default()
                );
            }
            out!("follow-ups ({}):", section_count(&v.follow_ups));
            for f in &v.follow_ups.items {
                out!(
                    "  {} {} {}",
                    local_text(ctx, &cell(f.fields.get("occurred_at"))),
                    f.text("channel").unwrap_or_default(),
                    f.text("content").unwrap_or_default()
                );
            }
            for (table, sec) in &v.sections {
                out!("{} ({table}): {}", sec.title, section_count(sec));
                for item in &sec.items {
                    out!("  {}", view_item_line(table, item));
                }
            }
            if !v.attachments.is_empty() {
                out!("attachments: {}", v.attachments.len());
            }
            for d in &v.possible_duplicates {
                out!(
                    "possible duplicate by {} {}: {} ({})",
                    d.field,
                    d.value,
                    d.code.clone().unwrap_or_else(|| "hidden".into()),
                    d.owner
                );
            }
            for m in &v.pool_history {
                out!(
                    "  {} {} {} → {} by {}{}",
                    local(ctx, m.at),
                    m.action,
                    name(m.from_owner),
                    name(m.to_owner),
                    m.actor_id
                        .map(|a| name(Some(a)))
                        .unwrap_or_else(|| "系统".into()),
                    m.reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
            }
        }
        CustomerExtraCmd::Due {
            overdue,
            page,
            per_page,
        } => {
            let page = PageRequest::Offset { page, per_page };
            let p = if overdue {
                ctx.crm.follow_ups_overdue(actor, page).await
            } else {
                ctx.crm.follow_ups_due_today(actor, page).await
            }
            .map_err(err)?;
            print_records(ctx, actor, Entity::Customer, &p).await?;
        }
        CustomerExtraCmd::Birthdays { days } => {
            let b = ctx.crm.upcoming_birthdays(actor, days).await.map_err(err)?;
            // The contact by its code, its customer by code and name (one
            // the actor may not read is not told).
            let mut names = Names::load(ctx, actor).await?;
            let mut rows = Vec::new();
            for x in &b {
                let customer = match x.contact.fields.get("customer_id").and_then(Json::as_str) {
                    Some(id) => names.record(ctx, actor, Entity::Customer, id).await,
                    None => String::new(),
                };
                rows.push(vec![
                    x.date.to_string(),
                    x.in_days.to_string(),
                    x.contact.code.clone().unwrap_or_default(),
                    x.contact.text("name").unwrap_or_default().to_string(),
                    customer,
                    x.contact.text("title").unwrap_or_default().to_string(),
                    x.contact.text("mobile").unwrap_or_default().to_string(),
                ]);
            }
            ctx.table(
                json!(b),
                &["生日", "天后", "编号", "姓名", "客户", "职务", "手机"],
                rows,
            );
        }
        CustomerExtraCmd::Expiring { days } => {
            let items = ctx
                .crm
                .about_to_be_recycled(actor, days)
                .await
                .map_err(err)?;
            let rows = items
                .iter()
                .map(|i| {
                    vec![
                        i.code.clone().unwrap_or_default(),
                        i.name.clone(),
                        i.due_at.map(|d| local(ctx, d)).unwrap_or_default(),
                        i.rule.clone(),
                        i.why.clone(),
                    ]
                })
                .collect();
            ctx.table(
                json!(items),
                &["编号", "客户名称", "回收时间", "规则", "原因"],
                rows,
            );
        }
        CustomerExtraCmd::Transferred {
            days,
            page,
            per_page,
        } => {
            let p = ctx
                .crm
                .recently_transferred_to_me(actor, days, PageRequest::Offset { page, per_page })
                .await
                .map_err(err)?;
            print_records(ctx, actor, Entity::Customer, &p).await?;
        }
    }
    Ok(())
}
