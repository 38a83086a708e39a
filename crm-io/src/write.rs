//! Writing workbooks: import templates, error workbooks and exports.
//!
//! Every worksheet that holds data is written in rust_xlsxwriter's constant
//! memory mode: each row goes to a temporary file as soon as the next one
//! starts, strings are written inline (no shared string table grows), so a
//! million rows take the memory of one. Text is never written as a formula:
//! text that a spreadsheet program could take for one (starting with `=`,
//! `+`, `-`, `@`, tab, CR or LF) gets the quote prefix (`quotePrefix="1"`),
//! so it stays text even when the cell is edited; headers too, as they can
//! be custom fields' labels or an imported file's header row. Error
//! workbooks cut text to what a cell holds, so they are always written.

use crate::{IoError, Lang};
use chrono::NaiveTime;
use crm_core::Entity;
use crm_core::import::{Cell, ExportColumn, ExportValue, TemplateColumn, ValueKind};
use rust_xlsxwriter::{
    Color, DataValidation, Format, FormatBorder, Formula, Workbook as XlsxBook, Worksheet,
    XlsxError,
};

impl From<XlsxError> for IoError {
    fn from(e: XlsxError) -> Self {
        IoError::Write(e.to_string())
    }
}

/// Whether a spreadsheet program could read the text as a formula or
/// command (formula injection, CSV/DDE injection).
pub fn needs_quote_prefix(s: &str) -> bool {
    matches!(
        s.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '＝' | '＋' | '－' | '＠')
    )
}

/// The most text a cell may hold, in UTF-16 units (as Excel and
/// rust_xlsxwriter count it).
pub(crate) const MAX_CELL_TEXT: usize = 32_767;

/// `s` cut to at most `max` UTF-16 units at a character boundary, and
/// whether it had to be cut.
pub(crate) fn fit_text(s: &str, max: usize) -> (&str, bool) {
    // A text's UTF-16 units never outnumber its UTF-8 bytes.
    if s.len() <= max {
        return (s, false);
    }
    let mut units = 0;
    for (at, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return (&s[..at], true);
        }
    }
    (s, false)
}

/// The formats a data sheet uses.
pub(crate) struct Formats {
    pub(crate) header: Format,
    pub(crate) required: Format,
    /// `header` with the quote prefix.
    pub(crate) header_quoted: Format,
    /// `required` with the quote prefix.
    pub(crate) required_quoted: Format,
    pub(crate) text: Format,
    pub(crate) quoted: Format,
    pub(crate) date: Format,
    pub(crate) datetime: Format,
    pub(crate) money: Format,
    pub(crate) number: Format,
    pub(crate) wrap: Format,
}

impl Formats {
    pub(crate) fn new() -> Formats {
        let header = Format::new()
            .set_bold()
            .set_background_color(Color::RGB(0xDDEBF7))
            .set_border(FormatBorder::Thin);
        let required = header.clone().set_font_color(Color::RGB(0xC00000));
        Formats {
            header_quoted: header.clone().set_quote_prefix(),
            required_quoted: required.clone().set_quote_prefix(),
            required,
            header,
            text: Format::new().set_num_format("@"),
            quoted: Format::new().set_quote_prefix(),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm"),
            money: Format::new().set_num_format("#,##0.00"),
            number: Format::new().set_num_format("General"),
            wrap: Format::new().set_text_wrap(),
        }
    }
}

/// Writes text as text, with the quote prefix where a spreadsheet program
/// could take it for a formula.
pub(crate) fn write_text(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    s: &str,
    f: &Formats,
) -> Result<(), IoError> {
    if needs_quote_prefix(s) {
        ws.write_string_with_format(row, col, s, &f.quoted)?;
    } else {
        ws.write_string(row, col, s)?;
    }
    Ok(())
}

/// Writes a header cell (in the required columns' red when `required`),
/// cut to Excel's cell limit, with the quote prefix where a spreadsheet
/// program could take it for a formula: headers can be custom fields'
/// labels or whatever an imported file's header row held.
pub(crate) fn write_header(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    s: &str,
    required: bool,
    f: &Formats,
) -> Result<(), IoError> {
    let (s, _) = fit_text(s, MAX_CELL_TEXT);
    let format = match (required, needs_quote_prefix(s)) {
        (false, false) => &f.header,
        (false, true) => &f.header_quoted,
        (true, false) => &f.required,
        (true, true) => &f.required_quoted,
    };
    ws.write_string_with_format(row, col, s, format)?;
    Ok(())
}

fn width_for(key: &str, kind: ValueKind, header: &str) -> f64 {
    let base: f64 = match (key, kind) {
        (_, ValueKind::Date) => 12.0,
        (_, ValueKind::DateTime) => 17.0,
        (_, ValueKind::Money | ValueKind::Number) => 14.0,
        (_, ValueKind::Bool) => 8.0,
        (k, _) if k.ends_with("name") && !k.ends_with("short_name") => 28.0,
        (k, _) if k.ends_with("address") || k.ends_with("notes") => 36.0,
        (k, _) if k.ends_with("uscc") || k.ends_with("email") || k.ends_with("website") => 24.0,
        (k, _) if k.ends_with("code") => 18.0,
        _ => 14.0,
    };
    // CJK characters are about two columns wide.
    let header_width: f64 = header
        .chars()
        .map(|c| if c.is_ascii() { 1.1 } else { 2.1 })
        .sum::<f64>()
        + 2.0;
    base.max(header_width).min(60.0)
}

fn header_text(c: &TemplateColumn, lang: Lang) -> String {
    let h = match lang {
        Lang::Zh => &c.header_zh,
        Lang::En => &c.header_en,
    };
    if c.required {
        format!("{h}*")
    } else {
        h.clone()
    }
}

/// Writes an import template: a data sheet with the header row (required
/// columns marked `*` in red, drop-down lists for choice fields, text format
/// for codes and phone numbers so Excel keeps their digits, date format for
/// dates), an example sheet with a sample row, and an instructions sheet
/// listing every column with whether it is required, what to enter and the
/// allowed values. The instructions describe a customer import; see
/// [`template_workbook_for`] for another entity's.
pub fn template_workbook(columns: &[TemplateColumn], lang: Lang) -> Result<Vec<u8>, IoError> {
    template_workbook_for(Entity::Customer, columns, lang)
}

/// The instructions sheet's opening paragraph for an import of `entity`:
/// how its rows are filled in and how a row is recognised as a duplicate.
fn template_intro(entity: Entity, lang: Lang) -> &'static str {
    match (entity, lang) {
        (Entity::Contact, Lang::Zh) => {
            "在「导入数据」表第 1 行之下逐行填写，一行一个联系人；带 * 的列必填；列的顺序可以调整，多余的列会被忽略；表头中文、英文均可。所属客户可填客户名称或客户编号（两者都填时须是同一客户）。联系人按同一客户下的手机号识别重复，没有手机号时按姓名（不区分大小写、重音、全角半角）识别，按导入时选择的策略跳过、更新或报错；出错的行会连同原因导出到错误文件，改正后可重新导入。"
        }
        (Entity::Contact, Lang::En) => {
            "Fill in the Data sheet below row 1, one contact per row; columns marked * are required; columns may be reordered, extra columns are ignored, headers may be Chinese or English. Name each contact's customer by its name or its customer code (both given, they must name the same customer). A contact is a duplicate by its mobile within its customer, or, without a mobile, by its name (letter case, accents and full-width letters aside); duplicates are skipped, updated or refused as chosen for the import; rejected rows come back in an error workbook with the reason, to fix and import again."
        }
        (Entity::User, Lang::Zh) => {
            "在「导入数据」表第 1 行之下逐行填写，一行一个用户；带 * 的列必填；列的顺序可以调整，多余的列会被忽略；表头中文、英文均可。用户按用户名识别（不区分大小写），已存在的用户名按导入时选择的策略跳过、更新或报错。部门、角色填名称（多个角色用逗号分隔），不填部门时新用户归入导入人所在部门；上级填用户名或姓名，可以是本文件前面各行新建的用户。出错的行会连同原因导出到错误文件，改正后可重新导入。"
        }
        (Entity::User, Lang::En) => {
            "Fill in the Data sheet below row 1, one user per row; columns marked * are required; columns may be reordered, extra columns are ignored, headers may be Chinese or English. A user is recognised by the username, letter case aside: an existing username is skipped, updated or refused as chosen for the import. Name departments and roles by name (several roles separated by commas); a new user without a department joins the importer's department. The superior is a username or display name, also of a user an earlier row of the file creates. Rejected rows come back in an error workbook with the reason, to fix and import again."
        }
        (Entity::Product, Lang::Zh) => {
            "在「导入数据」表第 1 行之下逐行填写，一行一个产品；带 * 的列必填；列的顺序可以调整，多余的列会被忽略；表头中文、英文均可。产品按编号识别重复，没有编号时按名称加规格识别，按导入时选择的策略跳过、更新或报错（按更新导入编号和价格即为价目表）；编号留空时自动生成。分类可填编号、名称或路径（如 办公设备/打印机）；价格以元为单位，精确到分；税率可填 13%、13 或 0.13。出错的行会连同原因导出到错误文件，改正后可重新导入。"
        }
        (Entity::Product, Lang::En) => {
            "Fill in the Data sheet below row 1, one product per row; columns marked * are required; columns may be reordered, extra columns are ignored, headers may be Chinese or English. A product is a duplicate by its code, or, without one, by its name and specification; duplicates are skipped, updated or refused as chosen for the import (codes and prices imported to update make a price list); an empty code gets an automatic one. Name the category by its code, name or path (Office/Printers); prices are in yuan, exact to the fen; tax rates as 13%, 13 or 0.13. Rejected rows come back in an error workbook with the reason, to fix and import again."
        }
        (_, Lang::Zh) => {
            "在「导入数据」表第 1 行之下逐行填写，一行一条记录；带 * 的列必填；列的顺序可以调整，多余的列会被忽略；表头中文、英文均可。客户可带多个联系人（联系人1姓名、联系人1手机、联系人2姓名……）。重复数据（统一社会信用代码、客户名称、联系人手机）会被识别，按导入时选择的策略跳过、更新或报错；出错的行会连同原因导出到错误文件，改正后可重新导入。"
        }
        (_, Lang::En) => {
            "Fill in the Data sheet below row 1, one record per row; columns marked * are required; columns may be reordered, extra columns are ignored, headers may be Chinese or English. A customer may carry several contacts (Contact 1 Name, Contact 1 Mobile, Contact 2 Name …). Duplicates (credit code, customer name, contact mobile) are detected and skipped, updated or refused as chosen for the import; rejected rows come back in an error workbook with the reason, to fix and import again."
        }
    }
}

/// [`template_workbook`] for an import of `entity`: its instructions sheet
/// describes that import (how its rows are recognised as duplicates, how
/// they name related records).
pub fn template_workbook_for(
    entity: Entity,
    columns: &[TemplateColumn],
    lang: Lang,
) -> Result<Vec<u8>, IoError> {
    let f = Formats::new();
    let mut book = XlsxBook::new();
    let (data_name, example_name, help_name, lists_name) = match lang {
        Lang::Zh => ("导入数据", "示例", "填写说明", "选项"),
        Lang::En => ("Data", "Example", "Instructions", "Lists"),
    };
    // Option lists longer than Excel's 255-character inline limit live on a
    // hidden sheet and are referenced by range.
    let mut long_lists: Vec<(usize, &TemplateColumn)> = Vec::new();
    {
        let ws = book.add_worksheet();
        ws.set_name(data_name)?;
        for (i, c) in columns.iter().enumerate() {
            let col = col_num(i)?;
            let h = header_text(c, lang);
            write_header(ws, 0, col, &h, c.required, &f)?;
            ws.set_column_width(col, width_for(&c.key, c.kind, &h))?;
            match c.kind {
                ValueKind::Date => {
                    ws.set_column_format(col, &f.date)?;
                }
                ValueKind::DateTime => {
                    ws.set_column_format(col, &f.datetime)?;
                }
                ValueKind::Text => {
                    ws.set_column_format(col, &f.text)?;
                }
                _ => {}
            }
            if !c.options.is_empty() {
                // An inline list is one text, `"a,b"`, within Excel's limit
                // and splits at commas: a longer list, or one whose options
                // hold a comma, is read from the hidden sheet instead, where
                // each cell is one option whatever it holds.
                let dv = if inline_list_fits(&c.options) {
                    DataValidation::new().allow_list_strings(&c.options)?
                } else {
                    long_lists.push((i, c));
                    let n = long_lists.len();
                    DataValidation::new().allow_list_formula(Formula::new(format!(
                        "={lists_name}!${}$1:${}${}",
                        crm_core::import::column_name(n - 1),
                        crm_core::import::column_name(n - 1),
                        c.options.len()
                    )))
                };
                ws.add_data_validation(1, col, 10_000, col, &dv.ignore_blank(true))?;
            }
        }
        ws.set_freeze_panes(1, 0)?;
    }
    {
        let ws = book.add_worksheet();
        ws.set_name(example_name)?;
        for (i, c) in columns.iter().enumerate() {
            let col = col_num(i)?;
            let h = header_text(c, lang);
            write_header(ws, 0, col, &h, false, &f)?;
            ws.set_column_width(col, width_for(&c.key, c.kind, &h))?;
            if !c.sample.is_empty() {
                write_text(ws, 1, col, &c.sample, &f)?;
            }
        }
        ws.set_freeze_panes(1, 0)?;
    }
    {
        let ws = book.add_worksheet();
        ws.set_name(help_name)?;
        let heads: [&str; 5] = match lang {
            Lang::Zh => ["列名", "必填", "说明", "可选值", "示例"],
            Lang::En => [
                "Column",
                "Required",
                "What to enter",
                "Allowed values",
                "Example",
            ],
        };
        let intro = template_intro(entity, lang);
        ws.set_column_width(0, 22)?;
        ws.set_column_width(1, 8)?;
        ws.set_column_width(2, 40)?;
        ws.set_column_width(3, 50)?;
        ws.set_column_width(4, 24)?;
        ws.merge_range(0, 0, 0, 4, intro, &f.wrap)?;
        ws.set_row_height(0, 90)?;
        for (i, h) in heads.iter().enumerate() {
            write_header(ws, 2, col_num(i)?, h, false, &f)?;
        }
        for (i, c) in columns.iter().enumerate() {
            let r = 3 + u32::try_from(i).map_err(|_| IoError::Write("too many columns".into()))?;
            write_text(ws, r, 0, &header_text(c, lang).replace('*', ""), &f)?;
            let req = match (c.required, lang) {
                (true, Lang::Zh) => "是",
                (false, Lang::Zh) => "",
                (true, Lang::En) => "yes",
                (false, Lang::En) => "",
            };
            ws.write_string(r, 1, req)?;
            let hint = match lang {
                Lang::Zh => &c.hint_zh,
                Lang::En => &c.hint_en,
            };
            write_text(ws, r, 2, hint, &f)?;
            write_text(ws, r, 3, &options_text(&c.options, lang), &f)?;
            write_text(ws, r, 4, &c.sample, &f)?;
        }
    }
    if !long_lists.is_empty() {
        let ws = book.add_worksheet();
        ws.set_name(lists_name)?;
        for (n, (_, c)) in long_lists.iter().enumerate() {
            for (r, o) in c.options.iter().enumerate() {
                let r = u32::try_from(r).map_err(|_| IoError::Write("too many options".into()))?;
                write_text(ws, r, col_num(n)?, o, &f)?;
            }
        }
        ws.set_hidden(true);
    }
    Ok(book.save_to_buffer()?)
}

/// Excel's limit on an inline list (the text between the quotes), in
/// UTF-16 units.
const MAX_INLINE_LIST: usize = 255;

/// Whether the options can be an inline list: their length as Excel counts
/// it (UTF-16 units, `"` doubled, a comma between options) is within its
/// limit, and no option holds a comma (Excel would split it in two).
fn inline_list_fits(options: &[String]) -> bool {
    if options.iter().any(|o| o.contains(',')) {
        return false;
    }
    let len = options
        .iter()
        .map(|o| o.encode_utf16().count() + o.matches('"').count())
        .sum::<usize>()
        + options.len().saturating_sub(1);
    len <= MAX_INLINE_LIST
}

/// The allowed values as the instructions sheet lists them, cut to what a
/// cell holds (ending with `…` and how many there are in all).
fn options_text(options: &[String], lang: Lang) -> String {
    let joined = options.join("、");
    if !fit_text(&joined, MAX_CELL_TEXT).1 {
        return joined;
    }
    let note = match lang {
        Lang::Zh => format!("（共 {} 项，单元格容纳不下，未全部列出）", options.len()),
        Lang::En => format!(" ({} values in all; not all fit in a cell)", options.len()),
    };
    let room = MAX_CELL_TEXT - note.encode_utf16().count() - '…'.len_utf16();
    let (kept, _) = fit_text(&joined, room);
    // Cut after the last whole value where there is one.
    let kept = kept.rfind('、').map_or(kept, |at| &kept[..at]);
    format!("{kept}…{note}")
}

/// Writes a date (or date-time) as Excel holds dates, 1900-01-01 to
/// 9999-12-31; outside them as ISO text (`1899-12-31`, `1899-12-31
/// 08:30:00`), which the import reads back as the same date. (Excel has no
/// serial for an earlier day: rust_xlsxwriter would write a negative one,
/// shown as `#####` and read back as an error.)
fn write_date(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    d: chrono::NaiveDateTime,
    time: bool,
    f: &Formats,
) -> Result<(), IoError> {
    let excel = chrono::NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date")
        ..=chrono::NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date");
    if !excel.contains(&d.date()) {
        let text = if time {
            d.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            d.format("%Y-%m-%d").to_string()
        };
        return write_text(ws, row, col, &text, f);
    }
    if time {
        ws.write_datetime_with_format(row, col, d, &f.datetime)?;
    } else {
        ws.write_datetime_with_format(row, col, d.date(), &f.date)?;
    }
    Ok(())
}

pub(crate) fn col_num(i: usize) -> Result<u16, IoError> {
    u16::try_from(i)
        .ok()
        .filter(|c| *c < 16_384)
        .ok_or_else(|| IoError::Write(format!("column {} is beyond Excel's last column", i + 1)))
}

/// Runs writes to a workbook whose sheet is in constant memory mode:
/// rust_xlsxwriter panics there when it cannot write the sheet's temporary
/// file (a full disk, say). The panic is the write's error here, and
/// `failed` is set: the sheet is not written to again.
fn guarded<T>(failed: &mut bool, f: impl FnOnce() -> Result<T, IoError>) -> Result<T, IoError> {
    if *failed {
        return Err(IoError::Write(
            "an earlier write to the workbook failed".into(),
        ));
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            *failed = true;
            Err(IoError::Write(crate::panic_text(&*panic)))
        }
    }
}

/// The deflate level of error workbooks (rust_xlsxwriter's default is 6).
const ERROR_BOOK_ZIP_LEVEL: u8 = 2;

/// Collects rejected and skipped rows into an error workbook: the original
/// header and cells of each row, then its row number and what is wrong, in
/// the user's language. Rows are streamed to disk as they come.
pub struct ErrorWorkbook {
    book: XlsxBook,
    formats: Formats,
    next_row: u32,
    width: usize,
    lang: Lang,
    /// A write failed (see [`guarded`]).
    failed: bool,
}

impl std::fmt::Debug for ErrorWorkbook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorWorkbook")
            .field("rows", &(self.next_row.saturating_sub(1)))
            .finish_non_exhaustive()
    }
}

impl ErrorWorkbook {
    /// Starts an error workbook with the import's header row.
    pub fn new(headers: &[String], lang: Lang) -> Result<ErrorWorkbook, IoError> {
        let formats = Formats::new();
        let mut book = XlsxBook::new();
        // Compressed while the import's last batch is written, so kept
        // short: on 20 000 rows of 16 cells, level 2 took a third of the
        // default level's time for a file about a fifth larger (level 1:
        // a quarter of the time, nearly twice the size).
        book.set_zip_compression_level(ERROR_BOOK_ZIP_LEVEL);
        let ws = book.add_worksheet_with_constant_memory()?;
        ws.set_name(match lang {
            Lang::Zh => "错误数据",
            Lang::En => "Rejected rows",
        })?;
        let (row_h, why_h) = match lang {
            Lang::Zh => ("原行号", "错误原因"),
            Lang::En => ("Row", "What is wrong"),
        };
        for (i, h) in headers.iter().enumerate() {
            let col = col_num(i)?;
            ws.set_column_width(col, width_for("", ValueKind::Text, h))?;
            write_header(ws, 0, col, h, false, &formats)?;
        }
        let n = headers.len();
        ws.set_column_width(col_num(n)?, 8)?;
        ws.set_column_width(col_num(n + 1)?, 60)?;
        write_header(ws, 0, col_num(n)?, row_h, true, &formats)?;
        write_header(ws, 0, col_num(n + 1)?, why_h, true, &formats)?;
        ws.set_freeze_panes(1, 0)?;
        Ok(ErrorWorkbook {
            book,
            formats,
            next_row: 1,
            width: n,
            lang,
            failed: false,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u32 {
        self.next_row - 1
    }

    /// Adds a row: its original cells, its number and the reason (both
    /// languages given; the workbook's language is written). Cells of the
    /// row right of the header's last column follow the reason, in the
    /// same order (as far as Excel's columns go). Text longer than a cell
    /// holds (32 767 UTF-16 units) is cut short, and the reason then says
    /// which columns were.
    /// A failed write (the sheet's temporary file, say) is an error, and
    /// the workbook takes no more rows.
    pub fn add(
        &mut self,
        number: u32,
        cells: &[Cell],
        message_zh: &str,
        message_en: &str,
    ) -> Result<(), IoError> {
        let mut failed = self.failed;
        let added = guarded(&mut failed, || {
            self.add_unguarded(number, cells, message_zh, message_en)
        });
        self.failed = failed;
        added
    }

    fn add_unguarded(
        &mut self,
        number: u32,
        cells: &[Cell],
        message_zh: &str,
        message_en: &str,
    ) -> Result<(), IoError> {
        let r = self.next_row;
        let f = &self.formats;
        let ws = self
            .book
            .worksheet_from_index(0)
            .map_err(|e| IoError::Write(e.to_string()))?;
        let mut cut: Vec<String> = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            // Cells right of the header's last column (no header names
            // them) stay in the row, after its number and reason.
            let col = if i < self.width {
                col_num(i)?
            } else if let Ok(col) = col_num(i + 2) {
                col
            } else {
                break;
            };
            match c {
                Cell::Empty => {}
                Cell::Text(s) | Cell::Error(s) => {
                    let (s, shortened) = fit_text(s, MAX_CELL_TEXT);
                    if shortened {
                        cut.push(crm_core::import::column_name(i));
                    }
                    write_text(ws, r, col, s, f)?;
                }
                Cell::Number(n) => {
                    ws.write_number(r, col, *n)?;
                }
                Cell::Bool(b) => {
                    ws.write_boolean(r, col, *b)?;
                }
                Cell::Date(d) => write_date(ws, r, col, d.and_time(NaiveTime::MIN), false, f)?,
                Cell::DateTime(d) => write_date(ws, r, col, *d, true, f)?,
            }
        }
        ws.write_number(r, col_num(self.width)?, f64::from(number))?;
        let (msg, note) = match self.lang {
            Lang::Zh => (
                message_zh,
                (!cut.is_empty()).then(|| {
                    format!(
                        "（注：{} 列的原值超过 Excel 单元格上限 32767 个字符，本文件中已截断）",
                        cut.join("、")
                    )
                }),
            ),
            Lang::En => (
                message_en,
                (!cut.is_empty()).then(|| {
                    format!(
                        " (note: the original value of column {} is longer than an Excel cell \
                         holds, 32 767 characters, and is cut short in this file)",
                        cut.join(", ")
                    )
                }),
            ),
        };
        let note = note.unwrap_or_default();
        // The reason quotes the values it refuses, which can be as long as a
        // cell: it is cut too (marked with `…`), leaving room for the note.
        let room = MAX_CELL_TEXT - note.encode_utf16().count();
        let reason = match fit_text(msg, room) {
            (msg, false) => format!("{msg}{note}"),
            (_, true) => format!("{}…{note}", fit_text(msg, room - 1).0),
        };
        write_text(ws, r, col_num(self.width + 1)?, &reason, f)?;
        self.next_row += 1;
        Ok(())
    }

    /// The finished workbook.
    pub fn finish(self) -> Result<Vec<u8>, IoError> {
        let mut failed = self.failed;
        guarded(&mut failed, move || self.finish_unguarded())
    }

    fn finish_unguarded(mut self) -> Result<Vec<u8>, IoError> {
        let last = self.next_row.saturating_sub(1);
        let width = col_num(self.width + 1)?;
        let ws = self
            .book
            .worksheet_from_index(0)
            .map_err(|e| IoError::Write(e.to_string()))?;
        ws.autofilter(0, 0, last.max(1), width)?;
        Ok(self.book.save_to_buffer()?)
    }
}

/// Streams export rows into a worksheet: typed cells (dates as dates,
/// money as numbers with two decimals), a frozen, filtered header row and
/// sensible column widths, in constant memory.
pub struct ExportSheet {
    book: XlsxBook,
    formats: Formats,
    next_row: u32,
    width: u16,
    /// A write failed (see [`guarded`]).
    failed: bool,
}

impl std::fmt::Debug for ExportSheet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportSheet")
            .field("rows", &(self.next_row.saturating_sub(1)))
            .finish_non_exhaustive()
    }
}

impl ExportSheet {
    /// Starts an export sheet with the columns' headers in `lang`.
    pub fn new(
        columns: &[ExportColumn],
        sheet_name: &str,
        lang: Lang,
    ) -> Result<ExportSheet, IoError> {
        let formats = Formats::new();
        let mut book = XlsxBook::new();
        let ws = book.add_worksheet_with_constant_memory()?;
        ws.set_name(sheet_name)?;
        for (i, c) in columns.iter().enumerate() {
            let col = col_num(i)?;
            let h = match lang {
                Lang::Zh => &c.header_zh,
                Lang::En => &c.header_en,
            };
            ws.set_column_width(col, width_for(&c.key, c.kind, h))?;
            write_header(ws, 0, col, h, false, &formats)?;
        }
        ws.set_freeze_panes(1, 0)?;
        Ok(ExportSheet {
            book,
            formats,
            next_row: 1,
            width: col_num(columns.len().saturating_sub(1))?,
            failed: false,
        })
    }

    /// Data rows written so far.
    pub fn rows(&self) -> u32 {
        self.next_row - 1
    }

    /// Appends one row.
    pub fn add(&mut self, values: &[ExportValue]) -> Result<(), IoError> {
        self.add_row(values.iter().map(|v| match v {
            ExportValue::Text(s) => Out::Text(s.as_str()),
            other => Out::Ref(other),
        }))
    }

    /// Appends one row, taking its values (the buffer is left empty, ready
    /// for the next row): text moves into the sheet without a copy.
    pub fn add_values(&mut self, values: &mut Vec<ExportValue>) -> Result<(), IoError> {
        self.add_row(values.drain(..).map(|v| match v {
            ExportValue::Text(s) => Out::Text(s),
            other => Out::Owned(other),
        }))
    }

    /// Appends one row; a failed write (the sheet's temporary file, say)
    /// is an error, and the sheet takes no more rows.
    fn add_row<'a, S>(&mut self, values: impl Iterator<Item = Out<'a, S>>) -> Result<(), IoError>
    where
        S: AsRef<str> + Into<String>,
    {
        let mut failed = self.failed;
        let added = guarded(&mut failed, || self.add_row_unguarded(values));
        self.failed = failed;
        added
    }

    fn add_row_unguarded<'a, S>(
        &mut self,
        values: impl Iterator<Item = Out<'a, S>>,
    ) -> Result<(), IoError>
    where
        S: AsRef<str> + Into<String>,
    {
        let r = self.next_row;
        if r >= 1_048_576 {
            return Err(IoError::TooLarge {
                what: "the export".into(),
                limit: "1 048 575 rows (Excel's maximum)".into(),
            });
        }
        let f = &self.formats;
        let ws = self
            .book
            .worksheet_from_index(0)
            .map_err(|e| IoError::Write(e.to_string()))?;
        for (i, v) in values.enumerate() {
            let col = col_num(i)?;
            let v = match v {
                Out::Text(s) => {
                    // A value longer than a cell holds (a note pasted in
                    // whole, say) is cut to what Excel takes, ending in `…`,
                    // rather than failing the whole export; the record
                    // keeps it all.
                    let (fits, cut) = fit_text(s.as_ref(), MAX_CELL_TEXT);
                    let shown;
                    let text: &str = if cut {
                        let (head, _) = fit_text(fits, MAX_CELL_TEXT - 1);
                        shown = format!("{head}…");
                        &shown
                    } else {
                        s.as_ref()
                    };
                    if needs_quote_prefix(text) {
                        ws.write_string_with_format(r, col, text, &f.quoted)?;
                    } else {
                        ws.write_string(r, col, text)?;
                    }
                    continue;
                }
                Out::Ref(v) => v,
                Out::Owned(ref v) => v,
            };
            match v {
                ExportValue::Empty => {}
                ExportValue::Text(s) => write_text(ws, r, col, s, f)?,
                ExportValue::Number(n) => {
                    ws.write_number_with_format(r, col, *n, &f.number)?;
                }
                ExportValue::Money(m) => {
                    ws.write_number_with_format(r, col, *m as f64 / 100.0, &f.money)?;
                }
                ExportValue::Date(d) => {
                    write_date(ws, r, col, d.and_time(NaiveTime::MIN), false, f)?;
                }
                ExportValue::DateTime(d) => write_date(ws, r, col, *d, true, f)?,
                ExportValue::Bool(b) => {
                    ws.write_boolean(r, col, *b)?;
                }
            }
        }
        self.next_row += 1;
        Ok(())
    }

    /// Adds the autofilter over the rows written and saves the workbook.
    pub fn finish<W: std::io::Write + std::io::Seek + Send>(self, out: W) -> Result<(), IoError> {
        let mut failed = self.failed;
        guarded(&mut failed, move || self.finish_unguarded(out))
    }

    fn finish_unguarded<W: std::io::Write + std::io::Seek + Send>(
        mut self,
        out: W,
    ) -> Result<(), IoError> {
        let last = self.next_row.saturating_sub(1).max(1);
        let width = self.width;
        let ws = self
            .book
            .worksheet_from_index(0)
            .map_err(|e| IoError::Write(e.to_string()))?;
        ws.autofilter(0, 0, last, width)?;
        self.book.save_to_writer(out)?;
        Ok(())
    }
}

/// An export cell to write: text (borrowed or owned) or another value.
enum Out<'a, S> {
    Text(S),
    Ref(&'a ExportValue),
    Owned(ExportValue),
}
