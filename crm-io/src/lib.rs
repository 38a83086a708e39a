//! Excel import and export for the CRM engine.
//!
//! - [`template`] writes an import template per entity: Chinese or English
//!   headers, required columns marked, drop-down lists of allowed values,
//!   custom fields, an example sheet and an instructions sheet.
//! - [`Workbook`] reads a file within [`Limits`] (compressed and
//!   uncompressed size counted while reading, rows, columns, cells, cell
//!   length; the sheet is streamed, never materialised from its declared
//!   dimensions) and [`import_workbook`] feeds its rows, batch by batch, to
//!   the engine's import ([`crm_core::import`]), which validates them like
//!   the API, detects duplicates and commits atomically or in checkpointed
//!   batches. Rows that were rejected or skipped come back in an error
//!   workbook (original cells plus what is wrong, in the user's language).
//! - [`export`] writes any list the actor can see, with the fields they pick,
//!   in constant memory, typed, and safe from formula injection.
//!
//! Architecture invariant: this crate reaches the data only through
//! `crm-core` ([`Crm`] and its store traits) and never names a backend.
//!
//! Reading runs on a thread of its own and hands batches to the import over
//! a bounded channel (two batches in flight), so parsing the sheet overlaps
//! validating and writing, and memory stays bounded.

mod read;
mod write;

pub use read::{Limits, SheetEvent, Workbook};
pub use write::{
    ErrorWorkbook, ExportSheet, needs_quote_prefix, template_workbook, template_workbook_for,
};

use crm_core::import::{
    BatchWrite, Checked, CommitMode, DuplicatePolicy, ImportOptions, ImportReport, IssueKind,
    PreparedBatch, RowValidator, SheetRow,
};
use crm_core::{Actor, Crm, Entity, ListQuery};
use sha2::{Digest, Sha256};

/// The language of headers and messages in written workbooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// Chinese (the default).
    #[default]
    Zh,
    /// English.
    En,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "zh" | "cn" | "zh-cn" | "中文" => Ok(Lang::Zh),
            "en" | "english" | "英文" => Ok(Lang::En),
            other => Err(format!("unknown language '{other}'; expected zh or en")),
        }
    }
}

/// What can go wrong reading or writing a workbook.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// A file could not be read or written.
    #[error("cannot read {path}: {source}")]
    File {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is no Excel workbook.
    #[error("{0}; save it as an Excel workbook (.xlsx)")]
    NotExcel(String),
    /// The file is a kind of workbook that is not read (for safety).
    #[error("{0} is not supported; save it as an Excel workbook (.xlsx)")]
    Unsupported(String),
    /// The workbook breaks a limit.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: String,
        /// The limit.
        limit: String,
    },
    /// The workbook is damaged.
    #[error("the workbook is damaged: {0}")]
    Broken(String),
    /// No sheet of that name.
    #[error("the workbook has no sheet '{name}' (sheets: {})", available.join(", "))]
    NoSheet {
        /// The name asked for.
        name: String,
        /// The sheets there are.
        available: Vec<String>,
    },
    /// The sheet has no header row.
    #[error("the sheet '{0}' is empty: it needs a header row")]
    Empty(String),
    /// Writing the workbook failed.
    #[error("cannot write the workbook: {0}")]
    Write(String),
    /// Reading the sheet stopped before its end without an error of the
    /// workbook (the reader panicked): the import is not complete.
    #[error("reading the sheet stopped unexpectedly: {0}")]
    Interrupted(String),
    /// The engine refused.
    #[error(transparent)]
    Crm(#[from] crm_core::Error),
}

impl IoError {
    /// The message for English-only output: as displayed, without the
    /// Chinese hints the engine's messages carry for Chinese readers
    /// (see [`crm_core::import::english_only`]).
    pub fn message_en(&self) -> String {
        crm_core::import::english_only(&self.to_string())
    }

    /// The message in the language asked for ([`IoError::message_en`],
    /// [`IoError::message_zh`]).
    pub fn message(&self, lang: Lang) -> String {
        match lang {
            Lang::En => self.message_en(),
            Lang::Zh => self.message_zh(),
        }
    }

    /// The message in Chinese, for users of Chinese front ends.
    pub fn message_zh(&self) -> String {
        match self {
            IoError::File { path, source } => format!("无法读取 {path}：{source}"),
            IoError::NotExcel(m) => format!("不是 Excel 工作簿（.xlsx）：{m}"),
            IoError::Unsupported(m) => format!("不支持该文件格式（{m}），请另存为 .xlsx"),
            IoError::TooLarge { what, limit } => format!("{what} 超出限制（{limit}）"),
            IoError::Broken(m) => format!("工作簿已损坏：{m}"),
            IoError::NoSheet { name, available } => {
                format!(
                    "工作簿中没有工作表「{name}」（现有：{}）",
                    available.join("、")
                )
            }
            IoError::Empty(s) => format!("工作表「{s}」为空，缺少表头行"),
            IoError::Write(m) => format!("无法写入工作簿：{m}"),
            IoError::Interrupted(m) => format!("读取工作表意外中止，导入未完成：{m}"),
            IoError::Crm(e) => e.to_string(),
        }
    }
}

/// Writes the import template of an entity (see [`template_workbook`]).
/// A template is always one the import reads: more contact groups than a
/// customer row may have ([`crm_core::import::MAX_CONTACT_GROUPS`]) are
/// refused, and so is a template wider than the columns the import reads
/// by default ([`Limits::max_columns`]; only with very many custom
/// fields).
pub async fn template(
    crm: &Crm,
    actor: &Actor,
    entity: Entity,
    lang: Lang,
    contact_groups: u32,
) -> Result<Vec<u8>, IoError> {
    let max = crm_core::import::MAX_CONTACT_GROUPS;
    if contact_groups > max {
        return Err(crm_core::Error::invalid(
            "contact_groups",
            format!(
                "a customer template has at most {max} contact column groups ({contact_groups} asked for)"
            ),
        )
        .into());
    }
    let cols = crm.template_columns(actor, entity, contact_groups).await?;
    let limit = Limits::default().max_columns;
    if cols.len() > limit as usize {
        return Err(IoError::TooLarge {
            what: format!(
                "a {entity} template of {} columns (its fields{})",
                cols.len(),
                if entity == Entity::Customer && contact_groups > 0 {
                    format!(" and {contact_groups} contact column groups")
                } else {
                    String::new()
                }
            ),
            limit: format!(
                "{limit} columns an import reads; ask for fewer contact column groups, or define fewer custom fields"
            ),
        });
    }
    template_workbook_for(entity, &cols, lang)
}

/// Progress of an import or export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rows handled so far.
    pub rows: u64,
    /// Rows expected (from the sheet's declared size; a hint only).
    pub total: u64,
}

/// What [`import_workbook`] produced.
#[derive(Debug)]
pub struct ImportOutcome {
    /// What the import did.
    pub report: ImportReport,
    /// The rejected and skipped rows with their reasons, when there are any.
    pub error_workbook: Option<Vec<u8>>,
}

/// Options of [`import_workbook`] beyond the engine's [`ImportOptions`].
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The sheet to read; default the first.
    pub sheet: Option<String>,
    /// The language of the error workbook.
    pub lang: Lang,
}

/// The hex SHA-256 of a file's content, which identifies it for resuming.
pub fn file_digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Cells of a batch's rows as the sheet holds them, where the rows give the
/// import another reading (see [`SheetEvent::Original`] and [`cut_long`]):
/// the row's number, the column and the original cell.
type Originals = Vec<(u32, usize, crm_core::import::Cell)>;

/// What the session hands the reader once it has the header: the row
/// validator, and for each column the most characters its field can take
/// (`None`: no bound known), past which a cell is cut for the import (see
/// [`cut_long`]).
type ReaderSetup = (Option<RowValidator>, Vec<Option<usize>>);

enum Msg {
    Header(Vec<String>, u32),
    Batch(Vec<SheetRow>, Option<Vec<Checked>>, Originals),
    Failed(IoError),
    /// Every row of the sheet was sent. A reader that stops without saying
    /// so (or [`Msg::Failed`]) did not finish: the import fails.
    End,
}

/// What the reader thread runs: reads the sheet, handing each event to the
/// callback until it returns `false`.
type ReadSheet = Box<
    dyn FnOnce(&mut dyn FnMut(SheetEvent) -> Result<bool, IoError>) -> Result<(), IoError> + Send,
>;

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the reader panicked".to_string()
    }
}

/// Imports a workbook: streams its rows (on a reader thread) into the
/// engine's import in batches of `options.batch_size` (the first few
/// smaller: 250 rows, then twice as many each time), collects rejected and
/// skipped rows into an error workbook and reports. Under
/// [`DuplicatePolicy::Fail`] with batched commits a dry run goes first, so a
/// file with duplicates writes nothing (of this run: the batches an
/// interrupted run committed stay, and the report counts them). The file's
/// digest and the sheet identify it, so importing the same sheet of the
/// same file again, with the same options, resumes an interrupted batched
/// import (its dry run too, which checks only the rows after the
/// checkpoint).
pub async fn import_workbook(
    crm: &Crm,
    actor: &Actor,
    wb: &Workbook,
    mut options: ImportOptions,
    read: &ReadOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportOutcome, IoError> {
    if options.file_hash.is_empty() {
        options.file_hash = file_digest(wb.bytes());
    }
    let sheet = wb.resolve_sheet(read.sheet.as_deref())?;
    // Limits a sheet could otherwise reach only after much work: its text,
    // and the rows an all-or-nothing import (its dry run too) may hold.
    let rows = wb.survey(Some(&sheet))?;
    if options.commit == CommitMode::Atomic && rows > options.atomic_max_rows {
        return Err(crm_core::Error::InvalidState(format!(
            "the sheet has {rows} rows; an all-or-nothing import holds all it writes until its \
             end, so it takes at most {} rows: import this file in checkpointed batches (the \
             CLI's --batches), which commit as they go and resume; nothing was written",
            options.atomic_max_rows
        ))
        .into());
    }
    // The sheet read identifies the import, with the digest.
    options.sheet = Some(sheet.clone());
    if options.policy == DuplicatePolicy::Fail
        && options.commit == CommitMode::Batches
        && !options.dry_run
    {
        let mut dry = options.clone();
        dry.dry_run = true;
        let first = run_import(crm, actor, wb, &sheet, dry, read.lang, &mut |_| {}).await?;
        // Duplicates of this run's rows: those an earlier run of a resumed
        // import met are listed again, and did not fail it then.
        let after = first.report.resumed_after.unwrap_or(0);
        let dup = first.report.issues.iter().any(|i| {
            i.row > after && matches!(i.kind, IssueKind::Duplicate | IssueKind::DuplicateInFile)
        });
        if dup {
            // The dry run's report counts only what stays written (earlier
            // runs' batches of a resumed import) and names that import.
            let mut out = first;
            out.report.dry_run = false;
            out.report.status = crm_core::import::ImportStatus::Failed;
            return Ok(out);
        }
    }
    run_import(crm, actor, wb, &sheet, options, read.lang, progress).await
}

/// Rows of an import's first batch at most; the batches after double up to
/// the options' batch size.
const FIRST_BATCH: usize = 250;

/// Cells (empty ones included: a row holds a cell for each column up to
/// its last) a batch of rows holds at most; a batch of wide rows ends
/// sooner than its row count. Rows are read as wide as their sheet, up to
/// [`Limits::max_columns`] cells each: this caps what a batch takes (a
/// cell is 32 bytes, plus its text, which [`Limits::max_row_text_bytes`]
/// bounds) at what the largest batch of a sheet of 256 columns took before
/// sheets could be wider, about 80 MiB, whatever the width.
const BATCH_CELLS: usize = crm_core::import::MAX_BATCH_SIZE * 256;

async fn run_import(
    crm: &Crm,
    actor: &Actor,
    wb: &Workbook,
    sheet: &str,
    options: ImportOptions,
    lang: Lang,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportOutcome, IoError> {
    let wb = wb.clone();
    let sheet = sheet.to_string();
    let read: ReadSheet = Box::new(move |f| wb.read(Some(&sheet), f));
    import_sheet(crm, actor, read, options, lang, progress).await
}

/// Runs `read` on a reader thread of its own, feeding the rows to the
/// import.
async fn import_sheet(
    crm: &Crm,
    actor: &Actor,
    read: ReadSheet,
    options: ImportOptions,
    lang: Lang,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportOutcome, IoError> {
    let batch_size = options.batch_size.max(1);
    let (tx, rx) = flume::bounded::<Msg>(2);
    // The session hands the reader its validator once it has the header.
    let (vtx, vrx) = flume::bounded::<ReaderSetup>(1);
    let reader = std::thread::Builder::new()
        .name("crm-io-reader".into())
        .spawn(move || {
            // A panic (calamine or chrono on a hostile cell, say) ends the
            // import with an error, never as if the sheet had ended there.
            let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                feed(read, &tx, &vrx, batch_size, BATCH_CELLS)
            }));
            let last = match fed {
                Ok(Ok(())) => Msg::End,
                Ok(Err(e)) => Msg::Failed(e),
                Err(panic) => Msg::Failed(IoError::Interrupted(panic_text(&*panic))),
            };
            let _ = tx.send(last);
        })
        .map_err(|e| IoError::Broken(format!("cannot start the reader: {e}")))?;
    let outcome = consume(crm, actor, options, lang, rx, vtx, progress).await;
    // The reader ends by itself once the channel is dropped or the sheet
    // ends; its panics are caught and reported over the channel.
    let joined = reader.join();
    match (outcome, joined) {
        (Ok(_), Err(panic)) => Err(IoError::Interrupted(panic_text(&*panic))),
        (outcome, _) => outcome,
    }
}

/// The reader thread's work: reads the sheet and sends the header and the
/// rows in batches (the first ones smaller; a batch ends too once its rows
/// hold `max_cells` cells) until the sheet ends or the importer stops
/// listening.
fn feed(
    read: ReadSheet,
    tx: &flume::Sender<Msg>,
    vrx: &flume::Receiver<ReaderSetup>,
    batch_size: usize,
    max_cells: usize,
) -> Result<(), IoError> {
    // The first batches are smaller (doubling up to `batch_size`): the
    // importer and the store's writer wait for the first batch, so a small
    // one starts them sooner.
    let mut size = batch_size.min(FIRST_BATCH);
    let mut batch = Vec::with_capacity(size);
    let mut validator: Option<RowValidator> = None;
    let mut caps: Vec<Option<usize>> = Vec::new();
    // The next row's cells as stored, and those of the rows in `batch`.
    let mut pending: Vec<(usize, crm_core::import::Cell)> = Vec::new();
    let mut originals: Originals = Vec::new();
    // Cells of the rows in `batch`, and the bytes of their text.
    let mut cells: usize = 0;
    let mut text: usize = 0;
    read(&mut |ev| {
        let sent = match ev {
            SheetEvent::Header {
                cells,
                declared_rows,
            } => {
                if tx.send(Msg::Header(cells, declared_rows)).is_err() {
                    return Ok(false);
                }
                match vrx.recv() {
                    Ok((v, c)) => (validator, caps) = (v, c),
                    Err(_) => return Ok(false),
                }
                Ok(())
            }
            SheetEvent::Original { column, cell } => {
                pending.push((column, cell));
                return Ok(true);
            }
            SheetEvent::Row(mut r) => {
                // This row's originals are those from here on.
                let first = originals.len();
                for (column, cell) in pending.drain(..) {
                    originals.push((r.number, column, cell));
                }
                for (i, cell) in r.cells.iter_mut().enumerate() {
                    // Counted whole: a cut cell's original stays with the
                    // batch, for the error workbook.
                    if let crm_core::import::Cell::Text(t) = cell {
                        text += t.len();
                    }
                    if let Some(original) = cut_long(cell, caps.get(i).copied().flatten())
                        && !originals[first..].iter().any(|(_, c, _)| *c == i)
                    {
                        originals.push((r.number, i, original));
                    }
                }
                cells += r.cells.len();
                batch.push(r);
                if batch.len() < size && cells < max_cells && text < BATCH_TEXT {
                    return Ok(true);
                }
                (cells, text) = (0, 0);
                size = (size * 2).min(batch_size);
                let full = std::mem::replace(&mut batch, Vec::with_capacity(size));
                let checked = validator.as_ref().map(|v| v.check(&full));
                tx.send(Msg::Batch(full, checked, std::mem::take(&mut originals)))
            }
        };
        // The importer stopped listening: stop reading.
        Ok(sent.is_ok())
    })?;
    if !batch.is_empty() {
        let checked = validator.as_ref().map(|v| v.check(&batch));
        let _ = tx.send(Msg::Batch(batch, checked, originals));
    }
    Ok(())
}

/// Bytes of text the rows of a batch hold at most (a row of long texts ends
/// its batch sooner): with two batches in flight and one being written,
/// what a sheet of long cells keeps in memory stays bounded.
const BATCH_TEXT: usize = 32 << 20;

/// The most characters any field with a bound takes (a customer's or
/// product's long free text), and what a column takes whose field's own
/// bound is not known here (a custom field, a code).
const LONGEST_FIELD: usize = 4000;

/// The most characters the field of each column can take: a text field its
/// own bound, a company name 128, any other field [`LONGEST_FIELD`]; `None`
/// where any length may be valid (tags) and for columns not imported.
fn column_caps(entity: Entity, map: &crm_core::import::HeaderMap) -> Vec<Option<usize>> {
    use crm_core::entity::FieldKind;
    use crm_core::import::ColumnRole;
    let cap = |entity: Entity, field: &str| -> Option<usize> {
        if field.starts_with("custom.") {
            return Some(LONGEST_FIELD);
        }
        match crm_core::import::import_fields(entity)
            .into_iter()
            .find(|d| d.name == field)
            .map(|d| d.kind)
        {
            Some(FieldKind::Text(n)) => Some(n.min(LONGEST_FIELD)),
            Some(FieldKind::CompanyName) => Some(128),
            Some(FieldKind::Tags | FieldKind::Attachments) => None,
            _ => Some(LONGEST_FIELD),
        }
    };
    map.roles
        .iter()
        .map(|role| match role {
            ColumnRole::Field(f) => cap(entity, f),
            ColumnRole::Contact { field, .. } => cap(Entity::Contact, field),
            ColumnRole::Code
            | ColumnRole::ContactCode { .. }
            | ColumnRole::CustomerCode
            | ColumnRole::Version => Some(LONGEST_FIELD),
            ColumnRole::Ignored => None,
        })
        .collect()
}

/// Cuts a text longer than its column's field can take (`cap`
/// characters) for the import, which then refuses it as too long without
/// working through all of it (normalising, keys, pinyin): the cut keeps the
/// text up to its `cap + 1`-th character that stays once cleaned, so it is
/// still too long after trimming. Returns the original, for the error
/// workbook, when it cut.
fn cut_long(
    cell: &mut crm_core::import::Cell,
    cap: Option<usize>,
) -> Option<crm_core::import::Cell> {
    let (crm_core::import::Cell::Text(t), Some(cap)) = (&*cell, cap) else {
        return None;
    };
    // A text of at most `cap` bytes has at most `cap` characters.
    if t.len() <= cap + 1 {
        return None;
    }
    let mut kept = 0;
    let end = t.char_indices().find_map(|(at, c)| {
        if read::stays(c) {
            kept += 1;
        }
        (kept > cap).then(|| at + c.len_utf8())
    })?;
    if end == t.len() {
        return None;
    }
    let short = crm_core::import::Cell::Text(t[..end].to_string());
    Some(std::mem::replace(cell, short))
}

/// The error of a reader that went away without reaching the end of the
/// sheet or reporting why.
fn stopped() -> IoError {
    IoError::Interrupted("the reader ended before the end of the sheet".into())
}

/// The thread compressing the error workbook.
type Finishing = std::thread::JoinHandle<Result<Vec<u8>, IoError>>;

/// What the reader handed over next, prepared.
enum Step<'a> {
    Batch(
        Vec<SheetRow>,
        Box<crm_core::Result<PreparedBatch<'a>>>,
        Originals,
    ),
    Failed(IoError),
    Skip,
    /// The sheet ended: the error workbook, being finished on a thread of
    /// its own while the last batch is written.
    End(Option<Result<Finishing, IoError>>),
}

async fn consume(
    crm: &Crm,
    actor: &Actor,
    options: ImportOptions,
    lang: Lang,
    rx: flume::Receiver<Msg>,
    vtx: flume::Sender<ReaderSetup>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportOutcome, IoError> {
    let (headers, total) = match rx.recv_async().await {
        Ok(Msg::Header(h, declared)) => (h, u64::from(declared)),
        Ok(Msg::Failed(e)) => return Err(e),
        Ok(Msg::Batch(..) | Msg::End) => {
            return Err(IoError::Broken("the sheet has no header row".into()));
        }
        Err(_) => return Err(stopped()),
    };
    let entity = options.entity;
    let mut session = crm.begin_import(actor, options, &headers).await?;
    let caps = column_caps(entity, session.header_map());
    let _ = vtx.send_async((session.validator(), caps)).await;
    let mut errors: Option<ErrorWorkbook> = None;
    let error_workbook;
    let mut done: u64 = 0;
    // Batch N is written while batch N+1 is received and prepared: the
    // store's write (on SQLite, its writer thread) overlaps the checks,
    // duplicate probes and building of the next batch.
    let mut pending: Option<BatchWrite<'_>> = None;
    // Rows of the pending batch: progress counts rows once written.
    let mut pending_rows: u64 = 0;
    // Columns right of the header's last one that hold data in some row:
    // not imported, so reported with the ignored columns.
    let mut unnamed = std::collections::BTreeSet::new();
    loop {
        let previous = pending.take();
        let commit = async move {
            match previous {
                Some(w) => w.commit().await,
                None => Ok(()),
            }
        };
        let next = async {
            match rx.recv_async().await {
                Ok(Msg::Batch(batch, checked, originals)) => {
                    let prepared = session.prepare(&batch, checked).await;
                    Step::Batch(batch, Box::new(prepared), originals)
                }
                Ok(Msg::Failed(e)) => Step::Failed(e),
                Ok(Msg::Header(..)) => Step::Skip,
                // The reader went away without reaching the end.
                Err(_) => Step::Failed(stopped()),
                // No rows come after: the error workbook is complete. It is
                // compressed on a thread of its own, beside the last
                // batch's write (which, on PostgreSQL, moves on only while
                // this task polls it).
                Ok(Msg::End) => Step::End(errors.take().map(|w| {
                    std::thread::Builder::new()
                        .name("crm-io-errors".into())
                        .spawn(move || w.finish())
                        .map_err(|e| {
                            IoError::Broken(format!(
                                "cannot start the error workbook's thread: {e}"
                            ))
                        })
                })),
            }
        };
        let (committed, step) = futures_util::future::join(commit, next).await;
        committed?;
        if pending_rows > 0 {
            done += std::mem::take(&mut pending_rows);
            progress(Progress {
                rows: done,
                total: total.max(done),
            });
        }
        let (batch, prepared, originals) = match step {
            Step::Batch(batch, prepared, originals) => (batch, (*prepared)?, originals),
            Step::Failed(e) => return Err(e),
            Step::Skip => continue,
            Step::End(finishing) => {
                error_workbook = finishing;
                break;
            }
        };
        for r in &batch {
            for (i, c) in r.cells.iter().enumerate().skip(headers.len()) {
                if !c.is_empty() {
                    unnamed.insert(i);
                }
            }
        }
        if !prepared.issues.is_empty() {
            let wb = match &mut errors {
                Some(w) => w,
                None => errors.insert(ErrorWorkbook::new(&headers, lang)?),
            };
            for i in &prepared.issues {
                // The batch is in sheet order.
                if let Ok(at) = batch.binary_search_by_key(&i.row, |r| r.number) {
                    // The row as the sheet holds it.
                    // Originals come in sheet order, as the rows.
                    let from = originals.partition_point(|(n, _, _)| *n < i.row);
                    let mut own = originals[from..]
                        .iter()
                        .take_while(|(n, _, _)| *n == i.row)
                        .peekable();
                    if own.peek().is_none() {
                        wb.add(i.row, &batch[at].cells, &i.message_zh, &i.message_en)?;
                    } else {
                        let mut cells = batch[at].cells.clone();
                        for (_, c, cell) in own {
                            if let Some(slot) = cells.get_mut(*c) {
                                *slot = cell.clone();
                            }
                        }
                        wb.add(i.row, &cells, &i.message_zh, &i.message_en)?;
                    }
                }
            }
        }
        pending_rows = batch.len() as u64;
        pending = Some(prepared.write);
    }
    let mut report = session.finish().await?;
    report.ignored_columns.extend(
        unnamed
            .into_iter()
            .map(|i| format!("{} (no header / 无表头)", crm_core::import::column_name(i))),
    );
    let error_workbook = match error_workbook {
        Some(t) => Some(
            t?.join()
                .map_err(|_| IoError::Broken("writing the error workbook panicked".into()))??,
        ),
        None => None,
    };
    Ok(ImportOutcome {
        report,
        error_workbook,
    })
}

/// Exports the records of `entity` that match `query` and that the actor
/// can see, with the picked fields (all visible ones when none are picked)
/// and headers in `lang`, to `out`. Returns the number of rows written.
/// Pages are read here while a writer thread builds their cells and writes
/// the sheet, at most a few pages in memory at a time.
#[allow(clippy::too_many_arguments)]
pub async fn export<W: std::io::Write + std::io::Seek + Send>(
    crm: &Crm,
    actor: &Actor,
    entity: Entity,
    query: ListQuery,
    picks: &[String],
    lang: Lang,
    out: W,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, IoError> {
    let columns = crm.export_columns(actor, entity, picks).await?;
    let name = match lang {
        Lang::Zh => entity.name_zh(),
        Lang::En => entity.name(),
    };
    let sheet = ExportSheet::new(&columns, name, lang)?;
    if entity == Entity::Product {
        return export_products(crm, actor, &query, &columns, sheet, out, progress).await;
    }
    if let Some(list) = crm_core::sales::SalesList::searching(entity, query.search.clone()) {
        if !query.conditions.is_empty() || !query.sort.is_empty() {
            return Err(crm_core::error::Error::invalid(
                "where",
                format!(
                    "{entity} exports take a search text, the list's own filters (export_sales) and no sort: newest first (销售单据导出按创建时间倒序, 不支持条件和排序)"
                ),
            )
            .into());
        }
        if query.lifecycle != crm_core::store::Lifecycle::Active {
            return Err(crm_core::error::Error::invalid(
                "lifecycle",
                format!("{entity} exports cover live documents only (只能导出有效的销售单据)"),
            )
            .into());
        }
        return write_sales(crm, actor, list, columns, lang, sheet, out, progress).await;
    }
    let mut cursor = crm
        .export_cursor(
            actor,
            entity,
            query,
            columns,
            crm_core::query::MAX_PAGE_SIZE,
        )
        .await?;
    // Reading the pages (store queries) runs here while a writer thread
    // turns them into cells (field rules, values) and writes the sheet; at
    // most one page waits between them, so memory stays bounded.
    let convert = cursor.converter();
    let (tx, rx) = flume::bounded::<crm_core::export::ExportBatch>(1);
    let (done_tx, done_rx) = flume::bounded::<Result<ExportSheet, IoError>>(1);
    std::thread::Builder::new()
        .name("crm-export-writer".into())
        .spawn(move || {
            let mut sheet = sheet;
            let written = rx
                .iter()
                .try_for_each(|batch| convert.for_each_row(batch, |row| sheet.add_values(row)))
                .map(|()| sheet);
            let _ = done_tx.send(written);
        })
        .map_err(|e| IoError::Write(format!("cannot start the export writer: {e}")))?;
    let mut n: u64 = 0;
    let read = async {
        while let Some(batch) = cursor.next_batch().await? {
            let rows = batch.len() as u64;
            if tx.send_async(batch).await.is_err() {
                // The writer stopped; its error is reported below.
                break;
            }
            n += rows;
            progress(Progress { rows: n, total: 0 });
        }
        Ok::<(), IoError>(())
    }
    .await;
    drop(tx);
    let written = done_rx
        .recv_async()
        .await
        .map_err(|_| IoError::Write("the export writer stopped".into()))?;
    read?;
    written?.finish(out)?;
    Ok(n)
}

/// Exports a sales list (opportunities, quotes or contracts) as its list
/// operation finds it — the list's own filters, newest first — with the
/// picked columns (every column when none are picked) and headers, statuses
/// and types in `lang`, to `out`. Only what the actor may both read and
/// export is written, and a customer or opportunity is named only for who
/// may read it. Returns the number of rows written.
pub async fn export_sales<W: std::io::Write + std::io::Seek + Send>(
    crm: &Crm,
    actor: &Actor,
    list: crm_core::sales::SalesList,
    picks: &[String],
    lang: Lang,
    out: W,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, IoError> {
    let entity = list.entity();
    let columns = crm.export_columns(actor, entity, picks).await?;
    let name = match lang {
        Lang::Zh => entity.name_zh(),
        Lang::En => entity.name(),
    };
    let sheet = ExportSheet::new(&columns, name, lang)?;
    write_sales(crm, actor, list, columns, lang, sheet, out, progress).await
}

/// Writes the pages of a sales export to `sheet`.
#[allow(clippy::too_many_arguments)]
async fn write_sales<W: std::io::Write + std::io::Seek + Send>(
    crm: &Crm,
    actor: &Actor,
    list: crm_core::sales::SalesList,
    columns: Vec<crm_core::import::ExportColumn>,
    lang: Lang,
    mut sheet: ExportSheet,
    out: W,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, IoError> {
    let mut cursor = crm
        .sales_export_cursor(actor, list, columns, lang == Lang::En, 1000)
        .await?;
    let mut n: u64 = 0;
    while let Some(rows) = cursor.next_page().await? {
        for row in &rows {
            sheet.add(row)?;
        }
        n += rows.len() as u64;
        progress(Progress { rows: n, total: 0 });
    }
    sheet.finish(out)?;
    Ok(n)
}

/// A product (price list) export: pages of the catalogue, in code order,
/// found by the query's search text (products take no conditions).
async fn export_products<W: std::io::Write + std::io::Seek + Send>(
    crm: &Crm,
    actor: &Actor,
    query: &ListQuery,
    columns: &[crm_core::import::ExportColumn],
    mut sheet: ExportSheet,
    out: W,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, IoError> {
    if !query.conditions.is_empty() || !query.sort.is_empty() {
        return Err(crm_core::error::Error::invalid(
            "where",
            "product exports take a search text, not conditions or a sort: in code order (产品导出只支持搜索, 按编号排序)",
        )
        .into());
    }
    let deleted = match query.lifecycle {
        crm_core::store::Lifecycle::Active => false,
        crm_core::store::Lifecycle::Deleted => true,
        _ => {
            return Err(crm_core::error::Error::invalid(
                "lifecycle",
                "product exports cover the live catalogue or the recycle bin; products are not archived (产品没有归档)",
            )
            .into());
        }
    };
    let mut q = crm_core::sales::product::ProductQuery {
        search: query.search.clone(),
        deleted,
        page: 1,
        per_page: 1000,
        ..Default::default()
    };
    let mut n: u64 = 0;
    loop {
        let (rows, more) = crm.product_export_page(actor, columns, &q).await?;
        for row in &rows {
            sheet.add(row)?;
        }
        n += rows.len() as u64;
        progress(Progress { rows: n, total: 0 });
        if !more || rows.is_empty() {
            break;
        }
        q.page += 1;
    }
    sheet.finish(out)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::import::Cell;
    use crm_core::testing::service_suite::World;

    /// The cell budget [`BATCH_CELLS`] is counted in: a cell of a row
    /// takes no more than 32 bytes (its text apart).
    #[test]
    fn a_cell_takes_at_most_32_bytes() {
        assert!(std::mem::size_of::<Cell>() <= 32);
    }

    /// Batches of wide rows end once they hold the most cells a batch may
    /// hold, whatever their row count; narrow rows fill the batch size.
    #[test]
    fn batches_of_wide_rows_are_cut_by_their_cells() {
        let rows = |width: usize| -> ReadSheet {
            Box::new(move |f| {
                f(SheetEvent::Header {
                    cells: vec!["a".into(); width],
                    declared_rows: 40,
                })?;
                for number in 2..42 {
                    f(SheetEvent::Row(SheetRow {
                        number,
                        cells: vec![Cell::Text("x".into()); width],
                    }))?;
                }
                Ok(())
            })
        };
        let batches = |width: usize| -> Vec<usize> {
            let (tx, rx) = flume::unbounded::<Msg>();
            let (vtx, vrx) = flume::bounded::<ReaderSetup>(1);
            vtx.send((None, Vec::new())).expect("validator");
            feed(rows(width), &tx, &vrx, 10, 100).expect("fed");
            drop(tx);
            rx.iter()
                .filter_map(|m| match m {
                    Msg::Batch(rows, ..) => Some(rows.len()),
                    _ => None,
                })
                .collect()
        };
        // 10 rows of 2 cells: within the budget, the batch size counts.
        assert_eq!(batches(2), vec![10, 10, 10, 10]);
        // Rows of 30 cells: 4 of them reach 100 cells.
        assert_eq!(batches(30), vec![4; 10]);
    }

    /// A customer template has at most the contact groups a row may
    /// have: more are refused, not cut.
    #[tokio::test]
    async fn templates_refuse_more_contact_groups_than_a_row_may_have() {
        let store: std::sync::Arc<dyn crm_core::store::Store> =
            std::sync::Arc::new(crm_store_sqlite::SqliteStore::open_in_memory().expect("store"));
        let w = World::new(store).await;
        let max = crm_core::import::MAX_CONTACT_GROUPS;
        template(&w.crm, &w.admin, Entity::Customer, Lang::Zh, max)
            .await
            .expect("the most contact groups");
        let err = template(&w.crm, &w.admin, Entity::Customer, Lang::Zh, max + 1)
            .await
            .expect_err("one more is refused");
        assert!(
            err.to_string().contains("at most 20 contact column groups"),
            "{err}"
        );
    }

    /// A reader that panics part-way (as calamine or chrono may on a
    /// hostile cell) fails the import with the panic's message instead of
    /// ending it as done with the rows read so far; batches already
    /// committed stay committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_panics_fails_the_import() {
        let store: std::sync::Arc<dyn crm_core::store::Store> =
            std::sync::Arc::new(crm_store_sqlite::SqliteStore::open_in_memory().expect("store"));
        let w = World::new(store).await;
        let read: ReadSheet = Box::new(|f| {
            f(SheetEvent::Header {
                cells: vec!["客户名称".into()],
                declared_rows: 3,
            })?;
            for (number, name) in [(2, "甲有限公司"), (3, "乙有限公司")] {
                f(SheetEvent::Row(SheetRow {
                    number,
                    cells: vec![Cell::Text(name.into())],
                }))?;
            }
            panic!("TimeDelta::milliseconds out of bounds");
        });
        let mut o = ImportOptions::new(Entity::Customer);
        o.commit = CommitMode::Batches;
        o.batch_size = 1;
        let err = import_sheet(&w.crm, &w.admin, read, o, Lang::En, &mut |_| {})
            .await
            .expect_err("the import fails");
        assert!(
            matches!(&err, IoError::Interrupted(m) if m.contains("out of bounds")),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "reading the sheet stopped unexpectedly: TimeDelta::milliseconds out of bounds"
        );
        assert!(err.message_zh().contains("导入未完成"));
        let list = w
            .crm
            .list_records(&w.admin, Entity::Customer, &ListQuery::default())
            .await
            .expect("list");
        assert_eq!(
            list.items.len(),
            2,
            "the batches sent before stay committed"
        );
    }
}
