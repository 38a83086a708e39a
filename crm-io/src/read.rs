//! Reading workbooks within limits.
//!
//! A workbook is read into memory only up to [`Limits::max_file_bytes`];
//! every part of the zip is then decompressed once, counting the bytes that
//! actually come out (the sizes the zip declares are not trusted), before
//! calamine parses anything. The sheet is streamed cell by cell
//! (`worksheet_cells_reader`): the declared dimension is never used, so a
//! cell at XFD1048576 costs one cell, and rows, columns, cells and the
//! length of a cell are counted against the limits as they stream by.
//! What calamine builds before the sheet streams is checked while the
//! parts decompress: the shared strings' declared and actual count, the
//! length of each shared string as written (see `text_bound`), and the
//! style records. A cell inline in the sheet is built whole by calamine
//! before its length is checked: it costs at most its part's size
//! ([`Limits::max_part_bytes`]), once. (Measuring every cell of a sheet
//! while it decompresses as well took a tenth of a 100 000-row import.)
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
    /// Columns. Default 1 024: a customer template with the most contact
    /// column groups (20) has 239 built-in columns, and the rest leaves
    /// room for several hundred custom fields (a template wider than this
    /// is refused, see [`crate::template`]). A row is read as a cell per
    /// column up to its last (32 bytes each, the text apart), so the limit
    /// bounds a row at 32 KiB; the import cuts batches of wide rows
    /// shorter, keeping a batch's cells within what 10 000 rows of 256
    /// columns took.
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
    /// Style records of the styles part: `xf`, `font`, `fill`, `border`
    /// and `numFmt` elements, each of which calamine turns into an object
    /// of its own when it opens the workbook. Default 250 000 (Excel itself
    /// holds at most 64 000 cell formats).
    pub max_styles: u64,
    /// Bytes of text (UTF-8) one row's cells hold once read, a shared
    /// string counted at every cell that uses it: a small file can point
    /// thousands of cells at one long string. Default 256 KiB.
    pub max_row_text_bytes: u64,
    /// Bytes of text all the sheet's cells hold once read, counted the same
    /// way. Default 1 GiB.
    pub max_text_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 << 20,
            max_part_bytes: 512 << 20,
            max_total_bytes: 1 << 30,
            max_parts: 10_000,
            max_rows: 1_048_575,
            max_columns: 1024,
            max_cells: 30_000_000,
            max_cell_chars: 32_767,
            max_shared_strings: 10_000_000,
            max_styles: 250_000,
            max_row_text_bytes: 256 << 10,
            max_text_bytes: 1 << 30,
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

    /// The sheet to read: the worksheet named, else the first worksheet
    /// (chart sheets are none).
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
    /// row (cells in the header's columns, then any cells right of the
    /// header's last column: such a row is longer than the header),
    /// calling `f` for each. Stops early when `f` returns `false`.
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
        // Text bytes of the current row and of the sheet, as read.
        let (mut row_text, mut text): (u64, u64) = (0, 0);
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
                    // A cell right of the header's last column extends the
                    // row: it is not imported (no header names it), but
                    // it stays in the row, for the error workbook and the
                    // report's ignored columns.
                    let row_width = cells
                        .iter()
                        .map(|(c, _)| *c as usize + 1)
                        .max()
                        .unwrap_or(0)
                        .max(*width);
                    let mut out = vec![Cell::Empty; row_width];
                    for (c, cell) in cells.drain(..) {
                        out[c as usize] = cell;
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
            if current != Some(row) {
                row_text = 0;
            }
            current = Some(row);
            last_col = Some(col);
            let value = convert(cell.get_value(), &lim, row, col)?;
            if let Cell::Text(t) = &value {
                let n = t.len() as u64;
                row_text += n;
                text += n;
                if row_text > lim.max_row_text_bytes {
                    return Err(IoError::TooLarge {
                        what: format!("row {} of the sheet", u64::from(row) + 1),
                        limit: format!("{} bytes of text in a row", lim.max_row_text_bytes),
                    });
                }
                if text > lim.max_text_bytes {
                    return Err(IoError::TooLarge {
                        what: "the sheet".into(),
                        limit: format!("{} bytes of text", lim.max_text_bytes),
                    });
                }
            }
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
    let find = |want: &str| names.iter().position(|n| n == want);
    let head = |zip: &mut zip::ZipArchive<Cursor<Arc<[u8]>>>, i: Option<usize>| {
        let mut out = Vec::new();
        if let Some(Ok(part)) = i.map(|i| zip.by_index(i)) {
            // Within the limits: the part is counted below like any other.
            let _ = part.take(4 << 20).read_to_end(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    // The workbook part, found as calamine finds it, and its relationships,
    // read first: they tell worksheets from chart sheets and where they are.
    let (dir, file) = workbook_part(&head(&mut zip, find("_rels/.rels")));
    let book_xml = head(&mut zip, find(&normalized(&format!("{dir}{file}"))));
    let rels_xml = head(
        &mut zip,
        find(&normalized(&format!("{dir}_rels/{file}.rels"))),
    );
    let sheets = worksheets(&book_xml, &rels_xml, &dir);
    let mut total: u64 = 0;
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
        let scan = if shared {
            Some(Scan::new(Check::Strings(SiText::default())))
        } else if norm.ends_with("styles.xml") {
            Some(Scan::new(Check::Styles(0)))
        } else {
            None
        };
        let mut part = Counted {
            part,
            size: 0,
            total: &mut total,
            lim,
            name: &name,
            over: None,
            scan,
        };
        if shared {
            check_shared_strings(&mut part, lim)?;
        }
        // The rest of the part (all of it, but for the shared strings) is
        // counted (and checked) too.
        loop {
            let n = part.read(&mut buf).map_err(|e| part.failed(e))?;
            if n == 0 {
                break;
            }
        }
    }
    Ok(sheets.into_iter().map(|(n, _)| n).collect())
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
    /// The check made on the part's markup as it streams by, if any.
    scan: Option<Scan>,
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
        if self.over.is_none()
            && let Some(scan) = &mut self.scan
            && let Err(e) = scan.feed(&buf[..n], self.lim, self.name)
        {
            self.over = Some(e);
        }
        if self.over.is_some() {
            return Err(std::io::Error::other("a limit is exceeded"));
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
                // Read as calamine reads attributes (its `attrs.rs`), not as
                // quick-xml does: calamine takes an empty name (`=""`) and
                // anything else up to an `=` as a name and reads on.
                for (key, value) in raw_attributes(e.attributes_raw()) {
                    if key != "uniqueCount" {
                        continue;
                    }
                    if let Some(n) = declared_count(value.as_bytes())
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

/// The attributes of a start tag as calamine reads them (its
/// `RawAttrIter`): whitespace skipped, a name is everything up to the next
/// `=` (trailing whitespace trimmed, so it may be empty or hold spaces),
/// then a quoted value, its quote closing it (or the tag's end). Reading
/// stops where calamine reports a malformed attribute (no `=`, an unquoted
/// value), which makes calamine refuse the part.
fn raw_attributes(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = raw;
    std::iter::from_fn(move || {
        let r = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let eq = r.find('=')?;
        let key = r[..eq].trim_end_matches(|c: char| c.is_ascii_whitespace());
        let after = r[eq + 1..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let body = &after[1..];
        let end = body.find(quote).unwrap_or(body.len());
        rest = body.get(end + 1..).unwrap_or("");
        Some((key, &body[..end]))
    })
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

/// Calls `f` with each start tag of `xml` (an empty element's too), read
/// with calamine's settings, up to the first XML error.
fn start_tags(xml: &str, mut f: impl FnMut(&quick_xml::events::BytesStart<'_>)) {
    let mut r = quick_xml::Reader::from_str(xml);
    let config = r.config_mut();
    config.check_end_names = false;
    config.check_comments = false;
    config.expand_empty_elements = true;
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => f(&e),
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Where calamine looks for the workbook part (`read_package_relationships`):
/// the folder and name of the package's `officeDocument` relationship's
/// target (the last one), `xl/workbook.xml` without one.
fn workbook_part(package_rels: &str) -> (String, String) {
    let mut target = None;
    start_tags(package_rels, |e| {
        if e.local_name().as_ref() != "Relationship" {
            return;
        }
        let (mut typ, mut to) = ("", None);
        for (k, v) in raw_attributes(e.attributes_raw()) {
            match k {
                "Type" => typ = v,
                "Target" => to = Some(v),
                _ => {}
            }
        }
        if typ.ends_with("/relationships/officeDocument")
            && let Some(to) = to
        {
            target =
                Some(quick_xml::escape::unescape(to).map_or_else(|_| to.to_string(), Into::into));
        }
    });
    let Some(target) = target else {
        return ("xl/".into(), "workbook.xml".into());
    };
    let (dir, name) = target.split_at(target.rfind('/').map_or(0, |i| i + 1));
    let name = if name.is_empty() {
        "workbook.xml"
    } else {
        name
    };
    (
        dir.strip_prefix('/').unwrap_or(dir).to_string(),
        name.to_string(),
    )
}

/// The worksheets of `workbook.xml`, in order, read as calamine reads
/// them (`read_workbook`): each `<sheet>`'s `name` attribute, entities
/// decoded, and the part its relationship (`_rels/workbook.xml.rels`, its
/// `id` looked up there) points to, `dir` (the workbook part's folder)
/// prefixed unless absolute. Chart sheets and dialog sheets are left out:
/// they hold no cells to import. A sheet whose relationship is missing is
/// kept without a part (calamine then refuses the workbook).
fn worksheets(book: &str, rels: &str, dir: &str) -> Vec<(String, Option<String>)> {
    let mut targets = std::collections::HashMap::new();
    start_tags(rels, |e| {
        if e.local_name().as_ref() != "Relationship" {
            return;
        }
        let (mut id, mut typ, mut target) = (None, "", "");
        for (k, v) in raw_attributes(e.attributes_raw()) {
            match k {
                "Id" => id = Some(v),
                "Type" => typ = v,
                "Target" => target = v,
                _ => {}
            }
        }
        if let Some(id) = id {
            targets.insert(id.to_string(), (typ.to_string(), target.to_string()));
        }
    });
    let mut out = Vec::new();
    start_tags(book, |e| {
        if e.local_name().as_ref() != "sheet" {
            return;
        }
        let (mut name, mut id) = (String::new(), "");
        for (k, v) in raw_attributes(e.attributes_raw()) {
            if k == "name" {
                name = quick_xml::escape::unescape(v).map_or_else(|_| v.to_string(), Into::into);
            } else if k == "id" || k.ends_with(":id") {
                id = v;
            }
        }
        let path = match targets.get(id) {
            Some((typ, _)) if typ.rsplit('/').next() != Some("worksheet") => return,
            Some((_, target)) => Some(normalized(
                &target
                    .strip_prefix('/')
                    .map_or_else(|| format!("{dir}{target}"), str::to_string),
            )),
            None => None,
        };
        out.push((name, path));
    });
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
    if serial == 0.0 {
        return Cell::Error(
            "#VALUE! (date number 0 is a time of day without a date / \
             日期数值只有时间，没有日期)"
                .into(),
        );
    }
    // A time of day alone (`9:30` typed into a cell): its text, as the
    // sheet shows it, which a text field takes and a date field refuses
    // by name — and which the error workbook gives back as typed.
    if (0.0..1.0).contains(&serial) {
        let secs = (serial * 86_400.0).round() as u32;
        let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        return Cell::Text(if s == 0 {
            format!("{h:02}:{m:02}")
        } else {
            format!("{h:02}:{m:02}:{s:02}")
        });
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

/// A tag the markup scanner ([`Markup`]) found, reported as quick-xml
/// reports it to calamine (which reads with `expand_empty_elements`: an
/// empty element `<a/>` is a start and then an end).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tag<'a> {
    /// A start tag: its full name (prefix included), `None` when longer
    /// than any name looked at here.
    Start(Option<&'a [u8]>),
    /// An end tag (or the end of an empty element).
    End(Option<&'a [u8]>),
    /// Text (character data, CDATA sections included): its length in bytes
    /// as written, entities undecoded. A decoded entity is never longer
    /// than its reference, so this is an upper bound on what the text
    /// becomes.
    Text(u64),
}

/// Where the scanner is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum At {
    /// Character data.
    #[default]
    Text,
    /// Just after a `<`.
    Open,
    /// A start tag (its name, then its attributes).
    Start,
    /// An end tag (`</`).
    End,
    /// After `<!`, before telling a comment, CDATA or a declaration apart.
    Bang,
    /// A comment (`<!--`).
    Comment,
    /// A CDATA section (`<![`).
    CData,
    /// A declaration (`<!DOCTYPE`): `<` and `>` balanced as quick-xml
    /// balances them.
    Decl,
    /// A processing instruction (`<?`).
    Pi,
}

/// The longest tag name kept (longer ones are none of the names looked at
/// here, and match no other).
const NAME_MAX: usize = 64;

/// A streaming scanner of XML markup, fed a part chunk by chunk. It splits
/// the bytes as quick-xml splits them for calamine (same rules: a start
/// tag ends at a `>` outside quotes, an end tag at the first `>`, a comment
/// at `-->`, CDATA at `]]>`, a processing instruction at `?>`), so that the
/// checks built on it see the elements calamine will see, in constant
/// memory, however long a text or tag is. Only a document type declaration
/// (never in a workbook part) is read more loosely.
#[derive(Default)]
struct Markup {
    at: At,
    /// The current tag's name, or the first bytes after `<!`.
    name: Vec<u8>,
    /// The name is longer than [`NAME_MAX`].
    long: bool,
    /// The name is complete (whitespace followed it).
    named: bool,
    /// The open quote inside a start tag, if any.
    quote: Option<u8>,
    /// The bytes of the current markup so far (after the `<`).
    len: u64,
    /// The last two bytes of the current markup.
    last: [u8; 2],
    /// `<`/`>` balance inside a declaration.
    depth: u64,
}

impl Markup {
    /// Scans `bytes`, calling `f` for each tag and text run (a text run
    /// cut by a chunk's end is reported in pieces); stops at `f`'s first
    /// error.
    fn feed<E>(
        &mut self,
        bytes: &[u8],
        f: &mut impl FnMut(Tag<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut i = 0;
        while i < bytes.len() {
            if self.at == At::Text {
                let end = memchr::memchr(b'<', &bytes[i..]).map_or(bytes.len(), |p| i + p);
                if end > i {
                    f(Tag::Text((end - i) as u64))?;
                }
                i = end;
                if i < bytes.len() {
                    i += 1;
                    self.at = At::Open;
                    self.name.clear();
                    self.long = false;
                    self.named = false;
                    self.quote = None;
                    self.len = 0;
                    self.last = [0, 0];
                }
                continue;
            }
            // Bytes that change nothing (inside a comment, CDATA, a
            // processing instruction, or a start tag's attributes) are
            // skipped at once.
            let rest = &bytes[i..];
            let skip = match self.at {
                At::Comment | At::CData | At::Pi => memchr::memchr(b'>', rest),
                At::Start if self.named => match self.quote {
                    Some(q) => memchr::memchr(q, rest),
                    None => memchr::memchr3(b'"', b'\'', b'>', rest),
                },
                _ => Some(0),
            }
            .unwrap_or(rest.len());
            if skip > 0 {
                self.last = match &rest[..skip] {
                    [.., a, b] => [*a, *b],
                    [b] => [self.last[1], *b],
                    [] => self.last,
                };
                self.len += skip as u64;
                i += skip;
                if self.at == At::CData {
                    // The content is text (`![CDATA[` too, when cut off
                    // there: it only overstates).
                    f(Tag::Text(skip as u64))?;
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            let prev = self.last;
            self.len += 1;
            self.last = [prev[1], b];
            match self.at {
                At::Text => unreachable!(),
                At::Open => match b {
                    b'/' => self.at = At::End,
                    b'!' => self.at = At::Bang,
                    b'?' => self.at = At::Pi,
                    _ => {
                        self.at = At::Start;
                        self.start_byte(b, prev[1], f)?;
                    }
                },
                At::Start => self.start_byte(b, prev[1], f)?,
                At::End => {
                    if b == b'>' {
                        let name = self.name.trim_ascii_end();
                        f(Tag::End((!self.long).then_some(name)))?;
                        self.at = At::Text;
                    } else {
                        self.push_name(b);
                    }
                }
                At::Bang => match b {
                    b'-' => self.at = At::Comment,
                    b'[' => self.at = At::CData,
                    _ => {
                        // `<!DOCTYPE …>` (anything else is an error for
                        // quick-xml).
                        self.at = At::Decl;
                        self.depth = 1;
                    }
                },
                // `<!---->` is the shortest comment: the `--` before the
                // `>` may not be the opening one.
                At::Comment => {
                    if b == b'>' && prev == *b"--" && self.len >= 6 {
                        self.at = At::Text;
                    }
                }
                At::CData => {
                    if b == b'>' && prev == *b"]]" {
                        self.at = At::Text;
                    } else if self.len > 8 {
                        // The content (after `![CDATA[`) is text; the `]]`
                        // of the end is counted too, which only overstates.
                        f(Tag::Text(1))?;
                    }
                }
                At::Decl => match b {
                    b'<' => self.depth += 1,
                    b'>' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.at = At::Text;
                        }
                    }
                    _ => {}
                },
                At::Pi => {
                    if b == b'>' && prev[1] == b'?' && self.len >= 3 {
                        self.at = At::Text;
                    }
                }
            }
        }
        Ok(())
    }

    /// A byte of a start tag: the name runs to the first whitespace; a
    /// `>` outside quotes ends the tag, an empty element when a `/` comes
    /// just before it.
    fn start_byte<E>(
        &mut self,
        b: u8,
        prev: u8,
        f: &mut impl FnMut(Tag<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(q) = self.quote {
            if b == q {
                self.quote = None;
            }
            return Ok(());
        }
        match b {
            b'"' | b'\'' => self.quote = Some(b),
            b'>' => {
                let empty = prev == b'/' && self.len >= 2;
                let mut name = &self.name[..];
                if empty && !self.named {
                    name = name.strip_suffix(b"/").unwrap_or(name);
                }
                let name = (!self.long).then_some(name);
                f(Tag::Start(name))?;
                if empty {
                    f(Tag::End(name))?;
                }
                self.at = At::Text;
                return Ok(());
            }
            _ => {}
        }
        if !self.named {
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                self.named = true;
            } else {
                self.push_name(b);
            }
        }
        Ok(())
    }

    fn push_name(&mut self, b: u8) {
        if self.name.len() < NAME_MAX {
            self.name.push(b);
        } else {
            self.long = true;
        }
    }
}

/// The local part of a tag name (after its prefix's first `:`), as
/// quick-xml gives it.
fn local(name: &[u8]) -> &[u8] {
    name.iter()
        .position(|b| *b == b':')
        .map_or(name, |at| &name[at + 1..])
}

/// The longest a cell or shared string may be as written in its part
/// before the prescan refuses it: eight bytes of XML for each character
/// allowed (an entity such as `&quot;` takes six), plus room for a
/// cell's formula and markup. A longer one could not become a text within
/// [`Limits::max_cell_chars`] written the way spreadsheets write; calamine
/// would build it whole before the reader could count its characters.
fn text_bound(lim: &Limits) -> u64 {
    (lim.max_cell_chars as u64).saturating_mul(8) + (128 << 10)
}

/// A name kept to compare end tags with: a name too long to keep is kept
/// as `>`, which no end tag's name matches.
fn kept(name: Option<&[u8]>) -> Vec<u8> {
    name.map_or_else(|| b">".to_vec(), <[u8]>::to_vec)
}

/// Whether a tag's name has the local part `want`.
fn is(name: Option<&[u8]>, want: &[u8]) -> bool {
    name.is_some_and(|n| local(n) == want)
}

/// Measures each string of a shared strings part as calamine reads it
/// (`read_string_with_bufs`): a string starts at an `si` start tag and ends
/// at the end tag of the same name; its text is that of its `t` elements
/// (each up to the end tag of its own name, whatever else comes between).
#[derive(Default)]
struct SiText {
    si: Option<Vec<u8>>,
    t: Option<Vec<u8>>,
    len: u64,
}

impl SiText {
    /// Follows one tag; returns the text length of the string so far.
    fn tag(&mut self, tag: &Tag<'_>) -> u64 {
        match (*tag, &self.si, &self.t) {
            (Tag::Start(n), None, _) if is(n, b"si") => {
                self.si = Some(kept(n));
                self.len = 0;
            }
            (Tag::Start(n), Some(_), None) if is(n, b"t") => self.t = Some(kept(n)),
            (Tag::End(n), _, Some(t)) if n == Some(t.as_slice()) => self.t = None,
            (Tag::End(n), Some(si), None) if n == Some(si.as_slice()) => self.si = None,
            (Tag::Text(k), _, Some(_)) => self.len += k,
            _ => {}
        }
        self.len
    }
}

/// The style records calamine keeps an object for.
const STYLE_RECORDS: [&[u8]; 5] = [b"xf", b"font", b"fill", b"border", b"numFmt"];

/// What is checked in a part as it streams by ([`Counted`]).
enum Check {
    /// Each string's length (a shared strings part).
    Strings(SiText),
    /// The number of style records (a styles part).
    Styles(u64),
}

/// A part's markup, scanned as it streams by, and the check made on it.
struct Scan {
    markup: Markup,
    check: Check,
}

impl Scan {
    fn new(check: Check) -> Scan {
        Scan {
            markup: Markup::default(),
            check,
        }
    }

    /// Scans a chunk of the part `name`, refusing it at the first limit
    /// broken.
    fn feed(&mut self, bytes: &[u8], lim: &Limits, name: &str) -> Result<(), IoError> {
        let bound = text_bound(lim);
        let long = |what: String| IoError::TooLarge {
            what,
            limit: format!(
                "{} characters (as Excel counts them: an emoji counts twice)",
                lim.max_cell_chars
            ),
        };
        let check = &mut self.check;
        self.markup.feed(bytes, &mut |tag| match check {
            Check::Strings(s) => {
                if s.tag(&tag) > bound {
                    return Err(long(format!(
                        "a shared string of {name} (more than {bound} bytes of text)"
                    )));
                }
                Ok(())
            }
            Check::Styles(n) => {
                if let Tag::Start(Some(t)) = tag
                    && STYLE_RECORDS.contains(&local(t))
                {
                    *n += 1;
                    if *n > lim.max_styles {
                        return Err(IoError::TooLarge {
                            what: format!("the cell styles of {name}"),
                            limit: format!(
                                "{} style records (cell formats, fonts, fills, borders, \
                                 number formats)",
                                lim.max_styles
                            ),
                        });
                    }
                }
                Ok(())
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Markup, SiTags, Tag, raw_attributes};
    use quick_xml::events::Event;

    /// The tags quick-xml reports with calamine's settings, up to its
    /// first error (where calamine stops reading).
    fn quick_tags(xml: &str) -> Vec<String> {
        let mut r = quick_xml::Reader::from_reader(xml.as_bytes());
        let config = r.config_mut();
        config.check_end_names = false;
        config.trim_text(false);
        config.check_comments = false;
        config.expand_empty_elements = true;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_event_into(&mut buf) {
                Ok(Event::Start(e)) => out.push(format!("<{}", e.name().as_ref())),
                Ok(Event::End(e)) => out.push(format!("</{}", e.name().as_ref())),
                Ok(Event::Eof) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out
    }

    /// The tags the scanner reports, the input cut in two at `split`.
    fn scanned(xml: &str, split: usize) -> Vec<String> {
        let mut m = Markup::default();
        let mut out = Vec::new();
        let mut f = |t: Tag<'_>| {
            match t {
                Tag::Start(n) => out.push(format!(
                    "<{}",
                    String::from_utf8_lossy(n.expect("a short name"))
                )),
                Tag::End(n) => out.push(format!(
                    "</{}",
                    String::from_utf8_lossy(n.expect("a short name"))
                )),
                Tag::Text(_) => {}
            }
            Ok::<_, ()>(())
        };
        m.feed(&xml.as_bytes()[..split], &mut f).expect("scans");
        m.feed(&xml.as_bytes()[split..], &mut f).expect("scans");
        out
    }

    #[test]
    fn markup_is_split_as_quick_xml_splits_it() {
        for xml in [
            "<?xml version=\"1.0\"?>\n<sst a=\"x>y\" b='<si>'><si><t>a</t></si><!-- <si> --><![CDATA[<si>]]><si/><x:si  /><si x=\"/\"/></sst>",
            "<a><!----><b/><!-- - -- --><!-- -x- --><c/></a  ><d/ ><e\n/></e>",
            "<a><!-- a --->x</a><b><!--->--><c/>-->",
            "<?pi?><?pi x>y?><a/><?pi a?>",
            "<!DOCTYPE x [<!ENTITY y \"z\">]><a><b/></a>",
            "<a><![CDATA[ ]>]] ] ]]><b/><![CDATA[]]><c/></a>",
            "<a b='\"' c=\"'\"><d e=\">\" /></a>",
        ] {
            let want = quick_tags(xml);
            assert!(!want.is_empty(), "{xml}");
            for split in 0..=xml.len() {
                let got = scanned(xml, split);
                assert_eq!(
                    got[..want.len().min(got.len())],
                    want[..],
                    "{xml} split at {split}"
                );
            }
        }
    }

    #[test]
    fn attributes_are_read_as_calamine_reads_them() {
        fn all(raw: &str) -> Vec<(&str, &str)> {
            raw_attributes(raw).collect()
        }
        assert_eq!(
            all(r#" ="" uniqueCount="9""#),
            [("", ""), ("uniqueCount", "9")]
        );
        assert_eq!(all(" a b = 'x\"' c=\"\""), [("a b", "x\""), ("c", "")]);
        assert_eq!(all(r#" a="1" b c="2""#), [("a", "1"), ("b c", "2")]);
        // Malformed: no `=`, an unquoted value.
        assert_eq!(all(r#" a="1" b"#), [("a", "1")]);
        assert_eq!(all(r#" a=1 b="2""#), []);
    }

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
