//! The CLI's spreadsheet commands (feature `xlsx`): `template`, `import`,
//! `export` and `bench-io`, with progress bars on the terminal.
//!
//! Every workbook they write (a template, an export, an import's error
//! workbook) goes through [`OutFile`]: the path is checked before anything
//! is done (never the workbook being imported, the database or its journal
//! files; an existing file only when it is a regular file named `*.xlsx`),
//! the workbook is written to a hidden file beside it, flushed to disk and
//! renamed into place only once complete, so a failed write (a full disk,
//! say) is an error naming the file and leaves no truncated workbook.

use super::{CliResult, Ctx, err};
use clap::Args;
use crm::import::{CommitMode, DuplicatePolicy, ImportOptions, ImportStatus};
use crm::io::{Lang, Limits, ReadOptions, Workbook};
use crm::query::SortBy;
use crm::sales::SalesList;
use crm::store::Lifecycle;
use crm::{Actor, Cond, Entity, ListQuery};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[path = "../../benches/io_bench/mod.rs"]
mod io_bench;

/// `crm template`.
#[derive(Args)]
pub struct TemplateArgs {
    /// What the template imports: customer, contact, user or product.
    pub entity: Entity,
    /// Where to write it (default `<entity>-template.xlsx`). An existing
    /// file is replaced only when it is named `*.xlsx`; never the database.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Header language: zh or en.
    #[arg(long, default_value = "zh")]
    pub lang: Lang,
    /// Contact column groups of a customer template (联系人1姓名 …), at
    /// most 20.
    #[arg(long, default_value_t = 2)]
    pub contacts: u32,
    /// The database (the global `--db`), which the template must not
    /// replace.
    #[arg(from_global)]
    pub db: String,
}

/// `crm import`.
#[derive(Args)]
pub struct ImportArgs {
    /// What the workbook holds: customer (with contact column groups),
    /// contact, user or product.
    pub entity: Option<Entity>,
    /// The workbook (.xlsx).
    pub file: Option<PathBuf>,
    /// The sheet to read (default the first).
    #[arg(long)]
    pub sheet: Option<String>,
    /// Duplicates: skip, update or fail.
    #[arg(long, default_value = "skip")]
    pub policy: DuplicatePolicy,
    /// Check everything and report, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --policy update: a blank cell clears the stored value (清空;
    /// not of required fields, masked or read-only columns, contact
    /// groups). Default: a blank cell leaves the value as it is.
    #[arg(long)]
    pub blanks_clear: bool,
    /// Commit batch by batch with a checkpoint; importing the same sheet
    /// of the same file again with the same options (policy, owner,
    /// department, pool) resumes an interrupted import. Default: all or
    /// nothing.
    #[arg(long)]
    pub batches: bool,
    /// Rows per batch.
    #[arg(long, default_value_t = crm::import::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Owner of the imported records (username); needs transfer.
    #[arg(long)]
    pub owner: Option<String>,
    /// Department of the imported records (name).
    #[arg(long)]
    pub department: Option<String>,
    /// Customer pool to import into (its public area, no owner; pool admins).
    #[arg(long)]
    pub pool: Option<String>,
    /// Where rejected and skipped rows go (default: beside the file, its
    /// extension replaced: `客户.xlsx` → `客户.errors.xlsx`).
    /// Checked before importing: its directory must exist, and an existing
    /// file is replaced only when it is named `*.xlsx`; never the workbook
    /// imported or the database.
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// Language of the error workbook and of the reasons printed: zh or en.
    #[arg(long, default_value = "zh")]
    pub lang: Lang,
    /// Undo the import with this id instead (on its own: no entity, file,
    /// `--dry-run` or `--list`; an undo is never a trial run).
    #[arg(
        long,
        conflicts_with_all = [
            "entity", "file", "dry_run", "list", "sheet", "batches", "owner", "department", "pool",
            "blanks_clear",
        ]
    )]
    pub undo: Option<String>,
    /// List imports instead.
    #[arg(long)]
    pub list: bool,
    /// The database (the global `--db`), which the error workbook must
    /// not replace.
    #[arg(from_global)]
    pub db: String,
}

/// `crm export`.
#[derive(Args)]
pub struct ExportArgs {
    /// What to export: customer, contact, follow_up, product, opportunity,
    /// quote or contract.
    pub entity: Entity,
    /// Where to write (default `<entity>-export.xlsx`). An existing file is
    /// replaced only when it is a regular file named `*.xlsx` (and never
    /// the database): another file is refused, to be removed or named
    /// otherwise. The workbook is written beside it and replaces it only
    /// once complete.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Conditions like `level=A`, `contacts.mobile^138`; repeatable.
    #[arg(long = "where", short = 'w')]
    pub conditions: Vec<String>,
    /// Fuzzy search, pinyin initials included.
    #[arg(long, short = 's')]
    pub search: Option<String>,
    /// Sort keys like `name` or `-created_at`; repeatable.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Vec<String>,
    /// Fields in the order wanted, comma-separated (default every visible
    /// field).
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Header language: zh or en.
    #[arg(long, default_value = "zh")]
    pub lang: Lang,
    /// Export the recycle bin.
    #[arg(long)]
    pub deleted: bool,
    /// Export archived records.
    #[arg(long)]
    pub archived: bool,
    /// Opportunities and contracts: only this status (tracking, won …;
    /// draft, executing …).
    #[arg(long, help_heading = "Sales lists")]
    pub status: Option<String>,
    /// Opportunities, quotes and contracts: only this customer's (code or
    /// name).
    #[arg(long, help_heading = "Sales lists")]
    pub customer: Option<String>,
    /// Opportunities: only this stage key (a stage of the company's or a
    /// department's pipeline, see `opportunity pipeline-show`).
    #[arg(long, help_heading = "Sales lists")]
    pub stage: Option<String>,
    /// Contracts: only this type (sales, service, cooperation, purchase).
    #[arg(long = "type", help_heading = "Sales lists")]
    pub contract_type: Option<String>,
    /// Contracts: only executing ones ending within N days.
    #[arg(long, help_heading = "Sales lists")]
    pub ending: Option<u32>,
    /// Contracts: only executing ones past their end date.
    #[arg(long, help_heading = "Sales lists")]
    pub expired: bool,
    /// Contracts: only those not fully collected.
    #[arg(long, help_heading = "Sales lists")]
    pub unpaid: bool,
    /// The database (the global `--db`), which the export must not
    /// replace.
    #[arg(from_global)]
    pub db: String,
}

impl ExportArgs {
    /// The sales-list options given, by flag name.
    fn sales_flags(&self) -> Vec<&'static str> {
        [
            ("--status", self.status.is_some()),
            ("--customer", self.customer.is_some()),
            ("--stage", self.stage.is_some()),
            ("--type", self.contract_type.is_some()),
            ("--ending", self.ending.is_some()),
            ("--expired", self.expired),
            ("--unpaid", self.unpaid),
        ]
        .into_iter()
        .filter_map(|(f, given)| given.then_some(f))
        .collect()
    }
}

/// The sales list an export of a sales entity walks, from the options; an
/// option that does not apply to the entity, or record-list options
/// (`--where`, `--sort`, `--deleted`, `--archived`), are refused by name.
async fn sales_list(ctx: &Ctx, actor: &Actor, a: &ExportArgs) -> CliResult<Option<SalesList>> {
    let entity = a.entity;
    let Some(mut list) = SalesList::searching(entity, a.search.clone()) else {
        let flags = a.sales_flags();
        if !flags.is_empty() {
            return Err(format!(
                "{} apply to opportunity, quote and contract exports only",
                flags.join(", ")
            ));
        }
        return Ok(None);
    };
    for (flag, given) in [
        ("--where", !a.conditions.is_empty()),
        ("--sort", !a.sort.is_empty()),
        ("--deleted", a.deleted),
        ("--archived", a.archived),
    ] {
        if given {
            return Err(format!(
                "{flag} does not apply to {entity} exports: they take --search and the sales-list options, newest first"
            ));
        }
    }
    let customer = match &a.customer {
        Some(c) => Some(super::sales::customer_id(ctx, actor, c).await?),
        None => None,
    };
    let misplaced = |flags: &[&str]| -> CliResult {
        match a.sales_flags().into_iter().find(|f| flags.contains(f)) {
            Some(f) => Err(format!("{f} does not apply to {entity} exports")),
            None => Ok(()),
        }
    };
    match &mut list {
        SalesList::Opportunities(q) => {
            misplaced(&["--type", "--ending", "--expired", "--unpaid"])?;
            q.status = match &a.status {
                Some(s) => Some(
                    crm::sales::OppStatus::parse(s)
                        .ok_or_else(|| format!("unknown opportunity status '{s}'"))?,
                ),
                None => None,
            };
            q.stage = match &a.stage {
                Some(s) => Some(super::sales::stage_key(ctx, actor, s).await?),
                None => None,
            };
            q.customer_id = customer;
        }
        SalesList::Quotes { customer_id, .. } => {
            misplaced(&[
                "--status",
                "--stage",
                "--type",
                "--ending",
                "--expired",
                "--unpaid",
            ])?;
            *customer_id = customer;
        }
        SalesList::Contracts(q) => {
            misplaced(&["--stage"])?;
            q.status = match &a.status {
                Some(s) => Some(
                    crm::sales::ContractStatus::parse(s)
                        .ok_or_else(|| format!("unknown contract status '{s}'"))?,
                ),
                None => None,
            };
            q.contract_type = match &a.contract_type {
                Some(t) => Some(
                    crm::sales::ContractType::parse(t)
                        .ok_or_else(|| format!("unknown contract type '{t}'"))?,
                ),
                None => None,
            };
            q.customer_id = customer;
            q.ending_within_days = a.ending;
            q.expired = a.expired;
            q.not_fully_received = a.unpaid;
        }
    }
    Ok(Some(list))
}

/// `crm bench-io`.
#[derive(Args)]
pub struct BenchArgs {
    /// Rows of the generated workbook.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Also import into this PostgreSQL server.
    #[arg(long)]
    pub pg: Option<String>,
    /// Also export a million rows to compare peak memory.
    #[arg(long)]
    pub million: bool,
    /// Rows per import batch (the engine's default, as `crm import`).
    #[arg(long, default_value_t = crm::import::DEFAULT_BATCH_SIZE)]
    pub batch: usize,
    /// Rounds: the measurements take turns, one run each per round, and the
    /// median run of each is reported.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Working directory (default a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Runs one measurement (used by the benchmark itself).
    #[arg(long, hide = true, num_args = 1.., allow_hyphen_values = true)]
    pub child: Vec<String>,
}

fn bar(ctx: &Ctx, what: &str) -> ProgressBar {
    if ctx.json {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} rows, {{per_sec}}, {{elapsed}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

pub async fn template(ctx: &Ctx, actor: &Actor, a: TemplateArgs) -> CliResult {
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}-template.xlsx", a.entity.name())));
    // Refused (too many contact groups, too wide) before any file is made.
    let bytes = crm::io::template(&ctx.crm, actor, a.entity, a.lang, a.contacts)
        .await
        .map_err(err)?;
    OutFile::create(&out, &protected(&a.db, None))?.finish_with(&bytes)?;
    ctx.print(json!({"template": out.display().to_string()}), || {
        format!(
            "wrote the {} import template to {}",
            a.entity,
            out.display()
        )
    });
    Ok(())
}

pub async fn import(ctx: &Ctx, actor: &Actor, a: ImportArgs) -> CliResult {
    if a.list {
        let list = ctx.crm.list_imports(actor).await.map_err(err)?;
        let users = ctx.crm.list_users(actor, None).await.map_err(err)?;
        let by = super::users_by_id(&users);
        ctx.table(
            json!(list),
            &[
                "id",
                "started",
                "by",
                "entity",
                "file",
                "status",
                // The checkpoint is a sheet row number, not a count.
                "last row",
                // Records created, contacts of contact groups included
                // (the report gives them apart: `6 created (+8 contacts)`).
                "created (with contacts)",
                "updated",
                "unchanged",
                "skipped",
                "rejected",
            ],
            list.iter()
                .map(|i| {
                    vec![
                        i.id.to_string(),
                        super::local(ctx, i.created_at),
                        by(Some(crm::ids::UserId(i.actor_id))),
                        i.entity.clone(),
                        i.file_name.clone(),
                        i.status.to_string(),
                        i.rows_done.to_string(),
                        i.created.to_string(),
                        i.updated.to_string(),
                        i.unchanged.to_string(),
                        i.skipped.to_string(),
                        i.rejected.to_string(),
                    ]
                })
                .collect(),
        );
        return Ok(());
    }
    if let Some(id) = &a.undo {
        let id: crm::ids::RecordId = id
            .parse()
            .map_err(|_| format!("'{id}' is not an import id"))?;
        let r = ctx
            .crm
            .undo_import(actor, id.0)
            .await
            .map_err(|e| undo_error(id.0, e))?;
        ctx.print(json!(r), || {
            format!(
                "undid import {}: {} records removed, {} restored",
                r.import_id, r.removed, r.restored
            )
        });
        return Ok(());
    }
    let (Some(entity), Some(file)) = (a.entity, a.file.clone()) else {
        return Err(
            "name what to import and the file, e.g. `crm import customer 客户.xlsx`".into(),
        );
    };
    // The error workbook's file is checked (and its hidden file created)
    // before anything is imported: an import is never committed only to
    // find that its rejected rows cannot be written.
    let errors_path = a
        .errors
        .clone()
        .unwrap_or_else(|| file.with_extension("errors.xlsx"));
    let errors_file = OutFile::create(&errors_path, &protected(&a.db, Some(&file)))?;
    let wb = Workbook::open(&file, Limits::default()).map_err(err)?;
    let mut o = ImportOptions::new(entity);
    o.policy = a.policy;
    o.dry_run = a.dry_run;
    o.blanks_clear = a.blanks_clear;
    o.commit = if a.batches {
        CommitMode::Batches
    } else {
        CommitMode::Atomic
    };
    o.batch_size = a.batch_size;
    o.owner = a.owner.clone();
    o.department = a.department.clone();
    o.pool = a.pool.clone();
    o.file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pb = bar(ctx, "importing");
    let mut progress = |p: crm::io::Progress| {
        pb.set_length(p.total);
        pb.set_position(p.rows);
    };
    let out = crm::io::import_workbook(
        &ctx.crm,
        actor,
        &wb,
        o,
        &ReadOptions {
            sheet: a.sheet.clone(),
            lang: a.lang,
        },
        &mut progress,
    )
    .await
    .map_err(|e| match e {
        // Only the error workbook is written while importing (its rows go
        // to a temporary file as they come).
        crm::io::IoError::Write(m) => format!(
            "cannot write the error workbook {}: {m}; {}",
            errors_path.display(),
            if a.batches && !a.dry_run {
                "the batches committed before stay written (see `crm import --list`; importing the file again resumes)"
            } else {
                "nothing was imported"
            }
        ),
        // English output without the Chinese hints of the engine's words.
        e if a.lang == Lang::En => e.message_en(),
        e => err(e),
    })?;
    pb.finish_and_clear();
    let r = &out.report;
    let lang = a.lang;
    // Without rejected or skipped rows the hidden file is removed (when
    // dropped) and an existing file of that name is left as it was.
    let (errors_at, unwritten) = match &out.error_workbook {
        Some(bytes) => match errors_file.finish_with(bytes) {
            Ok(()) => (Some(errors_path), None),
            Err(e) => (None, Some(e)),
        },
        None => (None, None),
    };
    ctx.print(
        json!({"report": r, "error_workbook": errors_at.as_ref().map(|p| p.display().to_string())}),
        || {
            let mut lines = vec![format!(
                "{}{}: {} rows, {} created{}, {} updated{}, {} unchanged, {} skipped, {} rejected{}",
                if r.dry_run {
                    "dry run of "
                } else if r.status == ImportStatus::Failed {
                    "failed import of "
                } else {
                    "imported "
                },
                file.display(),
                r.rows,
                r.created,
                if r.contacts_created > 0 {
                    format!(" (+{} contacts)", r.contacts_created)
                } else {
                    String::new()
                },
                r.updated,
                if r.contacts_updated > 0 {
                    format!(" (+{} contacts)", r.contacts_updated)
                } else {
                    String::new()
                },
                r.unchanged,
                r.skipped,
                r.rejected,
                // A dry run writes nothing, so it names no import to undo
                // (a resumed one's id is that of the interrupted import).
                r.import_id
                    .filter(|_| !r.dry_run)
                    .map(|i| format!("; import {i} (undo with `crm import --undo {i}`)"))
                    .unwrap_or_default()
            )];
            if let Some(after) = r.resumed_after {
                lines.push(format!("resumed after row {after}"));
            }
            if !r.ignored_columns.is_empty() {
                lines.push(format!("ignored columns: {}", r.ignored_columns.join(", ")));
            }
            // The reasons in the language asked for, as the error workbook
            // gives them.
            let reason = |i: &crm::import::RowIssue| match lang {
                crm::io::Lang::En => i.message_en.clone(),
                crm::io::Lang::Zh => i.message_zh.clone(),
            };
            for i in r.issues.iter().take(10) {
                lines.push(format!("  row {}: {}", i.row, reason(i)));
            }
            if r.issues.len() > 10 {
                lines.push(format!("  … {} more", r.issues.len() - 10));
            }
            if !r.warnings.is_empty() {
                lines.push(format!(
                    "{} possible duplicates (疑似重复) created — see `crm customer dupes`:",
                    r.warnings.len()
                ));
                for i in r.warnings.iter().take(10) {
                    lines.push(format!("  row {}: {}", i.row, reason(i)));
                }
                if r.warnings.len() > 10 {
                    lines.push(format!("  … {} more", r.warnings.len() - 10));
                }
            }
            if let Some(p) = &errors_at {
                lines.push(format!(
                    "rejected and skipped rows, with the reason, are in {}",
                    p.display()
                ));
            }
            lines.join("\n")
        },
    );
    if let Some(e) = unwritten {
        return Err(unwritten_text(r, &e));
    }
    if r.status == ImportStatus::Failed {
        return Err(failed_text(r));
    }
    // An import whose rows were all rejected wrote nothing: like any batch
    // command that does nothing, it fails (a dry run only reports).
    let done =
        r.created + r.contacts_created + r.updated + r.contacts_updated + r.unchanged + r.skipped;
    if !r.dry_run && r.rejected > 0 && done == 0 {
        return Err(format!(
            "no row was imported ({} rejected); {}",
            r.rejected,
            match &errors_at {
                Some(p) => format!(
                    "see the error workbook {} for the reasons, correct the rows and import them again",
                    p.display()
                ),
                None => "correct the rows and import them again".to_string(),
            }
        ));
    }
    Ok(())
}

/// The error of `crm import --undo` for import `id`: a record changed
/// between the undo's read and its write is named, with the undo left
/// undone (the engine's conflict asks to reload and apply again).
fn undo_error(id: impl std::fmt::Display, e: crm::Error) -> String {
    match e {
        crm::Error::Conflict {
            entity,
            id: record,
            expected,
            actual,
        } => format!(
            "cannot undo import {id}: {entity} {record} was changed by someone else meanwhile \
             (read at version {expected}, now {actual}; 已被他人修改); nothing was undone"
        ),
        e => err(e),
    }
}

/// The error of an import whose error workbook could not be written
/// (`e` says why), with what the import left written: a committed import
/// is named with how to undo it.
fn unwritten_text(r: &crm::import::ImportReport, e: &str) -> String {
    if r.dry_run {
        return format!("{e} (a dry run: nothing was imported)");
    }
    if r.status == ImportStatus::Failed {
        return format!("{e}; {}", failed_text(r));
    }
    let mut what = written_parts(r);
    what.push(format!("{} skipped", r.skipped));
    what.push(format!("{} rejected", r.rejected));
    match r.import_id {
        Some(i) => format!(
            "{e}; the import was committed all the same: import {i}, {}; undo it with `crm import --undo {i}`",
            what.join(", ")
        ),
        None => format!(
            "{e}; the import was committed all the same: {}",
            what.join(", ")
        ),
    }
}

/// What an import wrote, in words: created and updated records (contacts
/// apart when there are any).
fn written_parts(r: &crm::import::ImportReport) -> Vec<String> {
    let mut what = vec![format!("{} created", r.created)];
    if r.contacts_created > 0 {
        what.push(format!("{} contacts created", r.contacts_created));
    }
    what.push(format!("{} updated", r.updated));
    if r.contacts_updated > 0 {
        what.push(format!("{} contacts updated", r.contacts_updated));
    }
    what
}

/// What a failed import (policy fail) left written: nothing, or the
/// records of the batches committed before it failed (an earlier run's of
/// a resumed import, or this run's before a duplicate saved meanwhile).
fn failed_text(r: &crm::import::ImportReport) -> String {
    let written = r.created + r.contacts_created + r.updated + r.contacts_updated;
    if r.dry_run {
        return "the import would fail on duplicates (policy fail)".into();
    }
    if written == 0 {
        return "the import failed on duplicates (policy fail): nothing was written".into();
    }
    let what = written_parts(r);
    format!(
        "the import failed on duplicates (policy fail); the batches committed before stay written: {}{}",
        what.join(", "),
        r.import_id
            .map(|i| format!(" (undo with `crm import --undo {i}`)"))
            .unwrap_or_default()
    )
}

pub async fn export(ctx: &Ctx, actor: &Actor, a: ExportArgs) -> CliResult {
    let sales = sales_list(ctx, actor, &a).await?;
    let mut q = ListQuery::default();
    for c in &a.conditions {
        q = q.filter(Cond::parse(c)?);
    }
    if let Some(s) = &a.search {
        q = q.search(s);
    }
    q.sort = a.sort.iter().map(|s| SortBy::parse(s)).collect();
    q.lifecycle = match (a.deleted, a.archived) {
        (true, _) => Lifecycle::Deleted,
        (_, true) => Lifecycle::Archived,
        _ => Lifecycle::Active,
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-export.xlsx", a.entity.name())));
    // Written beside `out` and renamed into place once complete, so that a
    // refused or failed export leaves an existing file as it was.
    let mut file = OutFile::create(&out, &protected(&a.db, None))?;
    let pb = bar(ctx, "exporting");
    let mut progress = |p: crm::io::Progress| pb.set_position(p.rows);
    let n = match sales {
        Some(list) => {
            crm::io::export_sales(
                &ctx.crm,
                actor,
                list,
                &a.fields,
                a.lang,
                file.writer(),
                &mut progress,
            )
            .await
        }
        None => {
            crm::io::export(
                &ctx.crm,
                actor,
                a.entity,
                q,
                &a.fields,
                a.lang,
                file.writer(),
                &mut progress,
            )
            .await
        }
    };
    pb.finish_and_clear();
    let n = n.map_err(|e| match e {
        // Writing failed (the sheet's temporary files or the file itself):
        // said of the file.
        crm::io::IoError::Write(m) => format!("cannot write {}: {m}", out.display()),
        e => err(e),
    })?;
    file.finish()?;
    ctx.print(
        json!({"rows": n, "file": out.display().to_string()}),
        || format!("exported {n} {} records to {}", a.entity, out.display()),
    );
    Ok(())
}

/// The files a workbook the CLI writes must not replace, with what each
/// is: the workbook being imported, and the SQLite database `db` (as the
/// global `--db` names it) with its journal files.
fn protected(db: &str, input: Option<&Path>) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    if let Some(input) = input {
        out.push((input.to_path_buf(), "the workbook being imported".into()));
    }
    let is_file =
        !(db == ":memory:" || db.starts_with("postgres://") || db.starts_with("postgresql://"));
    if is_file {
        out.push((PathBuf::from(db), format!("the database ({db})")));
        for suffix in ["-wal", "-shm", "-journal"] {
            out.push((
                PathBuf::from(format!("{db}{suffix}")),
                format!("a journal file of the database ({db}{suffix})"),
            ));
        }
    }
    out
}

/// `p` as the file system finds it: canonical when it exists, else its
/// directory's canonical path joined with its name.
fn resolved(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(dir.canonicalize().ok()?.join(name))
}

/// Whether `a` and `b` name the same file: the same canonical path, or
/// (existing) the same file under another name (a hard link).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b))
            && x.dev() == y.dev()
            && x.ino() == y.ino()
        {
            return true;
        }
    }
    matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

/// Whether the file name ends in `.xlsx` (letter case aside).
fn is_xlsx(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case("xlsx"))
}

/// A workbook file being written: checked when created, written to a
/// hidden file beside its destination, and renamed into place by
/// [`OutFile::finish`] once flushed to disk. Dropped unfinished (the
/// command failed), the hidden file is removed and an existing file stays
/// as it was.
struct OutFile {
    /// The path as the command line gave it, for messages.
    shown: PathBuf,
    /// Where the workbook goes: the path, or the file a symbolic link
    /// there points to (the link stays).
    dest: PathBuf,
    /// The hidden file written first.
    partial: PathBuf,
    /// The hidden file, open; `None` once finished.
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// The permissions of the file replaced, kept.
    permissions: Option<std::fs::Permissions>,
}

impl OutFile {
    /// Checks `path` and creates the hidden file beside it. Refused: a
    /// path in `protected` (named as what it is), a directory that does
    /// not exist, an existing file that is no regular file (a directory,
    /// device or pipe: a rename would replace the device itself) or whose
    /// name does not end in `.xlsx` (the user's own document, or a file of
    /// another program), and a directory where no file can be created.
    fn create(path: &Path, protected: &[(PathBuf, String)]) -> CliResult<OutFile> {
        let shown = path.display();
        let Some(name) = path.file_name() else {
            return Err(format!("cannot write {shown}: not a file name"));
        };
        for (p, what) in protected {
            if same_file(path, p) {
                return Err(format!(
                    "refusing to write {shown}: it is {what}; choose another file"
                ));
            }
        }
        let mut dest = path.to_path_buf();
        let mut permissions = None;
        if let Ok(m) = std::fs::metadata(path) {
            if m.is_dir() {
                return Err(format!("cannot write {shown}: it is a directory"));
            }
            if !m.is_file() {
                return Err(format!(
                    "cannot write {shown}: it is not a regular file (a device, pipe or socket)"
                ));
            }
            dest = path
                .canonicalize()
                .map_err(|e| format!("cannot write {shown}: {e}"))?;
            if !is_xlsx(&dest) {
                return Err(format!(
                    "refusing to replace {shown}: it exists and is not an .xlsx file; remove it or write to another file"
                ));
            }
            permissions = Some(m.permissions());
        } else {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                return Err(format!(
                    "cannot write {shown}: the directory {} does not exist",
                    dir.display()
                ));
            }
        }
        let name = dest
            .file_name()
            .unwrap_or(name)
            .to_string_lossy()
            .into_owned();
        let partial = dest.with_file_name(format!(".{name}.{}.partial", std::process::id()));
        let open = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&partial)
        };
        let file = match open() {
            // Left by an earlier process of the same id that did not end
            // normally.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&partial);
                open()
            }
            other => other,
        }
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
        Ok(OutFile {
            shown: path.to_path_buf(),
            dest,
            partial,
            file: Some(std::io::BufWriter::new(file)),
            permissions,
        })
    }

    /// The hidden file, to write the workbook to.
    fn writer(&mut self) -> &mut std::io::BufWriter<std::fs::File> {
        self.file.as_mut().expect("an unfinished output file")
    }

    /// Writes `bytes` and [`OutFile::finish`]es.
    fn finish_with(mut self, bytes: &[u8]) -> CliResult {
        let written = self.writer().write_all(bytes);
        written.map_err(|e| self.failed(e))?;
        self.finish()
    }

    /// Flushes the hidden file to disk and renames it into place. Any
    /// failure (a full disk, say, which can show only when the last bytes
    /// are flushed or the file synced) is an error naming the file, and
    /// the hidden file is removed.
    fn finish(mut self) -> CliResult {
        let Some(w) = self.file.take() else {
            return Ok(());
        };
        let file = w.into_inner().map_err(|e| self.failed(e.into_error()))?;
        file.sync_all().map_err(|e| self.failed(e))?;
        drop(file);
        if let Some(p) = self.permissions.take() {
            std::fs::set_permissions(&self.partial, p).map_err(|e| self.failed(e))?;
        }
        std::fs::rename(&self.partial, &self.dest).map_err(|e| self.failed(e))?;
        // Renamed: nothing left to remove.
        self.partial = PathBuf::new();
        Ok(())
    }

    /// The error of a failed write.
    fn failed(&self, e: std::io::Error) -> String {
        format!("cannot write {}: {e}", self.shown.display())
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.partial.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

pub async fn bench(json: bool, a: BenchArgs) -> CliResult {
    if let Some(kind) = a.child.first() {
        let line = io_bench::child(kind, &a.child).await?;
        out!("{line}");
        return Ok(());
    }
    let plan = io_bench::Plan {
        rows: a.rows,
        dir: a
            .dir
            .unwrap_or_else(|| std::env::temp_dir().join("crm-bench-io")),
        pg: a.pg,
        million: a.million,
        batch: a.batch,
        runs: a.runs.max(1),
    };
    let launcher = io_bench::Launcher {
        exe: std::env::current_exe().map_err(err)?,
        prefix: vec!["--db".into(), ":memory:".into(), "bench-io".into()],
    };
    let report = io_bench::run(&launcher, &plan, &mut |m| {
        if !json {
            eprintln!("{m}");
        }
    })?;
    out!("{report}");
    Ok(())
}
