//! Hostile workbooks that are small on disk but would cost an import much
//! work (long texts repeated through the shared strings, cells far longer
//! than any field takes, more rows than an all-or-nothing import holds)
//! are refused, or their rows rejected, before that work is done. The
//! workbooks are built here, part by part.

use crm_core::import::{Cell, CommitMode, ImportOptions};
use crm_core::store::Store;
use crm_core::testing::service_suite::World;
use crm_core::{Entity, ListQuery};
use crm_io::{IoError, Lang, Limits, ReadOptions, SheetEvent, Workbook};
use std::io::{Cursor, Write};
use std::sync::Arc;

async fn world() -> World {
    let store: Arc<dyn Store> =
        Arc::new(crm_store_sqlite::SqliteStore::open_in_memory().expect("store"));
    World::new(store).await
}

/// A cell of [`workbook`]'s sheet.
enum C {
    /// The shared string at this index.
    S(usize),
    /// A number.
    N(f64),
}

fn column(mut i: usize) -> String {
    let mut s = String::new();
    i += 1;
    while i > 0 {
        let r = (i - 1) % 26;
        s.insert(0, (b'A' + r as u8) as char);
        i = (i - 1) / 26;
    }
    s
}

/// A workbook of one sheet, its shared strings and rows as given.
fn workbook(strings: &[String], rows: impl Iterator<Item = Vec<C>>) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut put = |name: &str, data: &[u8]| {
        z.start_file(name, o).expect("start");
        z.write_all(data).expect("write");
    };
    put(
        "[Content_Types].xml",
        br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#,
    );
    put(
        "_rels/.rels",
        br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    );
    put(
        "xl/workbook.xml",
        br#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    );
    put(
        "xl/_rels/workbook.xml.rels",
        br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#,
    );
    let mut sst = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount="{}">"#,
        strings.len()
    );
    for s in strings {
        sst.push_str("<si><t>");
        sst.push_str(s);
        sst.push_str("</t></si>");
    }
    sst.push_str("</sst>");
    put("xl/sharedStrings.xml", sst.as_bytes());
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, cell) in row.iter().enumerate() {
            let at = format!("{}{}", column(c), r + 1);
            match cell {
                C::S(i) => sheet.push_str(&format!(r#"<c r="{at}" t="s"><v>{i}</v></c>"#)),
                C::N(n) => sheet.push_str(&format!(r#"<c r="{at}"><v>{n}</v></c>"#)),
            }
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    put("xl/worksheets/sheet1.xml", sheet.as_bytes());
    z.finish().expect("finish").into_inner()
}

async fn import(
    w: &World,
    wb: &Workbook,
    o: ImportOptions,
) -> Result<crm_io::ImportOutcome, IoError> {
    crm_io::import_workbook(
        &w.crm,
        &w.admin,
        wb,
        o,
        &ReadOptions {
            sheet: None,
            lang: Lang::Zh,
        },
        &mut |_| {},
    )
    .await
}

/// One long shared string used by every row: the file is small, the text
/// its cells hold is not. The text limit refuses the sheet before the
/// import starts (no import is recorded), not after working through the
/// rows up to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_shared_string_in_every_row_is_refused_before_the_import_starts() {
    let rows = 4_000;
    let mut strings = vec!["产品名称".to_string(), "规格".into(), "标准价".into()];
    strings.push("长".repeat(32_000));
    strings.extend((0..rows).map(|i| format!("产品{i}")));
    let bytes = workbook(
        &strings,
        std::iter::once(vec![C::S(0), C::S(1), C::S(2)])
            .chain((0..rows).map(|i| vec![C::S(4 + i), C::S(3), C::N(10.0)])),
    );
    assert!(bytes.len() < 200_000, "{}", bytes.len());
    // 4 000 rows of 96 000 bytes: 384 MB of text, over a limit of 256 MiB.
    let lim = Limits {
        max_text_bytes: 256 << 20,
        ..Limits::default()
    };
    let wb = Workbook::from_bytes(bytes, lim).expect("opens");
    let w = world().await;
    for dry_run in [true, false] {
        let mut o = ImportOptions::new(Entity::Product);
        o.dry_run = dry_run;
        // No row is worked on: the refusal comes before the first batch.
        let mut rows_done = 0;
        let out = crm_io::import_workbook(
            &w.crm,
            &w.admin,
            &wb,
            o,
            &ReadOptions {
                sheet: None,
                lang: Lang::Zh,
            },
            &mut |p| rows_done = p.rows,
        )
        .await;
        assert_eq!(rows_done, 0);
        match out {
            Err(IoError::TooLarge { what, limit }) => {
                assert_eq!(
                    (what.as_str(), limit.as_str()),
                    ("the sheet", "268435456 bytes of text")
                )
            }
            other => panic!("expected the text limit, got {other:?}"),
        }
    }
    let imports = w.crm.list_imports(&w.admin).await.expect("imports");
    assert!(imports.is_empty(), "no import started: {imports:?}");
}

/// Cells far longer than their field takes (a 32 000-character
/// specification where 200 fit) reject their rows without the engine
/// working through their text; the error workbook gives them back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_longer_than_their_field_reject_their_rows_and_come_back_whole() {
    let rows = 500;
    let mut strings = vec!["产品名称".to_string(), "规格".into(), "标准价".into()];
    // Spaces and zero-width spaces early on: what is cut still holds more
    // than 200 characters once trimmed and cleaned.
    let spec = |i: usize| format!("规{}{}{i:05}", " \u{200B}".repeat(300), "规".repeat(31_000));
    strings.extend((0..rows).map(spec));
    strings.extend((0..rows).map(|i| format!("产品{i}")));
    let bytes = workbook(
        &strings,
        std::iter::once(vec![C::S(0), C::S(1), C::S(2)])
            .chain((0..rows).map(|i| vec![C::S(3 + rows + i), C::S(3 + i), C::N(10.0)])),
    );
    let wb = Workbook::from_bytes(bytes, Limits::default()).expect("opens");
    let w = world().await;
    let out = import(&w, &wb, ImportOptions::new(Entity::Product))
        .await
        .expect("import");
    let r = &out.report;
    assert_eq!((r.created, r.rejected), (0, rows as u64), "{:#?}", r.issues);
    for i in &r.issues {
        assert!(i.message_zh.contains("超过 200 个字符"), "{}", i.message_zh);
        assert!(
            i.message_en.contains("longer than 200 characters"),
            "{}",
            i.message_en
        );
    }
    let errors = Workbook::from_bytes(out.error_workbook.expect("errors"), Limits::default())
        .expect("readable");
    let mut specs = Vec::new();
    errors
        .read(None, |e| {
            if let SheetEvent::Row(r) = e {
                specs.push(r.cells[1].clone());
            }
            Ok(true)
        })
        .expect("read");
    assert_eq!(specs.len(), rows);
    for (i, s) in specs.iter().enumerate() {
        assert_eq!(s, &Cell::Text(spec(i)), "row {i} comes back whole");
    }
    let list = w
        .crm
        .list_records(&w.admin, Entity::Product, &ListQuery::default())
        .await;
    assert!(list.map(|l| l.items.is_empty()).unwrap_or(true));
}

/// An all-or-nothing import takes at most so many rows: its dry run
/// refuses a larger sheet as the import does, before any row is worked
/// on; in batches it goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_or_nothing_dry_run_refuses_more_rows_than_the_import_takes() {
    let rows = 12;
    let mut strings = vec!["客户名称".to_string()];
    strings.extend((0..rows).map(|i| format!("客户{i}有限公司")));
    let bytes = workbook(
        &strings,
        std::iter::once(vec![C::S(0)]).chain((0..rows).map(|i| vec![C::S(1 + i)])),
    );
    let wb = Workbook::from_bytes(bytes, Limits::default()).expect("opens");
    assert_eq!(wb.survey(None).expect("survey"), rows as u64);
    let w = world().await;
    for dry_run in [true, false] {
        let mut o = ImportOptions::new(Entity::Customer);
        o.atomic_max_rows = 10;
        o.dry_run = dry_run;
        let err = import(&w, &wb, o).await.expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("12 rows")
                && text.contains("at most 10 rows")
                && text.contains("nothing was written"),
            "{text}"
        );
    }
    assert!(
        w.crm
            .list_imports(&w.admin)
            .await
            .expect("imports")
            .is_empty()
    );
    let mut o = ImportOptions::new(Entity::Customer);
    o.atomic_max_rows = 12;
    o.dry_run = true;
    let out = import(&w, &wb, o).await.expect("12 rows fit");
    assert_eq!(out.report.created, 12);
    let mut o = ImportOptions::new(Entity::Customer);
    o.atomic_max_rows = 10;
    o.commit = CommitMode::Batches;
    let out = import(&w, &wb, o).await.expect("batches take more");
    assert_eq!(out.report.created, 12);
}
