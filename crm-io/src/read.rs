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
    /// Whether each of `sheets` is hidden (`state="hidden"` or
    /// `"veryHidden"` in `workbook.xml`).
    hidden: Vec<bool>,
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
    /// A cell of the next data row as the sheet holds it, where the row
    /// gives the import another reading of it: a date-formatted number
    /// that is no date (a time of day alone, Excel's phantom 1900-02-29,
    /// day 0) is read as the text the sheet shows, and this is the number.
    /// The error workbook gives the original back.
    Original {
        /// The cell's column (0-based).
        column: usize,
        /// The cell as stored.
        cell: Cell,
    },
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
        let (sheets, hidden): (Vec<String>, Vec<bool>) =
            prescan(&bytes, &limits)?.into_iter().unzip();
        if sheets.is_empty() {
            return Err(IoError::NotExcel("the workbook has no worksheet".into()));
        }
        Ok(Workbook {
            bytes,
            sheets,
            hidden,
            limits,
        })
    }

    /// The names of the worksheets, in workbook order (hidden ones too).
    pub fn sheet_names(&self) -> &[String] {
        &self.sheets
    }

    /// Whether the worksheet named `name` is hidden (Excel's 隐藏 and
    /// "very hidden" alike); `false` for a name that is no worksheet.
    pub fn is_hidden(&self, name: &str) -> bool {
        self.sheets
            .iter()
            .position(|n| n == name)
            .is_some_and(|i| self.hidden[i])
    }

    /// The workbook's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The limits it is read with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The sheet to read: the worksheet named (hidden or not), else the
    /// first visible worksheet — the sheet a person opening the file sees
    /// first, not a hidden one ahead of it (a lookup list, an old version)
    /// —, else (every worksheet hidden) the first (chart sheets are none).
    pub fn resolve_sheet(&self, sheet: Option<&str>) -> Result<String, IoError> {
        match sheet {
            None => Ok(self
                .sheets
                .iter()
                .zip(&self.hidden)
                .find(|(_, hidden)| !**hidden)
                .map_or(&self.sheets[0], |(name, _)| name)
                .clone()),
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
        // The current row's cells as stored, where they are read otherwise.
        let mut originals: Vec<(u32, Cell)> = Vec::new();
        let mut units = Utf16Cache::default();
        let mut count: u64 = 0;
        // Text bytes of the current row and of the sheet, as read.
        let (mut row_text, mut text): (u64, u64) = (0, 0);
        let mut flush = |row: u32,
                         cells: &mut Vec<(u32, Cell)>,
                         originals: &mut Vec<(u32, Cell)>,
                         header: &mut Option<(u32, usize)>|
         -> Result<bool, IoError> {
            if cells.iter().all(|(_, c)| c.is_empty()) {
                cells.clear();
                originals.clear();
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
                    for (c, cell) in originals.drain(..) {
                        if !f(SheetEvent::Original {
                            column: c as usize,
                            cell,
                        })? {
                            return Ok(false);
                        }
                    }
                    f(SheetEvent::Row(SheetRow {
                        number: row + 1,
                        cells: out,
                    }))?
                }
            };
            cells.clear();
            originals.clear();
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
                if !flush(cur, &mut cells, &mut originals, &mut header)? {
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
            let (value, original) = convert(cell.get_value(), &lim, row, col, &mut units)?;
            if let Some(o) = original {
                originals.push((col, o));
            }
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
            flush(cur, &mut cells, &mut originals, &mut header)?;
        }
        if header.is_none() {
            return Err(IoError::Empty(name));
        }
        Ok(())
    }
}

impl Workbook {
    /// Goes through the sheet once without building its rows, before an
    /// import does any work on them: refuses it where the text its cells
    /// hold (a shared string counted at every cell that uses it) exceeds
    /// [`Limits::max_text_bytes`], as [`Workbook::read`] would only once
    /// it got there, and returns the number of data rows (the non-empty
    /// rows after the header), which an import may not hold more of than
    /// it takes. It costs a parse of the sheet, a shared string's text at
    /// a cell a pointer's look-up.
    pub fn survey(&self, sheet: Option<&str>) -> Result<u64, IoError> {
        let name = self.resolve_sheet(sheet)?;
        let lim = self.limits;
        let mut xlsx = open_xlsx(&self.bytes)?;
        let mut reader = xlsx
            .worksheet_cells_reader(&name)
            .map_err(|e| IoError::Broken(e.to_string()))?;
        let (mut text, mut rows, mut cells): (u64, u64, u64) = (0, 0, 0);
        let mut header = false;
        let mut current: Option<(u32, bool)> = None;
        let end_row = |filled: bool, header: &mut bool, rows: &mut u64| {
            if filled {
                if *header {
                    *rows += 1;
                } else {
                    *header = true;
                }
            }
        };
        while let Some(cell) = reader
            .next_cell()
            .map_err(|e| IoError::Broken(e.to_string()))?
        {
            let (row, _) = cell.get_position();
            let filled = match cell.get_value() {
                DataRef::Empty => false,
                DataRef::String(s) => {
                    text += s.len() as u64;
                    !blank(s)
                }
                DataRef::SharedString(s) => {
                    text += s.len() as u64;
                    !blank(s)
                }
                _ => true,
            };
            if text > lim.max_text_bytes {
                return Err(IoError::TooLarge {
                    what: "the sheet".into(),
                    limit: format!("{} bytes of text", lim.max_text_bytes),
                });
            }
            if filled {
                cells += 1;
                if cells > lim.max_cells {
                    return Err(IoError::TooLarge {
                        what: "the sheet".into(),
                        limit: format!("{} cells", lim.max_cells),
                    });
                }
            }
            current = match current {
                Some((r, f)) if r == row => Some((r, f || filled)),
                Some((_, f)) => {
                    end_row(f, &mut header, &mut rows);
                    Some((row, filled))
                }
                None => Some((row, filled)),
            };
        }
        if let Some((_, f)) = current {
            end_row(f, &mut header, &mut rows);
        }
        Ok(rows)
    }
}

/// Whether a text is nothing typed: whitespace and invisible format
/// characters only (as [`Cell::is_empty`] tells).
fn blank(s: &str) -> bool {
    s.chars().all(|c| !stays(c))
}

/// Whether a character stays in a value once it is cleaned: neither
/// whitespace (trimmed) nor an invisible format character (dropped from
/// single-line values; the engine's set, Unicode category Cf).
pub(crate) fn stays(c: char) -> bool {
    !c.is_whitespace() && !crm_core::validate::is_invisible_format(c)
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
/// names of `workbook.xml`, each with whether it is hidden.
fn prescan(bytes: &Arc<[u8]>, lim: &Limits) -> Result<Vec<(String, bool)>, IoError> {
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
    Ok(sheets.into_iter().map(|(n, _, h)| (n, h)).collect())
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
/// kept without a part (calamine then refuses the workbook). Each comes
/// with whether it is hidden (its `state`, as calamine's `sheets_metadata`
/// reads it: `hidden` or `veryHidden`).
fn worksheets(book: &str, rels: &str, dir: &str) -> Vec<(String, Option<String>, bool)> {
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
        let (mut name, mut id, mut hidden) = (String::new(), "", false);
        for (k, v) in raw_attributes(e.attributes_raw()) {
            if k == "name" {
                name = quick_xml::escape::unescape(v).map_or_else(|_| v.to_string(), Into::into);
            } else if k == "id" || k.ends_with(":id") {
                id = v;
            } else if k == "state" {
                hidden = matches!(v, "hidden" | "veryHidden");
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
        out.push((name, path, hidden));
    });
    out
}

/// Excel's date serials: 1 (1900-01-01) up to 9999-12-31 23:59:59.999.
const EXCEL_SERIALS: std::ops::Range<f64> = 1.0..2_958_466.0;

/// A date-formatted number as the import reads it, and the number itself
/// when that reading is not the cell's value (the error workbook gives the
/// original back). A date is a date; a time of day alone, or a number that
/// is no day, is read as the text the sheet shows (`09:30`, Excel's
/// phantom `1900-02-29`, `1900-01-00` for 0), which a text field takes and
/// a date field refuses naming it; a number beyond Excel's dates (shown as
/// `#####`) is read as the number it is, which a date field refuses too.
fn excel_date(d: &calamine::ExcelDateTime) -> (Cell, Option<Cell>) {
    let serial = d.as_f64();
    let original = Some(Cell::Number(serial));
    // A time of day, `h:mm` or `h:mm:ss`.
    let clock = |fraction: f64| {
        let secs = (fraction * 86_400.0).round() as u32;
        let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        if s == 0 {
            format!("{h:02}:{m:02}")
        } else {
            format!("{h:02}:{m:02}:{s:02}")
        }
    };
    // A time of day alone (`9:30` typed into a cell): its text, as the
    // sheet shows it, which a text field takes and a date field refuses
    // by name — and which the error workbook gives back as the number.
    if serial > 0.0 && serial < 1.0 {
        return (Cell::Text(clock(serial)), original);
    }
    // The whole part is the day: 0 is Excel's `1900-01-00`, no day at all
    // (calamine would turn it into 1899-12-31), and in the 1900 date system
    // 60 is Excel's 1900-02-29, a day that never was (calamine reads it as
    // 1900-02-28, the core as 1900-03-01). The 1904 system has neither:
    // its serials compare unequal to the same serial in 1900's.
    let day = serial.floor();
    let system_1900 =
        *d == calamine::ExcelDateTime::new(serial, calamine::ExcelDateTimeType::DateTime, false);
    let phantom = match day {
        0.0 if system_1900 => Some("1900-01-00"),
        60.0 if system_1900 => Some("1900-02-29"),
        _ => None,
    };
    if let Some(shown) = phantom {
        let fraction = serial - day;
        let text = if fraction > 0.0 {
            format!("{shown} {}", clock(fraction))
        } else {
            shown.to_string()
        };
        return (Cell::Text(text), original);
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
                (Cell::Date(dt.date()), None)
            } else {
                (Cell::DateTime(dt), None)
            }
        }
        // Outside Excel's dates: the number, as it is stored.
        _ => (Cell::Number(serial), None),
    }
}

/// A number as a spreadsheet shows it in the General format: at most 15
/// significant digits, so the binary noise of a stored value or formula
/// (`0.30000000000000004` for `=0.1+0.2`) is gone and a text field takes
/// what the sheet shows (`0.3`). Whole numbers stay exact (up to 15
/// digits, as the sheet keeps them).
fn shown_number(f: f64) -> f64 {
    if !f.is_finite() || f == 0.0 {
        return f;
    }
    format!("{f:.14e}").parse().unwrap_or(f)
}

/// A cell as the import reads it, and the cell as the sheet holds it when
/// that differs (see [`excel_date`]).
fn convert(
    v: &DataRef<'_>,
    lim: &Limits,
    row: u32,
    col: u32,
    units: &mut Utf16Cache,
) -> Result<(Cell, Option<Cell>), IoError> {
    // Counted as Excel counts (UTF-16 units); the length in UTF-8 bytes is
    // never less, so short texts are not counted at all.
    let long = |s: &str, units: Option<&mut Utf16Cache>| {
        if s.len() > lim.max_cell_chars && utf16_len(s, units) > lim.max_cell_chars {
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
    Ok((
        match v {
            DataRef::Empty => Cell::Empty,
            DataRef::String(s) => {
                long(s, None)?;
                Cell::Text(s.clone())
            }
            // Shared strings live as long as the reader: their addresses
            // tell them apart.
            DataRef::SharedString(s) => {
                long(s, Some(units))?;
                Cell::Text((*s).to_string())
            }
            DataRef::Int(i) => Cell::Number(*i as f64),
            DataRef::Float(f) => Cell::Number(shown_number(*f)),
            DataRef::Bool(b) => Cell::Bool(*b),
            DataRef::DateTime(d) if d.is_datetime() => return Ok(excel_date(d)),
            // A duration (`[h]:mm`) stays the number it is.
            DataRef::DateTime(d) => Cell::Number(shown_number(d.as_f64())),
            DataRef::DateTimeIso(s) => {
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                    .map(Cell::DateTime)
                    .or_else(|_| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Cell::Date))
                    .unwrap_or_else(|_| Cell::Text(s.clone()))
            }
            DataRef::DurationIso(s) => Cell::Text(s.clone()),
            DataRef::Error(e) => Cell::Error(e.to_string()),
        },
        None,
    ))
}

/// The UTF-16 length of long texts, remembered for the last shared string
/// measured: a sheet can point every row at one long shared string, which
/// is then measured once, not at every cell.
#[derive(Default)]
struct Utf16Cache {
    /// The address and byte length of the last string measured, and its
    /// length in UTF-16 units.
    last: Option<(usize, usize, usize)>,
}

/// The length of a text in UTF-16 units, remembered in `cache` (for
/// strings that live as long as it: shared strings).
fn utf16_len(s: &str, cache: Option<&mut Utf16Cache>) -> usize {
    let key = (s.as_ptr() as usize, s.len());
    if let Some(Some((p, l, n))) = cache.as_ref().map(|c| c.last)
        && (p, l) == key
    {
        return n;
    }
    // A character takes one unit, two from four UTF-8 bytes on: every byte
    // that is no continuation byte starts one, a lead byte of four starts
    // two.
    let n = s
        .as_bytes()
        .iter()
        .map(|b| usize::from(b & 0xC0 != 0x80) + usize::from(*b >= 0xF0))
        .sum();
    if let Some(c) = cache {
        c.last = Some((key.0, key.1, n));
    }
    n
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

/// Keeps a name in `buf` to compare end tags with (reusing its room: a
/// part may hold millions of strings): a name too long to keep is kept as
/// `>`, which no end tag's name matches.
fn keep(buf: &mut Vec<u8>, name: Option<&[u8]>) {
    buf.clear();
    buf.extend_from_slice(name.unwrap_or(b">"));
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
    /// The open string's tag name, when one is open.
    si: Vec<u8>,
    in_si: bool,
    /// The open text element's tag name, when one is open.
    t: Vec<u8>,
    in_t: bool,
    len: u64,
}

impl SiText {
    /// Follows one tag; returns the text length of the string so far.
    fn tag(&mut self, tag: &Tag<'_>) -> u64 {
        match *tag {
            Tag::Start(n) if !self.in_si && is(n, b"si") => {
                keep(&mut self.si, n);
                self.in_si = true;
                self.len = 0;
            }
            Tag::Start(n) if self.in_si && !self.in_t && is(n, b"t") => {
                keep(&mut self.t, n);
                self.in_t = true;
            }
            Tag::End(n) if self.in_t && n == Some(self.t.as_slice()) => self.in_t = false,
            Tag::End(n) if self.in_si && !self.in_t && n == Some(self.si.as_slice()) => {
                self.in_si = false;
            }
            Tag::Text(k) if self.in_t => self.len += k,
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
