//! Reading workbooks within limits.
//!
//! A workbook is read into memory only up to [`Limits::max_file_bytes`];
//! every part of the zip is then decompressed once, counting the bytes that
//! actually come out (the sizes the zip declares are not trusted), before
//! calamine parses anything. The sheet is streamed cell by cell
//! (`worksheet_cells_reader`): the declared dimension is never used, so a
//! cell at XFD1048576 costs one cell, and rows, columns, cells and the
//! length of a cell are counted against the limits as they stream by.
//! `.xls`, `.xlsb` and `.ods` are refused: their readers materialise whole
//! streams and ranges from declared sizes.

use crate::IoError;
use calamine::{DataRef, Reader, Xlsx};
use crm_core::import::{Cell, SheetRow, column_name};
use quick_xml::events::Event;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

/// Bounds on what a workbook may make the reader do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Size of the file as stored (compressed). Default 64 MiB.
    pub max_file_bytes: u64,
    /// Uncompressed size of any one part (sheet, shared strings …).
    /// Default 512 MiB.
    pub max_part_bytes: u64,
    /// Uncompressed size of all parts together. Default 1 GiB.
    pub max_total_bytes: u64,
    /// Parts in the zip. Default 10 000.
    pub max_parts: usize,
    /// Data rows. Default 1 048 575 (Excel's own maximum below the header).
    pub max_rows: u32,
    /// Columns. Default 256.
    pub max_columns: u32,
    /// Non-empty cells. Default 30 million.
    pub max_cells: u64,
    /// Characters in one cell, counted as Excel counts them: in UTF-16
    /// units, so a character outside the Basic Multilingual Plane (most
    /// emoji, rare CJK ideographs) counts twice. Default 32 767 (Excel's own
    /// maximum).
    pub max_cell_chars: usize,
    /// Distinct shared strings the workbook may declare (`uniqueCount`)
    /// and hold. Default 10 million.
    pub max_shared_strings: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 << 20,
            max_part_bytes: 512 << 20,
            max_total_bytes: 1 << 30,
            max_parts: 10_000,
            max_rows: 1_048_575,
            max_columns: 256,
            max_cells: 30_000_000,
            max_cell_chars: 32_767,
            max_shared_strings: 10_000_000,
        }
    }
}

/// A workbook checked against the limits, ready to be read.
#[derive(Clone)]
pub struct Workbook {
    bytes: Arc<[u8]>,
    sheets: Vec<String>,
    limits: Limits,
}

impl std::fmt::Debug for Workbook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workbook")
            .field("bytes", &self.bytes.len())
            .field("sheets", &self.sheets)
            .finish()
    }
}

/// A header row and then data rows, as the reader streams them.
#[derive(Clone, Debug, PartialEq)]
pub enum SheetEvent {
    /// The header row (the first non-empty row).
    Header {
        /// The header cells' texts, in column order.
        cells: Vec<String>,
        /// The rows the sheet declares: a hint for progress bars only.
        declared_rows: u32,
    },
    /// A data row.
    Row(SheetRow),
}

impl Workbook {
    /// Reads a workbook file, refusing it when it breaks a limit.
    pub fn open(path: impl AsRef<Path>, limits: Limits) -> Result<Workbook, IoError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| IoError::File {
            path: path.display().to_string(),
            source: e,
        })?;
        // Sized from the file's length (within the limit) rather than grown.
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut bytes =
            Vec::with_capacity(size.min(limits.max_file_bytes.saturating_add(1)) as usize);
        file.take(limits.max_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| IoError::File {
                path: path.display().to_string(),
                source: e,
            })?;
        Workbook::from_bytes(bytes, limits)
    }

    /// Checks a workbook held in memory.
    pub fn from_bytes(bytes: Vec<u8>, limits: Limits) -> Result<Workbook, IoError> {
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(IoError::TooLarge {
                what: "the file".into(),
                limit: format!("{} bytes", limits.max_file_bytes),
            });
        }
        if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
            return Err(IoError::Unsupported(
                "an Excel 97-2003 workbook (.xls) or an encrypted workbook".into(),
            ));
        }
        if !bytes.starts_with(b"PK\x03\x04") {
            return Err(IoError::NotExcel(
                "the file is not an Excel workbook (.xlsx)".into(),
            ));
        }
        let bytes: Arc<[u8]> = bytes.into();
        let sheets = prescan(&bytes, &limits)?;
        if sheets.is_empty() {
            return Err(IoError::NotExcel("the workbook has no worksheet".into()));
        }
        Ok(Workbook {
            bytes,
            sheets,
            limits,
        })
    }

    /// The names of the worksheets, in workbook order.
    pub fn sheet_names(&self) -> &[String] {
        &self.sheets
    }

    /// The workbook's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The limits it is read with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The sheet to read: the one named, else the first.
    pub fn resolve_sheet(&self, sheet: Option<&str>) -> Result<String, IoError> {
        match sheet {
            None => Ok(self.sheets[0].clone()),
            Some(s) => self
                .sheets
                .iter()
                .find(|n| n.as_str() == s.trim())
                .cloned()
                .ok_or_else(|| IoError::NoSheet {
                    name: s.to_string(),
                    available: self.sheets.clone(),
                }),
        }
    }

    /// Streams the sheet: first its header row, then every non-empty data
    /// row (cells in the header's columns), calling `f` for each. Stops
    /// early when `f` returns `false`.
    pub fn read(
        &self,
        sheet: Option<&str>,
        mut f: impl FnMut(SheetEvent) -> Result<bool, IoError>,
    ) -> Result<(), IoError> {
        let name = self.resolve_sheet(sheet)?;
        let lim = self.limits;
        let mut xlsx = open_xlsx(&self.bytes)?;
        let mut reader = xlsx
            .worksheet_cells_reader(&name)
            .map_err(|e| IoError::Broken(e.to_string()))?;
        let declared_rows = reader.dimensions().end.0.min(lim.max_rows);
        let mut header: Option<(u32, usize)> = None;
        let mut current: Option<u32> = None;
        // The column of the row's last cell: a row's cells must run left to
        // right, each once, so a row holds at most `max_columns` cells.
        let mut last_col: Option<u32> = None;
        let mut cells: Vec<(u32, Cell)> = Vec::new();
        let mut count: u64 = 0;
        let mut flush = |row: u32,
                         cells: &mut Vec<(u32, Cell)>,
                         header: &mut Option<(u32, usize)>|
         -> Result<bool, IoError> {
            if cells.iter().all(|(_, c)| c.is_empty()) {
                cells.clear();
                return Ok(true);
            }
            let out = match header {
                None => {
                    let width = cells
                        .iter()
                        .map(|(c, _)| *c as usize + 1)
                        .max()
                        .unwrap_or(0);
                    let mut names = vec![String::new(); width];
                    for (c, cell) in cells.drain(..) {
                        names[c as usize] = cell.to_text().unwrap_or_default();
                    }
                    *header = Some((row, width));
                    f(SheetEvent::Header {
                        cells: names,
                        declared_rows,
                    })?
                }
                Some((hrow, width)) => {
                    if row - *hrow > lim.max_rows {
                        return Err(IoError::TooLarge {
                            what: "the sheet".into(),
                            limit: format!("{} data rows", lim.max_rows),
                        });
                    }
                    let mut out = vec![Cell::Empty; *width];
                    for (c, cell) in cells.drain(..) {
                        if let Some(slot) = out.get_mut(c as usize) {
                            *slot = cell;
                        }
                    }
                    f(SheetEvent::Row(SheetRow {
                        number: row + 1,
                        cells: out,
                    }))?
                }
            };
            cells.clear();
            Ok(out)
        };
        loop {
            let next = reader
                .next_cell()
                .map_err(|e| IoError::Broken(e.to_string()))?;
            let Some(cell) = next else { break };
            let (row, col) = cell.get_position();
            if col >= lim.max_columns {
                return Err(IoError::TooLarge {
                    what: format!(
                        "cell {}{} of the sheet",
                        column_name(col as usize),
                        u64::from(row) + 1
                    ),
                    limit: format!("{} columns", lim.max_columns),
                });
            }
            if let Some(cur) = current
                && row != cur
            {
                if row < cur {
                    return Err(IoError::Broken(format!(
                        "row {} comes after row {} in the sheet",
                        u64::from(row) + 1,
                        u64::from(cur) + 1
                    )));
                }
                if !flush(cur, &mut cells, &mut header)? {
                    return Ok(());
                }
                last_col = None;
            }
            if let Some(last) = last_col
                && col <= last
            {
                let at = format!("{}{}", column_name(col as usize), u64::from(row) + 1);
                return Err(IoError::Broken(if col == last {
                    format!("cell {at} appears twice in its row")
                } else {
                    format!(
                        "cell {at} comes after cell {}{} (a row's cells must run left to right)",
                        column_name(last as usize),
                        u64::from(row) + 1
                    )
                }));
            }
            current = Some(row);
            last_col = Some(col);
            let value = convert(cell.get_value(), &lim, row, col)?;
            if !value.is_empty() {
                count += 1;
                if count > lim.max_cells {
                    return Err(IoError::TooLarge {
                        what: "the sheet".into(),
                        limit: format!("{} cells", lim.max_cells),
                    });
                }
                cells.push((col, value));
            }
        }
        if let Some(cur) = current {
            flush(cur, &mut cells, &mut header)?;
        }
        if header.is_none() {
            return Err(IoError::Empty(name));
        }
        Ok(())
    }
}

fn open_xlsx(bytes: &Arc<[u8]>) -> Result<Xlsx<Cursor<Arc<[u8]>>>, IoError> {
    Xlsx::new(Cursor::new(bytes.clone())).map_err(|e| match e {
        calamine::XlsxError::Password => {
            IoError::Unsupported("a password-protected workbook".into())
        }
        other => IoError::Broken(other.to_string()),
    })
}

/// A part name as calamine looks parts up: `\` read as `/`, ASCII case
/// ignored.
fn normalized(name: &str) -> String {
    name.replace('\\', "/").to_ascii_lowercase()
}

/// Decompresses every part once, counting real bytes against the limits,
/// checks what calamine would otherwise trust (the shared string count it
/// reserves memory for, and the strings it keeps), and returns the sheet
/// names of `workbook.xml`.
fn prescan(bytes: &Arc<[u8]>, lim: &Limits) -> Result<Vec<String>, IoError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes.clone()))
        .map_err(|e| IoError::NotExcel(format!("the file is not a readable zip: {e}")))?;
    if zip.len() > lim.max_parts {
        return Err(IoError::TooLarge {
            what: "the zip".into(),
            limit: format!("{} parts", lim.max_parts),
        });
    }
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| normalized(&n)))
        .collect::<Result<_, _>>()
        .map_err(|e| IoError::Broken(format!("a part name of the zip: {e}")))?;
    if names.iter().any(|n| n.ends_with("workbook.bin")) {
        return Err(IoError::Unsupported("a binary workbook (.xlsb)".into()));
    }
    if names.iter().any(|n| n == "content.xml") && !names.iter().any(|n| n.starts_with("xl/")) {
        return Err(IoError::Unsupported(
            "an OpenDocument spreadsheet (.ods)".into(),
        ));
    }
    if !names.iter().any(|n| n.ends_with("workbook.xml")) {
        return Err(IoError::NotExcel(
            "the zip holds no Excel workbook (xl/workbook.xml)".into(),
        ));
    }
    let mut total: u64 = 0;
    let mut sheets = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..zip.len() {
        let part = zip
            .by_index(i)
            .map_err(|e| IoError::Broken(format!("part {i} of the zip: {e}")))?;
        let name = part
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| format!("part {i}"));
        let norm = normalized(&name);
        // Calamine finds the parts whatever their case, so they are
        // recognised here the same way.
        let shared = norm.ends_with("sharedstrings.xml");
        let workbook = norm.ends_with("workbook.xml");
        let mut part = Counted {
            part,
            size: 0,
            total: &mut total,
            lim,
            name: &name,
            over: None,
        };
        if shared {
            check_shared_strings(&mut part, lim)?;
        }
        // The rest of the part (all of it, but for the shared strings) is
        // counted too.
        let mut head = Vec::new();
        loop {
            let n = part.read(&mut buf).map_err(|e| part.failed(e))?;
            if n == 0 {
                break;
            }
            if workbook && head.len() < (4 << 20) {
                head.extend_from_slice(&buf[..n]);
            }
        }
        if workbook && sheets.is_empty() {
            sheets = sheet_names(&String::from_utf8_lossy(&head));
        }
    }
    Ok(sheets)
}

/// A part of the zip as it decompresses, its bytes (and those of the whole
/// workbook) counted against the limits.
struct Counted<'a, R> {
    part: R,
    size: u64,
    total: &'a mut u64,
    lim: &'a Limits,
    name: &'a str,
    /// The limit broken, when reading stopped at one.
    over: Option<IoError>,
}

impl<R> Counted<'_, R> {
    /// The error to report for a failed read: the broken limit, if that is
    /// why, else the read error.
    fn failed(&mut self, e: impl std::fmt::Display) -> IoError {
        self.over
            .take()
            .unwrap_or_else(|| IoError::Broken(format!("{}: {e}", self.name)))
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.part.read(buf)?;
        self.size += n as u64;
        *self.total += n as u64;
        if self.size > self.lim.max_part_bytes {
            self.over = Some(IoError::TooLarge {
                what: format!("{} uncompressed", self.name),
                limit: format!("{} bytes", self.lim.max_part_bytes),
            });
        } else if *self.total > self.lim.max_total_bytes {
            self.over = Some(IoError::TooLarge {
                what: "the workbook uncompressed".into(),
                limit: format!("{} bytes", self.lim.max_total_bytes),
            });
        }
        if self.over.is_some() {
            return Err(std::io::Error::other("a size limit is exceeded"));
        }
        Ok(n)
    }
}

/// Checks a shared strings part: the `uniqueCount` of its first `sst`
/// element, which calamine reserves room for before reading a string, is
/// read with the XML parser calamine uses (same version, same settings),
/// so it is found wherever the element starts (after a declaration,
/// comments, processing instructions or whitespace of any length) and
/// however its attribute is quoted; then the `si` elements after it, each
/// of which calamine keeps as one string, are counted ([`SiTags`]). Both
/// must stay within [`Limits::max_shared_strings`]. (The part's size limit
/// alone would allow some hundred million empty strings.)
fn check_shared_strings<R: Read>(part: &mut Counted<'_, R>, lim: &Limits) -> Result<(), IoError> {
    let too_many = |what: String| IoError::TooLarge {
        what,
        limit: format!("{} strings", lim.max_shared_strings),
    };
    let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(64 << 10, &mut *part));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "sst" => {
                for attr in e.attributes().with_checks(false) {
                    // Calamine stops at a malformed attribute as well.
                    let Ok(attr) = attr else { break };
                    if attr.key.local_name().as_ref() != "uniqueCount" {
                        continue;
                    }
                    if let Some(n) = declared_count(attr.value.as_bytes())
                        && n > lim.max_shared_strings
                    {
                        return Err(too_many(if n == u64::MAX {
                            "the shared strings (a count too large to read declared)".into()
                        } else {
                            format!("the shared strings ({n} declared)")
                        }));
                    }
                }
                break;
            }
            // No strings: calamine refuses the part.
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                // A limit broken while parsing, or XML calamine refuses too.
                let e = e.to_string();
                drop(xml);
                return Err(part.failed(e));
            }
        }
    }
    // The strings: parsing them all again here would cost about as much as
    // calamine's own reading, so their tags are counted as they stream by.
    let mut rest = xml.into_inner();
    let mut tags = SiTags::default();
    let mut chunk = vec![0u8; 64 << 10];
    let read = loop {
        match rest.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                tags.feed(&chunk[..n]);
                if tags.count > lim.max_shared_strings {
                    return Err(too_many(format!(
                        "the shared strings (more than {} present)",
                        lim.max_shared_strings
                    )));
                }
            }
            Err(e) => break Err(e),
        }
    };
    drop(rest);
    read.map_err(|e| part.failed(e))
}

/// Counts the `si` start tags of XML fed to it chunk by chunk, with or
/// without a namespace prefix. Every `<` starts a name (as in quick_xml:
/// it ends at whitespace, `/` or `>`; its local part follows the first
/// `:`), so every `si` element calamine keeps a string for is counted;
/// tags inside comments or CDATA, or nested, count too, which only makes
/// the count an upper bound.
#[derive(Default)]
struct SiTags {
    /// `si` start tags seen.
    count: u64,
    /// Inside a name (after a `<`).
    in_name: bool,
    /// The name's prefix ended (a `:` was seen).
    prefixed: bool,
    /// The local part's first bytes.
    local: [u8; 2],
    /// The local part's length, up to 3 (longer is no `si`).
    len: usize,
}

impl SiTags {
    fn feed(&mut self, mut bytes: &[u8]) {
        loop {
            if !self.in_name {
                let Some(at) = bytes.iter().position(|b| *b == b'<') else {
                    return;
                };
                bytes = &bytes[at + 1..];
                self.start();
            }
            let Some((b, rest)) = bytes.split_first() else {
                return;
            };
            bytes = rest;
            match *b {
                b'<' => self.start(),
                b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>' => {
                    if self.len == 2 && self.local == *b"si" {
                        self.count += 1;
                    }
                    self.in_name = false;
                }
                b':' if !self.prefixed => {
                    self.prefixed = true;
                    self.len = 0;
                }
                b => {
                    if let Some(slot) = self.local.get_mut(self.len) {
                        *slot = b;
                    }
                    self.len = (self.len + 1).min(3);
                }
            }
        }
    }

    fn start(&mut self) {
        self.in_name = true;
        self.prefixed = false;
        self.len = 0;
    }
}

/// A declared count read as calamine reads it (any number of leading
/// zeros), a little more leniently (surrounding whitespace, a plus sign);
/// `u64::MAX` when it is larger; `None` when it is no number, which
/// calamine ignores.
fn declared_count(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    let v = v.strip_prefix(b"+").unwrap_or(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The `name` attributes of the `<sheet>` elements of `workbook.xml`, in
/// order (calamine reads the same file again when the sheet is opened).
fn sheet_names(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in xml.split('<').skip(1) {
        let Some(tag) = tag.split('>').next() else {
            continue;
        };
        let el = tag.split_whitespace().next().unwrap_or_default();
        if el != "sheet" && !el.ends_with(":sheet") {
            continue;
        }
        if let Some(v) = tag
            .split(" name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            out.push(
                v.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            );
        }
    }
    out
}

/// Excel's date serials: 1 (1900-01-01) up to 9999-12-31 23:59:59.999.
const EXCEL_SERIALS: std::ops::Range<f64> = 1.0..2_958_466.0;

/// A date-formatted number as a date, or, outside Excel's dates, as an
/// error value of the cell: Excel shows such a cell as `#####`, and the
/// import rejects its row with the reason rather than guessing a value.
fn excel_date(d: &calamine::ExcelDateTime) -> Cell {
    let serial = d.as_f64();
    // The whole part is the day: 0 is no day at all (a time of day only,
    // which calamine would turn into 1899-12-31), and in the 1900 date
    // system 60 is Excel's 1900-02-29, a day that never was (calamine reads
    // it as 1900-02-28, the core as 1900-03-01). The 1904 system has no such
    // day: its serials compare unequal to the same serial in 1900's.
    let day = serial.floor();
    if (0.0..1.0).contains(&serial) {
        let value = crm_core::import::number_text(serial);
        return Cell::Error(format!(
            "#VALUE! (date number {value} is a time of day without a date / \
             日期数值只有时间，没有日期)"
        ));
    }
    if day == 60.0
        && *d == calamine::ExcelDateTime::new(serial, calamine::ExcelDateTimeType::DateTime, false)
    {
        let value = crm_core::import::number_text(serial);
        return Cell::Error(format!(
            "#VALUE! (date number {value} is 1900-02-29, a day that does not exist / \
             日期数值为不存在的 1900-02-29)"
        ));
    }
    // Calamine turns the serial into milliseconds for chrono, which panics
    // far outside Excel's dates: the range is checked first.
    let dt = if EXCEL_SERIALS.contains(&serial) {
        d.as_datetime()
    } else {
        None
    };
    match dt {
        Some(dt) if chrono::Datelike::year(&dt) <= 9999 => {
            if dt.time() == chrono::NaiveTime::MIN {
                Cell::Date(dt.date())
            } else {
                Cell::DateTime(dt)
            }
        }
        _ => {
            let value = if serial.is_finite() && serial.abs() < 1e16 {
                crm_core::import::number_text(serial)
            } else {
                format!("{serial:e}")
            };
            Cell::Error(format!(
                "#NUM! (date number {value} is outside Excel's dates, 1900-01-01 to \
                 9999-12-31 / 日期数值超出 Excel 的日期范围)"
            ))
        }
    }
}

fn convert(v: &DataRef<'_>, lim: &Limits, row: u32, col: u32) -> Result<Cell, IoError> {
    // Counted as Excel counts (UTF-16 units); the length in UTF-8 bytes is
    // never less, so short texts are not counted at all.
    let long = |s: &str| {
        if s.len() > lim.max_cell_chars && s.encode_utf16().count() > lim.max_cell_chars {
            Err(IoError::TooLarge {
                what: format!("cell {}{}", column_name(col as usize), u64::from(row) + 1),
                limit: format!(
                    "{} characters (as Excel counts them: an emoji counts twice)",
                    lim.max_cell_chars
                ),
            })
        } else {
            Ok(())
        }
    };
    Ok(match v {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) => {
            long(s)?;
            Cell::Text(s.clone())
        }
        DataRef::SharedString(s) => {
            long(s)?;
            Cell::Text((*s).to_string())
        }
        DataRef::Int(i) => Cell::Number(*i as f64),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(d) if d.is_datetime() => excel_date(d),
        // A duration (`[h]:mm`) stays the number it is.
        DataRef::DateTime(d) => Cell::Number(d.as_f64()),
        DataRef::DateTimeIso(s) => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
            .map(Cell::DateTime)
            .or_else(|_| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Cell::Date))
            .unwrap_or_else(|_| Cell::Text(s.clone())),
        DataRef::DurationIso(s) => Cell::Text(s.clone()),
        DataRef::Error(e) => Cell::Error(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::SiTags;

    #[test]
    fn si_tags_are_counted_with_prefixes_and_across_chunks() {
        let xml = b"<sst><si><t>a</t></si><x:si/><x:sis/><si\n/><six/></si><!-- x --></sst>";
        for split in 0..=xml.len() {
            let mut tags = SiTags::default();
            tags.feed(&xml[..split]);
            tags.feed(&xml[split..]);
            assert_eq!(tags.count, 3, "split at {split}");
        }
    }
}
