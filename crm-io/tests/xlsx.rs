//! Workbook-level tests: templates, end-to-end imports with error
//! workbooks, hostile and broken files (built here), exports (types,
//! layout, scope) and formula injection. The engine-level behaviour of
//! imports runs in the conformance suite on both backends.

use crm_core::import::{CommitMode, DuplicatePolicy, ImportOptions, ImportStatus, IssueKind};
use crm_core::store::Store;
use crm_core::testing::service_suite::{World, fields};
use crm_core::{Entity, ListQuery};
use crm_io::{IoError, Lang, Limits, ReadOptions, SheetEvent, Workbook};
use rust_xlsxwriter::Workbook as Book;
use serde_json::json;
use std::io::{Cursor, Read, Write};
use std::sync::Arc;

async fn world() -> World {
    let store: Arc<dyn Store> =
        Arc::new(crm_store_sqlite::SqliteStore::open_in_memory().expect("store"));
    World::new(store).await
}

/// A workbook with one sheet of text rows (a header first).
fn book(rows: &[&[&str]]) -> Vec<u8> {
    let mut b = Book::new();
    let ws = b.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(r as u32, c as u16, *v).expect("write");
            }
        }
    }
    b.save_to_buffer().expect("save")
}

/// A zip part of a workbook as text.
fn part(bytes: &[u8], name: &str) -> String {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut s = String::new();
    z.by_name(name)
        .expect("part")
        .read_to_string(&mut s)
        .expect("read");
    s
}

/// The workbook with some parts replaced (or added).
fn rezip(bytes: &[u8], replace: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("part");
        let name = f.name().expect("name").to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read");
        let data = replace
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.clone())
            .unwrap_or(data);
        out.start_file(name, opts).expect("start");
        out.write_all(&data).expect("write");
    }
    for (n, d) in replace {
        if z.by_name(n).is_err() {
            out.start_file(*n, opts).expect("start");
            out.write_all(d).expect("write");
        }
    }
    out.finish().expect("finish").into_inner()
}

fn open(bytes: Vec<u8>) -> Result<Workbook, IoError> {
    Workbook::from_bytes(bytes, Limits::default())
}

fn events(wb: &Workbook) -> Result<Vec<SheetEvent>, IoError> {
    let mut out = Vec::new();
    wb.read(None, |e| {
        out.push(e);
        Ok(true)
    })?;
    Ok(out)
}

async fn import(
    w: &World,
    bytes: Vec<u8>,
    o: ImportOptions,
    lang: Lang,
) -> Result<crm_io::ImportOutcome, IoError> {
    let wb = open(bytes)?;
    crm_io::import_workbook(
        &w.crm,
        &w.admin,
        &wb,
        o,
        &ReadOptions { sheet: None, lang },
        &mut |_| {},
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_lists_required_columns_options_and_instructions() {
    let w = world().await;
    let bytes = crm_io::template(&w.crm, &w.admin, Entity::Customer, Lang::Zh, 2)
        .await
        .expect("template");
    let wb = open(bytes.clone()).expect("readable");
    assert_eq!(wb.sheet_names(), ["导入数据", "示例", "填写说明"]);
    let ev = events(&wb).expect("read");
    let SheetEvent::Header { cells: h, .. } = &ev[0] else {
        panic!("no header")
    };
    assert!(h.contains(&"客户名称*".to_string()), "{h:?}");
    assert!(h.contains(&"联系人1姓名*".to_string()), "{h:?}");
    assert!(h.contains(&"联系人2手机".to_string()), "{h:?}");
    assert!(h.contains(&"客户级别".to_string()));
    assert_eq!(ev.len(), 1, "the data sheet holds no sample row");
    let sheet1 = part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(sheet1.contains("<dataValidation"), "drop-down lists");
    assert!(sheet1.contains("&quot;A,B,C,D&quot;") || sheet1.contains("\"A,B,C,D\""));
    assert!(sheet1.contains("<pane"), "frozen header");
    let example = wb.read(Some("示例"), |e| {
        if let SheetEvent::Row(r) = e {
            assert_eq!(r.number, 2);
        }
        Ok(true)
    });
    assert!(example.is_ok());
    // The English template's example row imports as is.
    let en = crm_io::template(&w.crm, &w.admin, Entity::Customer, Lang::En, 1)
        .await
        .expect("template");
    let wb = open(en).expect("readable");
    assert_eq!(wb.sheet_names()[0], "Data");
    let out = crm_io::import_workbook(
        &w.crm,
        &w.admin,
        &wb,
        ImportOptions::new(Entity::Customer),
        &ReadOptions {
            sheet: Some("Example".into()),
            lang: Lang::En,
        },
        &mut |_| {},
    )
    .await
    .expect("import the example");
    assert_eq!(
        (out.report.created, out.report.contacts_created),
        (1, 1),
        "{:#?}",
        out.report.issues
    );
    for e in [Entity::Contact, Entity::User] {
        let b = crm_io::template(&w.crm, &w.admin, e, Lang::Zh, 0)
            .await
            .expect("template");
        assert!(open(b).is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_come_back_in_an_error_workbook_that_reimports() {
    let w = world().await;
    let mut b = Book::new();
    let ws = b.add_worksheet();
    let heads = [
        "客户名称",
        "电话",
        "下次跟进日期",
        "联系人1姓名",
        "联系人1手机",
    ];
    for (c, h) in heads.iter().enumerate() {
        ws.write_string(0, c as u16, *h).expect("h");
    }
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    ws.write_string(1, 0, "正常科技有限公司").expect("w");
    ws.write_string(1, 1, "010-62345678").expect("w");
    ws.write_datetime_with_format(
        1,
        2,
        chrono::NaiveDate::from_ymd_opt(2026, 12, 3).expect("d"),
        &date,
    )
    .expect("w");
    ws.write_string(1, 3, "张伟").expect("w");
    ws.write_number(1, 4, 13812345678.0).expect("w");
    ws.write_string(2, 0, "坏电话有限公司").expect("w");
    ws.write_string(2, 1, "1234").expect("w");
    ws.write_string(3, 0, "=HYPERLINK(\"http://evil\")")
        .expect("w");
    ws.write_string(3, 1, "1").expect("w");
    let out = import(
        &w,
        b.save_to_buffer().expect("save"),
        ImportOptions::new(Entity::Customer),
        Lang::Zh,
    )
    .await
    .expect("import");
    assert_eq!((out.report.created, out.report.rejected), (1, 2));
    let ok = w
        .crm
        .list_records(&w.admin, Entity::Customer, &ListQuery::default())
        .await
        .expect("list");
    assert_eq!(ok.items[0].text("next_follow_up"), Some("2026-12-03"));
    let errors = out.error_workbook.expect("error workbook");
    let wb = open(errors.clone()).expect("readable");
    let ev = events(&wb).expect("read");
    let SheetEvent::Header { cells: h, .. } = &ev[0] else {
        panic!("header")
    };
    assert_eq!(h[..5], heads.map(String::from));
    assert_eq!(h[5..], ["原行号".to_string(), "错误原因".to_string()]);
    let SheetEvent::Row(r) = &ev[1] else {
        panic!("row")
    };
    assert_eq!(r.cells[0].to_text().as_deref(), Some("坏电话有限公司"));
    assert_eq!(r.cells[5].to_text().as_deref(), Some("3"));
    let why = r.cells[6].to_text().unwrap_or_default();
    assert!(why.contains("电话"), "{why}");
    // The formula-like name stays text in the error workbook too.
    let xml = part(&errors, "xl/worksheets/sheet1.xml");
    assert!(!xml.contains("<f>"), "{xml}");
    // Fixing the rows in the error workbook and importing it again works:
    // its extra columns are ignored.
    let fixed = book(&[
        &[
            "客户名称",
            "电话",
            "下次跟进日期",
            "联系人1姓名",
            "联系人1手机",
            "原行号",
            "错误原因",
        ],
        &["坏电话有限公司", "010-62345679", "", "", "", "3", "电话：…"],
    ]);
    let again = import(&w, fixed, ImportOptions::new(Entity::Customer), Lang::Zh)
        .await
        .expect("reimport");
    assert_eq!(again.report.created, 1, "{:#?}", again.report.issues);
    assert!(again.error_workbook.is_none());
    assert_eq!(again.report.ignored_columns, ["原行号", "错误原因"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_policy_with_batches_writes_nothing_when_the_file_has_duplicates() {
    let w = world().await;
    w.customer(&w.admin, "已有客户有限公司", json!({})).await;
    let rows: Vec<Vec<String>> = (0..5)
        .map(|i| vec![format!("客户{i}有限公司")])
        .chain([vec!["已有客户有限公司".to_string()]])
        .collect();
    let mut all: Vec<&[String]> = vec![];
    let head = vec!["客户名称".to_string()];
    all.push(&head);
    for r in &rows {
        all.push(r);
    }
    let strs: Vec<Vec<&str>> = all
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let refs: Vec<&[&str]> = strs.iter().map(Vec::as_slice).collect();
    let mut o = ImportOptions::new(Entity::Customer);
    o.policy = DuplicatePolicy::Fail;
    o.commit = CommitMode::Batches;
    o.batch_size = 2;
    let out = import(&w, book(&refs), o, Lang::En).await.expect("import");
    assert_eq!(out.report.status, ImportStatus::Failed);
    let list = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &ListQuery::default().with_total(),
        )
        .await
        .expect("list");
    assert_eq!(list.total, Some(1), "nothing imported");
    assert!(out.error_workbook.is_some());
    // The report says so: its dry run's rows before the duplicate are not
    // counted as created.
    assert_eq!(
        (out.report.created, out.report.dry_run, out.report.import_id),
        (0, false, None)
    );
}

/// Under the fail policy the error workbook holds every duplicate row: a
/// repeat within the file does not hide a row repeating a stored customer
/// (the batched import's dry run checks the store for every row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_policy_error_workbook_lists_every_duplicate_row() {
    let w = world().await;
    w.customer(&w.admin, "已有客户有限公司", json!({})).await;
    for commit in [CommitMode::Batches, CommitMode::Atomic] {
        let bytes = book(&[
            &["客户名称", "备注"],
            &["文件内重复公司", "a"],
            &["文件内重复公司", "b"],
            &["已有客户有限公司", "existing"],
        ]);
        let mut o = ImportOptions::new(Entity::Customer);
        o.policy = DuplicatePolicy::Fail;
        o.commit = commit;
        o.batch_size = 2;
        let out = import(&w, bytes, o, Lang::Zh).await.expect("import");
        assert_eq!(out.report.status, ImportStatus::Failed, "{commit:?}");
        let kinds: Vec<(u32, IssueKind)> =
            out.report.issues.iter().map(|i| (i.row, i.kind)).collect();
        assert_eq!(
            kinds,
            [(3, IssueKind::DuplicateInFile), (4, IssueKind::Duplicate)],
            "{commit:?}"
        );
        let wb = open(out.error_workbook.expect("error workbook")).expect("readable");
        let rows: Vec<(Option<String>, Option<String>)> = events(&wb)
            .expect("read")
            .iter()
            .filter_map(|e| match e {
                SheetEvent::Row(r) => Some((r.cells[0].to_text(), r.cells[2].to_text())),
                SheetEvent::Header { .. } | SheetEvent::Original { .. } => None,
            })
            .collect();
        assert_eq!(
            rows,
            [
                (Some("文件内重复公司".to_string()), Some("3".to_string())),
                (Some("已有客户有限公司".to_string()), Some("4".to_string())),
            ],
            "{commit:?}"
        );
    }
    let list = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &ListQuery::default().with_total(),
        )
        .await
        .expect("list");
    assert_eq!(list.total, Some(1), "nothing imported");
}

/// A workbook whose sheets (name, rows of one customer name each, under
/// the header 客户名称) are given.
fn sheets(sheets: &[(&str, Vec<String>)]) -> Vec<u8> {
    let mut b = Book::new();
    for (name, rows) in sheets {
        let ws = b.add_worksheet();
        ws.set_name(*name).expect("name");
        ws.write_string(0, 0, "客户名称").expect("write");
        for (r, v) in rows.iter().enumerate() {
            ws.write_string(r as u32 + 1, 0, v).expect("write");
        }
    }
    b.save_to_buffer().expect("save")
}

/// Runs `o`'s batched import of `bytes` (the sheet `sheet`) like
/// `import_workbook` would, pushes its first `upto` rows and drops it
/// unfinished, as a crash leaves it. Returns the import's id.
async fn interrupt(
    w: &World,
    bytes: &[u8],
    sheet: &str,
    o: &ImportOptions,
    upto: usize,
) -> crm_core::Uuid {
    let wb = open(bytes.to_vec()).expect("open");
    let ev = {
        let mut out = Vec::new();
        wb.read(Some(sheet), |e| {
            out.push(e);
            Ok(true)
        })
        .expect("read");
        out
    };
    let rows: Vec<crm_core::import::SheetRow> = ev
        .into_iter()
        .filter_map(|e| match e {
            SheetEvent::Row(r) => Some(r),
            SheetEvent::Header { .. } | SheetEvent::Original { .. } => None,
        })
        .take(upto)
        .collect();
    let mut o = o.clone();
    o.file_hash = crm_io::file_digest(bytes);
    o.sheet = Some(sheet.to_string());
    let mut s = w
        .crm
        .begin_import(&w.admin, o, &["客户名称".to_string()])
        .await
        .expect("begin");
    s.push(&rows).await.expect("first rows");
    s.import_id()
}

async fn import_sheet(
    w: &World,
    bytes: Vec<u8>,
    sheet: &str,
    o: ImportOptions,
) -> crm_io::ImportOutcome {
    let wb = open(bytes).expect("open");
    crm_io::import_workbook(
        &w.crm,
        &w.admin,
        &wb,
        o,
        &ReadOptions {
            sheet: Some(sheet.to_string()),
            lang: Lang::En,
        },
        &mut |_| {},
    )
    .await
    .expect("import")
}

/// An interrupted batched import under the fail policy is resumed by
/// importing the file again: the dry run that goes first checks only the
/// rows after the checkpoint (the rows the earlier run committed are no
/// duplicates). When a row after it is a duplicate, the import fails and
/// its report counts what the earlier run wrote — and nothing more — under
/// that import's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_fail_policy_import_resumes_and_reports_what_stays() {
    let w = world().await;
    let names: Vec<String> = (0..6).map(|i| format!("续传{i}有限公司")).collect();
    let bytes = sheets(&[("Sheet1", names.clone())]);
    let mut o = ImportOptions::new(Entity::Customer);
    o.policy = DuplicatePolicy::Fail;
    o.commit = CommitMode::Batches;
    o.batch_size = 2;
    let id = interrupt(&w, &bytes, "Sheet1", &o, 2).await;
    let out = import_sheet(&w, bytes, "Sheet1", o.clone()).await;
    let r = &out.report;
    assert_eq!(r.status, ImportStatus::Done, "{:#?}", r.issues);
    assert_eq!((r.resumed_after, r.import_id), (Some(3), Some(id)));
    assert_eq!((r.rows, r.created), (6, 6));
    let customers = |w: &World| {
        let crm = w.crm.clone();
        let admin = w.admin.clone();
        async move {
            crm.list_records(&admin, Entity::Customer, &ListQuery::default().with_total())
                .await
                .expect("list")
                .total
        }
    };
    assert_eq!(customers(&w).await, Some(6));
    // Interrupted again, with a duplicate (saved meanwhile) after the
    // checkpoint: fails, and says what the first rows wrote.
    let names: Vec<String> = (0..5).map(|i| format!("再续{i}有限公司")).collect();
    let bytes = sheets(&[("Sheet1", names)]);
    let id = interrupt(&w, &bytes, "Sheet1", &o, 2).await;
    w.customer(&w.admin, "再续3有限公司", json!({})).await;
    let out = import_sheet(&w, bytes, "Sheet1", o).await;
    let r = &out.report;
    assert_eq!(r.status, ImportStatus::Failed);
    assert_eq!(
        (r.created, r.rejected, r.dry_run, r.import_id),
        (2, 1, false, Some(id)),
        "{:#?}",
        r.issues
    );
    assert_eq!(
        customers(&w).await,
        Some(6 + 2 + 1),
        "nothing more is written"
    );
}

/// The run that resumes an interrupted batched import returns an error
/// workbook with every row of the file not imported: the rows that the
/// batches committed before the interruption skipped come back too, with
/// their cells and reasons, in sheet order before this run's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_import_returns_the_rows_earlier_batches_skipped() {
    let w = world().await;
    w.customer(&w.admin, "已有客户有限公司", json!({})).await;
    let names: Vec<String> = [
        "已有客户有限公司",
        "续一有限公司",
        "续一有限公司",
        "续二有限公司",
        "续三有限公司",
        "已有客户有限公司",
    ]
    .map(String::from)
    .to_vec();
    let bytes = sheets(&[("Sheet1", names)]);
    let mut o = ImportOptions::new(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.batch_size = 2;
    let id = interrupt(&w, &bytes, "Sheet1", &o, 3).await;
    let out = import_sheet(&w, bytes, "Sheet1", o).await;
    let r = &out.report;
    assert_eq!((r.resumed_after, r.import_id), (Some(4), Some(id)));
    assert_eq!((r.created, r.skipped), (3, 3), "{:#?}", r.issues);
    let errors = out.error_workbook.expect("error workbook");
    let ev = events(&open(errors).expect("readable")).expect("read");
    let listed: Vec<(String, String)> = ev
        .iter()
        .filter_map(|e| match e {
            SheetEvent::Row(r) => Some((
                r.cells[0].to_text().unwrap_or_default(),
                r.cells[1].to_text().unwrap_or_default(),
            )),
            SheetEvent::Header { .. } | SheetEvent::Original { .. } => None,
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("已有客户有限公司".to_string(), "2".to_string()),
            ("续一有限公司".to_string(), "4".to_string()),
            ("已有客户有限公司".to_string(), "7".to_string()),
        ]
    );
}

/// Another sheet of a file whose first sheet's import was interrupted is
/// a new import: its first rows are imported, not skipped as if they were
/// the first sheet's committed rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sheet_of_an_interrupted_file_is_a_new_import() {
    let w = world().await;
    let north: Vec<String> = (0..5).map(|i| format!("华北{i}有限公司")).collect();
    let south: Vec<String> = (0..5).map(|i| format!("华南{i}有限公司")).collect();
    let bytes = sheets(&[("华北", north), ("华南", south)]);
    let mut o = ImportOptions::new(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.batch_size = 2;
    let id = interrupt(&w, &bytes, "华北", &o, 4).await;
    let out = import_sheet(&w, bytes.clone(), "华南", o.clone()).await;
    let r = &out.report;
    assert_eq!(r.resumed_after, None);
    assert_ne!(r.import_id, Some(id));
    assert_eq!((r.rows, r.created), (5, 5), "{:#?}", r.issues);
    // The first sheet still resumes.
    let out = import_sheet(&w, bytes, "华北", o).await;
    assert_eq!((out.report.resumed_after, out.report.created), (Some(5), 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_at_xfd1048576_is_refused_without_allocating_the_sheet() {
    let mut b = Book::new();
    let ws = b.add_worksheet();
    ws.write_string(0, 0, "客户名称").expect("w");
    ws.write_string(1_048_575, 16_383, "far away").expect("w");
    let bytes = b.save_to_buffer().expect("save");
    assert!(
        part(&bytes, "xl/worksheets/sheet1.xml").contains("A1:XFD1048576"),
        "the sheet declares the whole grid"
    );
    let start = std::time::Instant::now();
    let wb = open(bytes.clone()).expect("opens");
    match events(&wb) {
        Err(IoError::TooLarge { what, .. }) => assert!(what.contains("XFD1048576"), "{what}"),
        other => panic!("expected the column limit, got {other:?}"),
    }
    // Even with the limits opened wide, only the cells present cost memory.
    let wide = Limits {
        max_columns: 16_384,
        ..Limits::default()
    };
    let wb = Workbook::from_bytes(bytes, wide).expect("opens");
    let ev = events(&wb).expect("reads");
    assert_eq!(ev.len(), 2);
    match &ev[1] {
        SheetEvent::Row(r) => {
            assert_eq!(r.number, 1_048_576);
            // Right of the header: the row runs on to the cell (within
            // the column limit), which stays in it.
            assert_eq!(r.cells.len(), 16_384);
            assert_eq!(
                r.cells[16_383],
                crm_core::import::Cell::Text("far away".into())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_bomb_is_refused_by_counting_what_decompresses() {
    let base = book(&[&["客户名称"], &["甲有限公司"]]);
    // 64 MiB of whitespace inside the sheet compresses to a few dozen KiB;
    // the zip still declares it honestly here, but the count does not rely
    // on that.
    let mut sheet = part(&base, "xl/worksheets/sheet1.xml").into_bytes();
    let pos = sheet
        .windows(11)
        .position(|w| w == b"<sheetData>")
        .expect("sheetData");
    let mut bomb = sheet[..pos].to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 64 << 20));
    bomb.extend_from_slice(&sheet.split_off(pos));
    let bytes = rezip(&base, &[("xl/worksheets/sheet1.xml", bomb)]);
    assert!(bytes.len() < 1 << 20, "compressed {} bytes", bytes.len());
    let small = Limits {
        max_part_bytes: 16 << 20,
        ..Limits::default()
    };
    match Workbook::from_bytes(bytes.clone(), small) {
        Err(IoError::TooLarge { what, .. }) => assert!(what.contains("sheet1.xml"), "{what}"),
        other => panic!("expected a size limit, got {other:?}"),
    }
    let total = Limits {
        max_total_bytes: 8 << 20,
        ..Limits::default()
    };
    assert!(matches!(
        Workbook::from_bytes(bytes.clone(), total),
        Err(IoError::TooLarge { .. })
    ));
    let file = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    assert!(matches!(
        Workbook::from_bytes(bytes, file),
        Err(IoError::TooLarge { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_shared_strings_are_refused_before_calamine_reserves_them() {
    let base = book(&[&["客户名称"], &["甲有限公司"]]);
    let sst = part(&base, "xl/sharedStrings.xml");
    let lying = sst.replacen("uniqueCount=\"2\"", "uniqueCount=\"4000000000\"", 1);
    assert_ne!(lying, sst);
    let bytes = rezip(&base, &[("xl/sharedStrings.xml", lying.into_bytes())]);
    match open(bytes) {
        Err(IoError::TooLarge { what, .. }) => assert!(what.contains("shared strings"), "{what}"),
        other => panic!("expected the shared string limit, got {other:?}"),
    }
    // Many real strings: over a small limit on the part.
    let mut b = Book::new();
    let ws = b.add_worksheet();
    ws.write_string(0, 0, "客户名称").expect("w");
    for r in 1..3000u32 {
        ws.write_string(r, 0, format!("{r}{}", "长".repeat(300)))
            .expect("w");
    }
    let bytes = b.save_to_buffer().expect("save");
    let lim = Limits {
        max_part_bytes: 1 << 20,
        ..Limits::default()
    };
    assert!(matches!(
        Workbook::from_bytes(bytes, lim),
        Err(IoError::TooLarge { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_foreign_files_get_a_clear_error() {
    assert!(matches!(
        open("name,phone\n华为,0755\n".as_bytes().to_vec()),
        Err(IoError::NotExcel(_))
    ));
    let mut xls = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    xls.extend([0u8; 512]);
    match open(xls) {
        Err(e @ IoError::Unsupported(_)) => {
            assert!(e.to_string().contains(".xls"), "{e}");
            assert!(e.message_zh().contains("xlsx"));
        }
        other => panic!("{other:?}"),
    }
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    z.start_file("hello.txt", zip::write::SimpleFileOptions::default())
        .expect("start");
    z.write_all(b"hi").expect("write");
    let not_xlsx = z.finish().expect("finish").into_inner();
    assert!(matches!(open(not_xlsx), Err(IoError::NotExcel(_))));
    let good = book(&[&["客户名称"]]);
    let truncated = good[..good.len() / 2].to_vec();
    assert!(matches!(
        open(truncated),
        Err(IoError::NotExcel(_) | IoError::Broken(_))
    ));
    let broken_xml = rezip(
        &good,
        &[(
            "xl/worksheets/sheet1.xml",
            b"<worksheet><sheetData><row".to_vec(),
        )],
    );
    let wb = open(broken_xml).expect("the zip is fine");
    assert!(matches!(events(&wb), Err(IoError::Broken(_))));
    let wb = open(good).expect("ok");
    match wb.resolve_sheet(Some("客户")) {
        Err(e @ IoError::NoSheet { .. }) => assert!(e.to_string().contains("Sheet1"), "{e}"),
        other => panic!("{other:?}"),
    }
    let empty = {
        let mut b = Book::new();
        b.add_worksheet();
        b.save_to_buffer().expect("save")
    };
    assert!(matches!(
        events(&open(empty).expect("ok")),
        Err(IoError::Empty(_))
    ));
    let w = world().await;
    let err = import(
        &w,
        book(&[&["电话"], &["010-62345678"]]),
        ImportOptions::new(Entity::Customer),
        Lang::Zh,
    )
    .await
    .expect_err("no name column");
    assert!(err.to_string().contains("客户名称"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_and_cells_over_the_limits_are_refused() {
    let mut rows: Vec<Vec<String>> = vec![vec!["客户名称".into()]];
    for i in 0..20 {
        rows.push(vec![format!("客户{i}")]);
    }
    let strs: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let refs: Vec<&[&str]> = strs.iter().map(Vec::as_slice).collect();
    let bytes = book(&refs);
    let few_rows = Limits {
        max_rows: 10,
        ..Limits::default()
    };
    let wb = Workbook::from_bytes(bytes.clone(), few_rows).expect("opens");
    assert!(matches!(events(&wb), Err(IoError::TooLarge { .. })));
    let few_cells = Limits {
        max_cells: 5,
        ..Limits::default()
    };
    let wb = Workbook::from_bytes(bytes, few_cells).expect("opens");
    assert!(matches!(events(&wb), Err(IoError::TooLarge { .. })));
    let long = book(&[&["客户名称"], &[&"长".repeat(200)]]);
    let short_cells = Limits {
        max_cell_chars: 100,
        ..Limits::default()
    };
    let wb = Workbook::from_bytes(long, short_cells).expect("opens");
    assert!(matches!(events(&wb), Err(IoError::TooLarge { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_typed_laid_out_scoped_and_free_of_formulas() {
    let w = world().await;
    let hostile = [
        "=HYPERLINK(\"http://evil\",\"x\")",
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tcmd",
        "\rline",
        "\nline",
    ];
    for (i, h) in hostile.iter().enumerate() {
        w.crm
            .create_record(
                &w.zhangsan,
                Entity::Customer,
                fields(json!({
                    "name": format!("客户{i}有限公司"),
                    "notes": h,
                    "next_follow_up": "2026-12-01",
                })),
            )
            .await
            .expect("customer");
    }
    w.customer(&w.wangwu, "王五的客户有限公司", json!({"notes": "=1+1"}))
        .await;
    // Headers can be custom fields' labels.
    let label = "=HYPERLINK(\"http://evil\",\"label\")";
    w.crm
        .define_custom_field(
            &w.admin,
            crm_core::custom::NewCustomField {
                entity: Entity::Customer,
                key: "evil".into(),
                label: label.into(),
                label_en: Some("@LABEL".into()),
                field_type: crm_core::custom::CustomFieldType::Text,
                options: vec![],
                required: false,
                unique: false,
            },
        )
        .await
        .expect("custom field");
    let mut out = Cursor::new(Vec::new());
    let n = crm_io::export(
        &w.crm,
        &w.zhangsan,
        Entity::Customer,
        ListQuery::default(),
        &[
            "编号".into(),
            "客户名称".into(),
            "备注".into(),
            "下次跟进日期".into(),
        ],
        Lang::Zh,
        &mut out,
        &mut |_| {},
    )
    .await
    .expect("export");
    assert_eq!(n, 7, "only what zhangsan may see");
    let bytes = out.into_inner();
    let sheet = part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains("<autoFilter ref=\"A1:D8\""), "{sheet}");
    assert!(sheet.contains("<pane") && sheet.contains("ySplit=\"1\""));
    assert!(sheet.contains("<cols>"), "column widths");
    // Every hostile text is in a cell whose style has the quote prefix.
    assert_quoted(&bytes, &["=HYPERLINK", "+1+1", "-2+3", "@SUM"]);
    // Read back: dates are dates, the header Chinese.
    let wb = open(bytes).expect("readable");
    let ev = events(&wb).expect("read");
    let SheetEvent::Header { cells: h, .. } = &ev[0] else {
        panic!("header")
    };
    assert_eq!(h, &["编号", "客户名称", "备注", "下次跟进日期"]);
    let SheetEvent::Row(r) = &ev[1] else {
        panic!("row")
    };
    assert_eq!(
        r.cells[3],
        crm_core::import::Cell::Date(chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("d"))
    );
    // English headers; hidden fields cannot be picked; no permission, no export.
    let mut out = Cursor::new(Vec::new());
    crm_io::export(
        &w.crm,
        &w.admin,
        Entity::Customer,
        ListQuery::default(),
        &[],
        Lang::En,
        &mut out,
        &mut |_| {},
    )
    .await
    .expect("export");
    let bytes = out.into_inner();
    let wb = open(bytes.clone()).expect("readable");
    let ev = events(&wb).expect("read");
    assert_eq!(ev.len(), 9);
    let SheetEvent::Header { cells: h, .. } = &ev[0] else {
        panic!("header")
    };
    assert_eq!(h[0], "Code");
    assert!(h.contains(&"Name".to_string()));
    // Headers get the quote prefix too: in exports, templates and error
    // workbooks (whose headers are the imported file's).
    assert!(h.contains(&"@LABEL".to_string()), "{h:?}");
    assert_quoted(&bytes, &["@LABEL"]);
    let template = crm_io::template(&w.crm, &w.admin, Entity::Customer, Lang::Zh, 1)
        .await
        .expect("template");
    assert_quoted(&template, &[label]);
    let out = import(
        &w,
        book(&[
            &["客户名称", "电话", "+HEADER"],
            &["坏电话有限公司", "1234", "x"],
        ]),
        ImportOptions::new(Entity::Customer),
        Lang::Zh,
    )
    .await
    .expect("import");
    assert_quoted(&out.error_workbook.expect("error workbook"), &["+HEADER"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_and_users_import_from_files() {
    let w = world().await;
    let c = w.customer(&w.admin, "华为技术有限公司", json!({})).await;
    let code = c.code.clone().unwrap_or_default();
    let out = import(
        &w,
        book(&[
            &["Customer", "Name", "Mobile"],
            &[&code, "张伟", "13812345678"],
            &["华为技术有限公司", "李娜", "13912345678"],
        ]),
        ImportOptions::new(Entity::Contact),
        Lang::En,
    )
    .await
    .expect("contacts");
    assert_eq!(out.report.created, 2, "{:#?}", out.report.issues);
    let out = import(
        &w,
        book(&[
            &["用户名", "姓名", "部门", "角色"],
            &["xiaoming", "小明", "销售一组", "销售"],
            &["zhangsan", "张三", "", ""],
        ]),
        ImportOptions::new(Entity::User),
        Lang::Zh,
    )
    .await
    .expect("users");
    assert_eq!((out.report.created, out.report.skipped), (1, 1));
    let skipped = out.error_workbook.expect("skipped rows are reported");
    let ev = events(&open(skipped).expect("ok")).expect("read");
    let SheetEvent::Row(r) = &ev[1] else {
        panic!("row")
    };
    assert!(
        r.cells[5].to_text().unwrap_or_default().contains("已跳过"),
        "{:?}",
        r.cells
    );
}

/// Batches are committed while the next one is prepared: rows meeting
/// records that an earlier batch creates or updates are still caught, codes
/// follow the rows in order, and undo takes everything back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_see_what_earlier_batches_write() {
    let w = world().await;
    let old = w
        .customer(&w.admin, "老客户有限公司", json!({"phone": "010-62345678"}))
        .await;
    let rows: &[&[&str]] = &[
        &["客户名称", "电话"],
        &["甲一有限公司", ""],
        &["甲二有限公司", ""],
        // Batch 2: repeats a customer batch 1 creates; updates the old one.
        &["甲一有限公司", ""],
        &["老客户有限公司", "010-62345679"],
        // Batch 3: the old customer again (already updated by row 5).
        &["老客户有限公司", "010-62345670"],
        &["甲三有限公司", ""],
        &["甲四有限公司", ""],
    ];
    let mut o = ImportOptions::new(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    o.commit = CommitMode::Batches;
    o.batch_size = 2;
    let out = import(&w, book(rows), o, Lang::En).await.expect("import");
    let r = &out.report;
    assert_eq!(
        (r.created, r.updated, r.rejected),
        (4, 1, 2),
        "{:#?}",
        r.issues
    );
    let kinds: Vec<(u32, IssueKind)> = r.issues.iter().map(|i| (i.row, i.kind)).collect();
    assert_eq!(
        kinds,
        [
            (4, IssueKind::DuplicateInFile),
            (6, IssueKind::DuplicateInFile)
        ]
    );
    let list = w
        .crm
        .list_records(&w.admin, Entity::Customer, &ListQuery::default())
        .await
        .expect("list");
    let code_of = |name: &str| -> String {
        list.items
            .iter()
            .find(|c| c.text("name") == Some(name))
            .and_then(|c| c.code.clone())
            .unwrap_or_else(|| panic!("{name} has a code"))
    };
    // The old customer took number 1; the import's follow in row order.
    let codes: Vec<String> = [
        "甲一有限公司",
        "甲二有限公司",
        "甲三有限公司",
        "甲四有限公司",
    ]
    .iter()
    .map(|n| code_of(n))
    .collect();
    let numbers: Vec<u32> = codes
        .iter()
        .map(|c| {
            c.rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("number")
        })
        .collect();
    assert_eq!(numbers, [2, 3, 4, 5], "{codes:?}");
    let updated = list
        .items
        .iter()
        .find(|c| c.id == old.id)
        .expect("old customer");
    assert_eq!(updated.text("phone"), Some("010-62345679"));
    let undo = w
        .crm
        .undo_import(&w.admin, r.import_id.expect("import id"))
        .await
        .expect("undo");
    assert_eq!((undo.removed, undo.restored), (4, 1));
    let after = w
        .crm
        .list_records(&w.admin, Entity::Customer, &ListQuery::default())
        .await
        .expect("list");
    assert_eq!(after.items.len(), 1);
    assert_eq!(after.items[0].text("phone"), Some("010-62345678"));
}

/// Imports `n` customers (names from `stem`) in batches of `batch_size`:
/// how many were created, and the progress reports.
async fn import_names(stem: &str, n: usize, batch_size: usize) -> (u64, Vec<u64>) {
    let w = world().await;
    let rows: Vec<Vec<String>> = (0..n).map(|i| vec![format!("{stem}{i}有限公司")]).collect();
    let mut sheet: Vec<Vec<&str>> = vec![vec!["客户名称"]];
    sheet.extend(rows.iter().map(|r| vec![r[0].as_str()]));
    let refs: Vec<&[&str]> = sheet.iter().map(Vec::as_slice).collect();
    let wb = open(book(&refs)).expect("opens");
    let mut o = ImportOptions::new(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.batch_size = batch_size;
    let mut seen = Vec::new();
    let out = crm_io::import_workbook(
        &w.crm,
        &w.admin,
        &wb,
        o,
        &ReadOptions::default(),
        &mut |p| seen.push(p.rows),
    )
    .await
    .expect("import");
    (out.report.created, seen)
}

/// Progress counts rows once their batch is written: after the last report
/// every row of the sheet is in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_counts_written_rows() {
    let (created, seen) = import_names("进度", 5, 2).await;
    assert_eq!(created, 5);
    assert_eq!(seen, [2, 4, 5]);
}

/// The first batches are smaller, so the importer and the store's writer
/// start sooner: 250 rows, 500, then the batch size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_batches_are_small_and_double() {
    let (created, seen) = import_names("批次", 1800, 600).await;
    assert_eq!(created, 1800);
    assert_eq!(seen, [250, 750, 1350, 1800]);
}

/// The workbook with one part renamed (its content kept).
fn rename_part(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("part");
        let name = f.name().expect("name").to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read");
        out.start_file(if name == from { to } else { &name }, opts)
            .expect("start");
        out.write_all(&data).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

/// The number of UTF-16 units of a text, as Excel counts its length.
fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Asserts that the first sheet holds no formula and that every cell
/// holding one of `texts` (inline or shared) has a style with the quote
/// prefix, so it stays text even when edited.
fn assert_quoted(bytes: &[u8], texts: &[&str]) {
    let sheet = part(bytes, "xl/worksheets/sheet1.xml");
    assert!(
        !sheet.contains("<f>") && !sheet.contains("<f "),
        "no formula"
    );
    let styles = part(bytes, "xl/styles.xml");
    let quoted: Vec<usize> = styles
        .split("<cellXfs")
        .nth(1)
        .and_then(|s| s.split("</cellXfs>").next())
        .expect("cellXfs")
        .split("<xf ")
        .skip(1)
        .enumerate()
        .filter(|(_, x)| x.contains("quotePrefix=\"1\""))
        .map(|(i, _)| i)
        .collect();
    let shared: Vec<String> = zip::ZipArchive::new(Cursor::new(bytes))
        .expect("zip")
        .by_name("xl/sharedStrings.xml")
        .is_ok()
        .then(|| part(bytes, "xl/sharedStrings.xml"))
        .map(|s| s.split("<si>").skip(1).map(str::to_string).collect())
        .unwrap_or_default();
    let cells: Vec<&str> = sheet.split("<c ").skip(1).collect();
    for t in texts {
        let escaped = t.replace('"', "&quot;");
        let found = |s: &str| s.contains(t) || s.contains(&escaped);
        let index = shared.iter().position(|s| found(s));
        let cell = cells
            .iter()
            .find(|c| match index {
                Some(i) => c.contains("t=\"s\"") && c.contains(&format!("<v>{i}</v>")),
                None => found(c),
            })
            .unwrap_or_else(|| panic!("{t} not found"));
        let style: usize = cell
            .split("s=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{t} has no style: {cell}"));
        assert!(quoted.contains(&style), "{t} is not quote-prefixed");
    }
}

/// A date-formatted cell far outside Excel's dates made calamine (chrono)
/// panic on the reader thread, and the import ended as done with the rows
/// read so far. Now such a cell is a bad value of its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_cell_outside_excels_dates_rejects_its_row_not_the_rest() {
    let mut b = Book::new();
    let ws = b.add_worksheet();
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    ws.write_string(0, 0, "客户名称").expect("w");
    ws.write_string(0, 1, "下次跟进日期").expect("w");
    let rows = [
        ("甲有限公司", 46_357.0),
        ("乙有限公司", 11_111.0),
        ("丙有限公司", 22_222.0),
        ("丁有限公司", 46_358.0),
    ];
    for (r, (name, serial)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        ws.write_string(r, 0, *name).expect("w");
        ws.write_number_with_format(r, 1, *serial, &date)
            .expect("w");
    }
    let base = b.save_to_buffer().expect("save");
    let sheet = part(&base, "xl/worksheets/sheet1.xml");
    let hostile = sheet.replacen("<v>11111</v>", "<v>-1E+12</v>", 1).replacen(
        "<v>22222</v>",
        "<v>1E+300</v>",
        1,
    );
    assert_eq!(hostile.matches("E+").count(), 2);
    let bytes = rezip(&base, &[("xl/worksheets/sheet1.xml", hostile.into_bytes())]);
    let ev = events(&open(bytes.clone()).expect("opens")).expect("reads");
    let SheetEvent::Row(r) = &ev[2] else {
        panic!("row")
    };
    // Beyond Excel's dates (shown as `#####`): the number as stored.
    assert_eq!(r.cells[1], crm_core::import::Cell::Number(-1e12));
    for commit in [CommitMode::Atomic, CommitMode::Batches] {
        let w = world().await;
        let mut o = ImportOptions::new(Entity::Customer);
        o.commit = commit;
        o.batch_size = 1;
        let out = import(&w, bytes.clone(), o, Lang::En)
            .await
            .expect("import");
        let r = &out.report;
        assert_eq!(r.status, ImportStatus::Done);
        assert_eq!((r.created, r.rejected), (2, 2), "{:#?}", r.issues);
        assert_eq!(r.issues.iter().map(|i| i.row).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(
            r.issues[0].message_en,
            "Next follow-up: '-1000000000000' is not a date (expected e.g. 2026-11-27)",
            "{:#?}",
            r.issues
        );
        assert!(out.error_workbook.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_string_counts_are_read_as_calamine_reads_them() {
    let base = book(&[&["客户名称"], &["甲有限公司"]]);
    let sst = part(&base, "xl/sharedStrings.xml");
    let refused = |bytes: Vec<u8>, lim: Limits, case: &str| match Workbook::from_bytes(bytes, lim) {
        Err(IoError::TooLarge { what, .. }) => {
            assert!(what.contains("shared strings"), "{case}: {what}")
        }
        other => panic!("{case}: expected the shared string limit, got {other:?}"),
    };
    // Single quotes; leading zeros (calamine skips them).
    for lie in ["uniqueCount='4000000000'", "uniqueCount=\"0004000000000\""] {
        let lying = sst.replacen("uniqueCount=\"2\"", lie, 1);
        assert_ne!(lying, sst);
        refused(
            rezip(&base, &[("xl/sharedStrings.xml", lying.into_bytes())]),
            Limits::default(),
            lie,
        );
    }
    // A long comment, a processing instruction and whitespace before <sst.
    let lying = sst.replacen("uniqueCount=\"2\"", "uniqueCount=\"4000000000\"", 1);
    let at = lying.find("<sst").expect("sst");
    let padded = format!(
        "{}<!--{}--><?pi {}?>{}{}",
        &lying[..at],
        "x".repeat(64 << 10),
        "y".repeat(8 << 10),
        " \r\n\t".repeat(16 << 10),
        &lying[at..]
    );
    refused(
        rezip(&base, &[("xl/sharedStrings.xml", padded.into_bytes())]),
        Limits::default(),
        "padding",
    );
    // The part named in another case: calamine finds it all the same.
    let honest = rename_part(&base, "xl/sharedStrings.xml", "xl/SharedStrings.XML");
    let ev = events(&open(honest).expect("opens")).expect("reads");
    assert!(
        matches!(&ev[0], SheetEvent::Header { cells, .. } if cells == &["客户名称"]),
        "calamine reads the renamed part: {ev:?}"
    );
    let lying = rezip(&base, &[("xl/sharedStrings.xml", lying.into_bytes())]);
    refused(
        rename_part(&lying, "xl/sharedStrings.xml", "xl/SharedStrings.XML"),
        Limits::default(),
        "renamed",
    );
    // More strings than allowed, whatever the count declared.
    let names: Vec<String> = (0..20).map(|i| format!("客户{i}有限公司")).collect();
    let mut rows: Vec<Vec<&str>> = vec![vec!["客户名称"]];
    rows.extend(names.iter().map(|n| vec![n.as_str()]));
    let refs: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
    let many = book(&refs);
    let sst = part(&many, "xl/sharedStrings.xml");
    let understated = sst.replace("\"21\"", "\"1\"");
    assert_ne!(understated, sst);
    let lim = Limits {
        max_shared_strings: 10,
        ..Limits::default()
    };
    refused(
        rezip(&many, &[("xl/sharedStrings.xml", understated.into_bytes())]),
        lim,
        "present",
    );
    assert!(Workbook::from_bytes(many, Limits::default()).is_ok());
}

/// One row repeating a cell (referencing a long shared string) millions of
/// times would hold a copy per repeat: a row's cells must run left to
/// right, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_repeating_or_reordering_its_cells_is_refused() {
    let base = book(&[&["客户名称", "电话"], &["甲有限公司", "010-62345678"]]);
    let sheet = part(&base, "xl/worksheets/sheet1.xml");
    let start = sheet.find("<c r=\"A2\"").expect("A2");
    let end = start + sheet[start..].find("</c>").expect("end") + 4;
    let a2 = &sheet[start..end];
    let repeated = sheet.replacen(a2, &a2.repeat(1000), 1);
    let wb = open(rezip(
        &base,
        &[("xl/worksheets/sheet1.xml", repeated.into_bytes())],
    ))
    .expect("opens");
    match events(&wb) {
        Err(IoError::Broken(m)) => assert!(m.contains("cell A2 appears twice"), "{m}"),
        other => panic!("expected a damaged sheet, got {other:?}"),
    }
    let b_start = sheet.find("<c r=\"B2\"").expect("B2");
    let b_end = b_start + sheet[b_start..].find("</c>").expect("end") + 4;
    let b2 = &sheet[b_start..b_end];
    let swapped = sheet.replacen(&format!("{a2}{b2}"), &format!("{b2}{a2}"), 1);
    assert_ne!(swapped, sheet);
    let wb = open(rezip(
        &base,
        &[("xl/worksheets/sheet1.xml", swapped.into_bytes())],
    ))
    .expect("opens");
    match events(&wb) {
        Err(IoError::Broken(m)) => assert!(m.contains("cell A2 comes after cell B2"), "{m}"),
        other => panic!("expected a damaged sheet, got {other:?}"),
    }
}

/// Excel cells hold 32 767 UTF-16 units: a rejected row whose cell is
/// longer than that (allowed by wider limits) still comes back in an error
/// workbook, cut to fit; a reason quoting a long value is cut to
/// `MESSAGE_MAX_CHARS` in the report and the workbook alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_workbooks_cut_long_text_to_what_a_cell_holds() {
    let w = world().await;
    // The reason quotes a 32 750-character date that is none.
    let long_date = "x".repeat(32_750);
    let bytes = book(&[&["客户名称", "下次跟进日期"], &["甲有限公司", &long_date]]);
    for lang in [Lang::Zh, Lang::En] {
        let out = import(
            &w,
            bytes.clone(),
            ImportOptions::new(Entity::Customer),
            lang,
        )
        .await
        .expect("import");
        assert_eq!(out.report.rejected, 1);
        let message = match lang {
            Lang::Zh => &out.report.issues[0].message_zh,
            Lang::En => &out.report.issues[0].message_en,
        };
        // The reason quotes the value, cut short: a report keeps every
        // rejected row's reason.
        assert_eq!(
            message.chars().count(),
            crm_core::import::MESSAGE_MAX_CHARS + 1,
            "{}",
            message.chars().count()
        );
        assert!(message.ends_with('…'));
        let errors = out.error_workbook.expect("error workbook");
        let ev = events(&open(errors).expect("readable")).expect("read");
        let SheetEvent::Row(r) = &ev[1] else {
            panic!("row")
        };
        assert_eq!(r.cells[1].to_text().as_deref(), Some(long_date.as_str()));
        let why = r.cells[3].to_text().unwrap_or_default();
        assert!(units(&why) <= 32_767, "{}", units(&why));
        assert!(why.ends_with('…'), "cut short visibly");
        assert!(why.starts_with(&message.chars().take(10).collect::<String>()));
    }
    // 20 000 characters outside the Basic Multilingual Plane: 40 000 units.
    let base = book(&[
        &["客户名称", "电话", "备注"],
        &["乙有限公司", "1234", "LONG-NOTES"],
    ]);
    let emoji = "😀".repeat(20_000);
    let sst = part(&base, "xl/sharedStrings.xml").replacen("LONG-NOTES", &emoji, 1);
    let bytes = rezip(&base, &[("xl/sharedStrings.xml", sst.into_bytes())]);
    // Excel's own limit, counted as Excel counts.
    match events(&open(bytes.clone()).expect("opens")) {
        Err(IoError::TooLarge { what, .. }) => assert_eq!(what, "cell C2"),
        other => panic!("expected the cell length limit, got {other:?}"),
    }
    let wide = Limits {
        max_cell_chars: 100_000,
        ..Limits::default()
    };
    let wb = Workbook::from_bytes(bytes, wide).expect("opens");
    for (lang, note) in [(Lang::Zh, "C 列的原值"), (Lang::En, "column C")] {
        let out = crm_io::import_workbook(
            &w.crm,
            &w.admin,
            &wb,
            ImportOptions::new(Entity::Customer),
            &ReadOptions { sheet: None, lang },
            &mut |_| {},
        )
        .await
        .expect("import");
        assert_eq!(out.report.rejected, 1, "{:#?}", out.report.issues);
        let errors = out.error_workbook.expect("error workbook");
        let ev = events(&open(errors).expect("readable")).expect("read");
        let SheetEvent::Row(r) = &ev[1] else {
            panic!("row")
        };
        let notes = r.cells[2].to_text().unwrap_or_default();
        assert_eq!(notes, "😀".repeat(16_383), "cut at a character boundary");
        let why = r.cells[4].to_text().unwrap_or_default();
        assert!(why.contains(note), "{why}");
    }
}

/// A date-formatted 0 read as 1899-12-31 and serial 60 (Excel's
/// 1900-02-29, which never was) as 1900-02-28 are bad values of their
/// rows; a time only (0.5 shown as h:mm) reads as its text, `12:00`, which
/// a date field refuses by name; serials 1 to 59 and from 61 stay the days
/// Excel shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_cells_without_a_day_or_on_1900_02_29_reject_their_row() {
    use crm_core::import::Cell;
    let mut b = Book::new();
    let ws = b.add_worksheet();
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let time = rust_xlsxwriter::Format::new().set_num_format("h:mm");
    ws.write_string(0, 0, "客户名称").expect("w");
    ws.write_string(0, 1, "下次跟进日期").expect("w");
    let rows = [
        ("甲有限公司", 0.0, &date),
        ("乙有限公司", 0.5, &time),
        ("丙有限公司", 60.0, &date),
        ("丁有限公司", 60.25, &time),
        ("戊有限公司", 1.0, &date),
        ("己有限公司", 59.0, &date),
        ("庚有限公司", 61.0, &date),
    ];
    for (r, (name, serial, f)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        ws.write_string(r, 0, *name).expect("w");
        ws.write_number_with_format(r, 1, *serial, f).expect("w");
    }
    let bytes = b.save_to_buffer().expect("save");
    let ev = events(&open(bytes.clone()).expect("opens")).expect("reads");
    let rows: Vec<&crm_core::import::SheetRow> = ev
        .iter()
        .filter_map(|e| match e {
            SheetEvent::Row(r) => Some(r),
            _ => None,
        })
        .collect();
    let originals: Vec<(usize, &Cell)> = ev
        .iter()
        .filter_map(|e| match e {
            SheetEvent::Original { column, cell } => Some((*column, cell)),
            _ => None,
        })
        .collect();
    let cell = |i: usize| rows[i - 1].cells[1].clone();
    // A number that is no day reads as the sheet shows it, a time of day
    // alone too; the original comes with it, for the error workbook.
    assert_eq!(cell(1), Cell::Text("1900-01-00".into()));
    assert_eq!(cell(2), Cell::Text("12:00".into()));
    assert_eq!(cell(3), Cell::Text("1900-02-29".into()));
    assert_eq!(cell(4), Cell::Text("1900-02-29 06:00".into()));
    assert_eq!(
        originals,
        [
            (1, &Cell::Number(0.0)),
            (1, &Cell::Number(0.5)),
            (1, &Cell::Number(60.0)),
            (1, &Cell::Number(60.25)),
        ]
    );
    let day = |y, m, d| Cell::Date(chrono::NaiveDate::from_ymd_opt(y, m, d).expect("day"));
    assert_eq!(cell(5), day(1900, 1, 1));
    assert_eq!(cell(6), day(1900, 2, 28));
    assert_eq!(cell(7), day(1900, 3, 1));
    for lang in [Lang::Zh, Lang::En] {
        let w = world().await;
        let out = import(
            &w,
            bytes.clone(),
            ImportOptions::new(Entity::Customer),
            lang,
        )
        .await
        .expect("import");
        let r = &out.report;
        assert_eq!(r.rejected, 4, "{:#?}", r.issues);
        let mut rows: Vec<_> = r.issues.iter().map(|i| i.row).collect();
        rows.dedup();
        assert_eq!(rows, [2, 3, 4, 5]);
        let en: Vec<&str> = r.issues.iter().map(|i| i.message_en.as_str()).collect();
        let zh: Vec<&str> = r.issues.iter().map(|i| i.message_zh.as_str()).collect();
        assert!(en[0].contains("'1900-01-00': there is no day 0"), "{en:#?}");
        assert!(en[1].contains("'12:00' is not a date"), "{en:#?}");
        assert!(
            en[2].contains("'1900-02-29': there is no day 29"),
            "{en:#?}"
        );
        assert!(en[3].contains("1900-02-29"), "{en:#?}");
        assert!(
            zh[2].contains("「1900-02-29」：1900 年 2 月没有 29 日"),
            "{zh:#?}"
        );
        // No spreadsheet error is named, and each language stays itself.
        for m in en.iter().chain(&zh) {
            assert!(!m.contains("#VALUE") && !m.contains("错误值"), "{m}");
        }
        for m in &zh {
            assert!(!m.contains("date number") && !m.contains("is not"), "{m}");
        }
        // The error workbook gives the cells back as the sheet held them.
        let errors = out.error_workbook.expect("error workbook");
        let ev = events(&open(errors).expect("readable")).expect("read");
        let back: Vec<Cell> = ev
            .iter()
            .filter_map(|e| match e {
                SheetEvent::Row(r) => Some(r.cells[1].clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            back,
            [
                Cell::Number(0.0),
                Cell::Number(0.5),
                Cell::Number(60.0),
                Cell::Number(60.25)
            ]
        );
    }
}

/// Number cells read into a text field read as the sheet shows them
/// (General format: 15 significant digits, no float noise, whole numbers
/// without `.0`); a boolean comes back in the error workbook as a boolean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_read_as_shown_and_booleans_come_back_as_booleans() {
    use crm_core::import::Cell;
    let mut b = Book::new();
    let ws = b.add_worksheet();
    for (c, h) in ["客户名称", "简称", "备注", "电话"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).expect("w");
    }
    ws.write_string(1, 0, "甲有限公司").expect("w");
    ws.write_number(1, 1, 0.1 + 0.2).expect("w");
    ws.write_number(1, 2, 112.999_999_999_999_99).expect("w");
    ws.write_number(1, 3, 13_812_345_678.0).expect("w");
    ws.write_string(2, 0, "乙有限公司").expect("w");
    ws.write_boolean(2, 1, true).expect("w");
    ws.write_string(2, 3, "not a phone").expect("w");
    let bytes = b.save_to_buffer().expect("save");
    assert!(part(&bytes, "xl/worksheets/sheet1.xml").contains("0.30000000000000004"));
    let w = world().await;
    let out = import(&w, bytes, ImportOptions::new(Entity::Customer), Lang::Zh)
        .await
        .expect("import");
    assert_eq!(
        (out.report.created, out.report.rejected),
        (1, 1),
        "{:#?}",
        out.report.issues
    );
    let list = w
        .crm
        .list_records(&w.admin, Entity::Customer, &ListQuery::default())
        .await
        .expect("list");
    let c = list
        .items
        .iter()
        .find(|c| c.text("name") == Some("甲有限公司"))
        .expect("imported");
    assert_eq!(c.text("short_name"), Some("0.3"), "{c:?}");
    assert_eq!(c.text("notes"), Some("113"), "{c:?}");
    let errors = out.error_workbook.expect("error workbook");
    let ev = events(&open(errors).expect("readable")).expect("read");
    let SheetEvent::Row(r) = &ev[1] else {
        panic!("row")
    };
    assert_eq!(r.cells[1], Cell::Bool(true));
}

fn choice_column(key: &str, options: Vec<String>) -> crm_core::import::TemplateColumn {
    crm_core::import::TemplateColumn {
        key: key.into(),
        header_zh: key.into(),
        header_en: key.into(),
        required: false,
        options,
        kind: crm_core::import::ValueKind::Text,
        sample: String::new(),
        hint_zh: String::new(),
        hint_en: String::new(),
    }
}

/// The `<formula1>` of the data validation of each column of the data sheet.
fn list_sources(sheet: &str) -> Vec<(String, String)> {
    sheet
        .split("<dataValidation ")
        .skip(1)
        .map(|v| {
            let col = v
                .split("sqref=\"")
                .nth(1)
                .and_then(|s| s.split(|c: char| c.is_ascii_digit()).next())
                .expect("sqref")
                .to_string();
            let f = v
                .split("<formula1>")
                .nth(1)
                .and_then(|s| s.split("</formula1>").next())
                .expect("formula1")
                .to_string();
            (col, f)
        })
        .collect()
}

/// Option lists that Excel counts longer than their characters (emoji count
/// twice, `"` is doubled) made the template fail; an option with a comma
/// was split in two by the inline list, blocking the option itself; and a
/// large option list overflowed the instructions cell, failing the template.
#[test]
fn template_lists_fit_excels_limits_whatever_the_options() {
    let emoji: Vec<String> = (0..60).map(|_| "😀😀".to_string()).collect();
    let quotes: Vec<String> = (0..50).map(|i| format!("\"{i:02}\"")).collect();
    let commas = vec!["Beijing, China".to_string(), "Tokyo".to_string()];
    let huge: Vec<String> = (0..5000).map(|i| format!("分类{i:06}号")).collect();
    let plain = vec!["A".to_string(), "B".to_string()];
    let cols = [
        choice_column("emoji", emoji),
        choice_column("quotes", quotes),
        choice_column("commas", commas),
        choice_column("huge", huge),
        choice_column("plain", plain),
    ];
    for lang in [Lang::En, Lang::Zh] {
        let bytes = crm_io::template_workbook(&cols, lang).expect("template");
        let sources = list_sources(&part(&bytes, "xl/worksheets/sheet1.xml"));
        let source = |c: &str| {
            sources
                .iter()
                .find(|(col, _)| col == c)
                .map(|(_, f)| f.clone())
                .unwrap_or_else(|| panic!("no list for {c}: {sources:?}"))
        };
        // Every option stays selectable: the long and comma lists come from
        // the hidden sheet, one cell an option; short lists stay inline.
        for c in ["A", "B", "C", "D"] {
            assert!(source(c).contains('!'), "{c}: {}", source(c));
        }
        assert!(source("E").contains("A,B"), "{}", source("E"));
        // The instructions cut the huge list to what a cell holds.
        let wb = open(bytes.clone()).expect("readable");
        let mut lists = Vec::new();
        wb.read(Some(&wb.sheet_names()[3]), |e| {
            match e {
                SheetEvent::Header { cells, .. } => lists.extend(cells),
                SheetEvent::Row(r) => lists.extend(r.cells.iter().filter_map(|c| c.to_text())),
                SheetEvent::Original { .. } => {}
            }
            Ok(true)
        })
        .expect("read the lists");
        assert!(lists.iter().any(|t| t == "Beijing, China"));
        assert!(lists.iter().any(|t| t == "\"07\""));
        // (The whole sheet: its header row is the one-cell introduction.)
        let help = wb.sheet_names()[2].clone();
        let mut xlsx: calamine::Xlsx<_> =
            calamine::open_workbook_from_rs(Cursor::new(bytes.clone())).expect("xlsx");
        let texts: Vec<String> = calamine::Reader::worksheet_range(&mut xlsx, &help)
            .expect("instructions")
            .used_cells()
            .map(|(_, _, c)| c.to_string())
            .collect();
        let cut = texts
            .iter()
            .find(|t| t.contains("分类000000号"))
            .expect("the huge list");
        assert!(units(cut) <= 32_767, "{}", units(cut));
        assert!(units(cut) > 32_000, "{}", units(cut));
        assert!(
            cut.contains("…") && cut.contains("5000"),
            "{}",
            &cut[cut.len() - 200..]
        );
        assert!(texts.iter().any(|t| t == "Beijing, China、Tokyo"));
    }
}

/// Sales lists export through the same sheet: money as numbers in 元 with
/// a money format, dates as dates, statuses in the export's language, a
/// formula-looking title kept as text; the generic export takes a search
/// text for them and refuses conditions, naming the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_lists_export_typed_and_refuse_conditions() {
    use crm_core::import::Cell;
    use crm_core::money::Money;
    use crm_core::sales::{ContractQuery, NewContract, SalesList};
    let w = world().await;
    let customer = w.customer(&w.admin, "华为技术有限公司", json!({})).await;
    let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).expect("date");
    for (title, fen) in [
        ("=HYPERLINK(\"http://evil\")", 1_234_567),
        ("华为维保合同", 50),
    ] {
        w.crm
            .create_contract(
                &w.admin,
                NewContract {
                    title: title.into(),
                    customer_id: customer.id.0,
                    amount: Some(Money::cny(fen)),
                    end_on: Some(d(12, 15)),
                    ..NewContract::default()
                },
            )
            .await
            .expect("contract");
        w.clock.advance(chrono::Duration::seconds(1));
    }
    let mut out = Cursor::new(Vec::new());
    let n = crm_io::export_sales(
        &w.crm,
        &w.admin,
        SalesList::Contracts(ContractQuery::default()),
        &[
            "title".into(),
            "amount".into(),
            "end_on".into(),
            "status".into(),
        ],
        Lang::En,
        &mut out,
        &mut |_| {},
    )
    .await
    .expect("export");
    assert_eq!(n, 2);
    let bytes = out.into_inner();
    assert_quoted(&bytes, &["=HYPERLINK"]);
    let ev = events(&open(bytes).expect("readable")).expect("read");
    let SheetEvent::Header { cells: h, .. } = &ev[0] else {
        panic!("header")
    };
    assert_eq!(h, &["Title", "Amount", "Ends on", "Status"]);
    let SheetEvent::Row(newest) = &ev[1] else {
        panic!("row")
    };
    assert_eq!(
        newest.cells,
        vec![
            Cell::Text("华为维保合同".into()),
            Cell::Number(0.5),
            Cell::Date(d(12, 15)),
            Cell::Text("draft".into()),
        ]
    );
    let SheetEvent::Row(oldest) = &ev[2] else {
        panic!("row")
    };
    assert_eq!(oldest.cells[1], Cell::Number(12_345.67));
    // Through the generic export: a search text finds, conditions are refused.
    let mut out = Cursor::new(Vec::new());
    let n = crm_io::export(
        &w.crm,
        &w.admin,
        Entity::Contract,
        ListQuery::default().search("维保"),
        &["合同名称".into()],
        Lang::Zh,
        &mut out,
        &mut |_| {},
    )
    .await
    .expect("export by search");
    assert_eq!(n, 1);
    let ev = events(&open(out.into_inner()).expect("readable")).expect("read");
    assert_eq!(ev.len(), 2);
    let err = crm_io::export(
        &w.crm,
        &w.admin,
        Entity::Contract,
        ListQuery::default().filter(crm_core::query::Cond::Eq("status".into(), json!("draft"))),
        &[],
        Lang::Zh,
        &mut Cursor::new(Vec::new()),
        &mut |_| {},
    )
    .await
    .expect_err("conditions");
    assert!(err.to_string().contains("export_sales"), "{err}");
}

/// A product export takes the recycle bin (`Lifecycle::Deleted`) and
/// refuses what products do not have — an archive, conditions, a sort —
/// by name instead of ignoring it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_exports_take_the_recycle_bin_and_refuse_what_does_not_apply() {
    use crm_core::money::Money;
    use crm_core::sales::ProductInput;
    use crm_core::store::Lifecycle;
    let w = world().await;
    for code in ["P-1", "P-2"] {
        let p = w
            .crm
            .create_product(
                &w.admin,
                ProductInput {
                    code: Some(code.into()),
                    name: Some(format!("产品{code}")),
                    list_price: Some(Money::cny(100)),
                    ..ProductInput::default()
                },
            )
            .await
            .expect("product");
        if code == "P-2" {
            w.crm
                .set_product_deleted(&w.admin, p.id, true)
                .await
                .expect("bin");
        }
    }
    let export = |q: ListQuery| {
        let crm = &w.crm;
        let admin = &w.admin;
        async move {
            crm_io::export(
                crm,
                admin,
                Entity::Product,
                q,
                &["code".into()],
                Lang::En,
                &mut Cursor::new(Vec::new()),
                &mut |_| {},
            )
            .await
        }
    };
    assert_eq!(export(ListQuery::default()).await.expect("live"), 1);
    let binned = ListQuery::default().lifecycle(Lifecycle::Deleted);
    assert_eq!(export(binned).await.expect("recycle bin"), 1);
    let archived = ListQuery::default().lifecycle(Lifecycle::Archived);
    let err = export(archived).await.expect_err("no archive");
    assert!(err.to_string().contains("not archived"), "{err}");
    let sorted = ListQuery {
        sort: vec![crm_core::query::SortBy::parse("-name")],
        ..ListQuery::default()
    };
    let err = export(sorted).await.expect_err("no sort");
    assert!(
        err.to_string().contains("not conditions or a sort"),
        "{err}"
    );
}

/// Calamine reads a start tag's attributes its own way: an empty name
/// (`=""`) is an attribute to it, and the count after it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_string_count_after_an_empty_attribute_name_is_checked() {
    let base = book(&[&["客户名称"], &["甲有限公司"]]);
    let hostile = r#"<sst ="" uniqueCount="100000000000"><si><t>a</t></si></sst>"#;
    let bytes = rezip(&base, &[("xl/sharedStrings.xml", hostile.into())]);
    match open(bytes) {
        Err(IoError::TooLarge { what, .. }) => assert!(what.contains("shared strings"), "{what}"),
        other => panic!("expected the shared string limit, got {other:?}"),
    }
    // Other names calamine takes (spaces in them, around the `=`) do not
    // hide the count, and a name merely ending in it is not the count.
    for (lead, refused) in [
        (r#"a b="" "#, true),
        (r#"x = 'y' "#, true),
        ("", true),
        (r#"notuniqueCount="9" x:"#, false),
    ] {
        let xml = format!(r#"<sst {lead}uniqueCount="100000000000"><si><t>a</t></si></sst>"#);
        let result = open(rezip(&base, &[("xl/sharedStrings.xml", xml.into_bytes())]));
        assert_eq!(
            matches!(result, Err(IoError::TooLarge { .. })),
            refused,
            "{lead}: {result:?}"
        );
    }
}

/// Calamine builds an object for each cell format, font, fill, border and
/// number format of the styles part when it opens a workbook: a styles
/// part of millions of them, small once compressed, is refused first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn style_tables_are_counted_before_calamine_builds_them() {
    let base = book(&[&["客户名称"], &["甲有限公司"]]);
    let styles = part(&base, "xl/styles.xml");
    let at = styles.find("</cellXfs>").expect("cellXfs");
    let many = |n: usize, tag: &str| {
        format!(
            "{}{}{}",
            &styles[..at],
            format!("<{tag} numFmtId=\"0\" fontId=\"0\"/>").repeat(n),
            &styles[at..]
        )
    };
    let lim = Limits {
        max_styles: 1_000,
        ..Limits::default()
    };
    let refused = |xml: String| match Workbook::from_bytes(
        rezip(&base, &[("xl/styles.xml", xml.into_bytes())]),
        lim,
    ) {
        Err(IoError::TooLarge { what, limit }) => {
            assert!(what.contains("xl/styles.xml"), "{what}");
            assert!(limit.contains("1000 style records"), "{limit}");
        }
        other => panic!("expected the style limit, got {other:?}"),
    };
    refused(many(1_001, "xf"));
    // Prefixed names count too (calamine matches local names).
    refused(many(1_001, "x:font"));
    // Within the limit the workbook reads.
    let fine = rezip(&base, &[("xl/styles.xml", many(900, "xf").into_bytes())]);
    let wb = Workbook::from_bytes(fine, lim).expect("opens");
    assert_eq!(events(&wb).expect("reads").len(), 2);
    // The default limit: 300 000 cell formats, a few hundred KiB once
    // compressed.
    let bytes = rezip(
        &base,
        &[("xl/styles.xml", many(300_000, "xf").into_bytes())],
    );
    assert!(bytes.len() < 1 << 20, "compressed {} bytes", bytes.len());
    assert!(matches!(open(bytes), Err(IoError::TooLarge { .. })));
}

/// A string far over a cell's length is refused: in the shared strings
/// while the part streams by, before calamine builds it whole; inline in
/// the sheet when its row is read. One at the limit still reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_strings_are_refused_before_calamine_builds_them() {
    let base = book(&[&["客户名称"], &["甲有限公司"]]);
    let sst = part(&base, "xl/sharedStrings.xml");
    let huge = "长".repeat(1 << 20);
    let refused = |bytes: Vec<u8>, where_: &str| match open(bytes) {
        Err(IoError::TooLarge { what, limit }) => {
            assert!(what.contains(where_), "{what}");
            assert!(limit.contains("32767 characters"), "{limit}");
        }
        other => panic!("expected the cell length limit in {where_}, got {other:?}"),
    };
    let long_sst = sst.replacen("甲有限公司", &huge, 1);
    assert_ne!(long_sst, sst);
    refused(
        rezip(&base, &[("xl/sharedStrings.xml", long_sst.into_bytes())]),
        "xl/sharedStrings.xml",
    );
    // Cut into pieces by elements calamine reads through (`<t>` only ends at
    // its own end tag), or into runs and CDATA sections.
    // 150 000 bytes: within what is allowed alone, not three together.
    let piece = "长".repeat(50_000);
    for split in [
        format!("<t>{piece}<si/>{piece}</si>{piece}<si>{piece}</t>"),
        format!("<r><t>{piece}</t></r><r><t>{piece}</t></r><r><t>{piece}</t></r>"),
        format!("<t><![CDATA[{piece}]]><!-- </t></si> -->{piece}{piece}</t>"),
    ] {
        let at = sst.find("<t>甲有限公司</t>").expect("string");
        let xml = format!(
            "{}{split}{}",
            &sst[..at],
            &sst[at + "<t>甲有限公司</t>".len()..]
        );
        refused(
            rezip(&base, &[("xl/sharedStrings.xml", xml.into_bytes())]),
            "xl/sharedStrings.xml",
        );
    }
    // Inline in the sheet: refused when the row is read (calamine builds
    // it first, within the part's size).
    let sheet = part(&base, "xl/worksheets/sheet1.xml");
    let at = sheet.find("</row></sheetData>").expect("end of the rows");
    let inline = |text: &str| {
        format!(
            "{}<c r=\"B2\" t=\"inlineStr\"><is><t>{text}</t></is></c>{}",
            &sheet[..at],
            &sheet[at..]
        )
    };
    let v = format!(
        "{}<c r=\"B2\" t=\"str\"><v>{huge}</v></c>{}",
        &sheet[..at],
        &sheet[at..]
    );
    for xml in [inline(&huge), v] {
        let wb = open(rezip(
            &base,
            &[("xl/worksheets/sheet1.xml", xml.into_bytes())],
        ))
        .expect("opens");
        match events(&wb) {
            Err(IoError::TooLarge { what, limit }) => {
                assert!(what.contains("B2"), "{what}");
                assert!(limit.contains("32767 characters"), "{limit}");
            }
            other => panic!("expected the cell length limit, got {other:?}"),
        }
    }
    // At the limit: 32 767 characters, written as entities even.
    let full = "&amp;".repeat(32_767);
    let bytes = rezip(
        &base,
        &[("xl/worksheets/sheet1.xml", inline(&full).into_bytes())],
    );
    let ev = events(&open(bytes).expect("opens")).expect("reads");
    let SheetEvent::Row(r) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(r.cells[1].to_text().map(|t| t.len()), Some(32_767));
    let long_sst = sst.replacen("甲有限公司", &"长".repeat(32_767), 1);
    let bytes = rezip(&base, &[("xl/sharedStrings.xml", long_sst.into_bytes())]);
    let ev = events(&open(bytes).expect("opens")).expect("reads");
    let SheetEvent::Row(r) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        r.cells[0].to_text().map(|t| t.chars().count()),
        Some(32_767)
    );
}

/// A cell right of the header's last column is not dropped silently: the
/// row keeps it, the report names its column as ignored (once), and a
/// rejected row's error workbook row keeps it after the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_right_of_the_header_are_kept_and_reported() {
    let w = world().await;
    let bytes = book(&[
        &["客户名称", "电话"],
        &["甲有限公司", "010-62345678", "", "备注一"],
        &["乙有限公司", "1234", "", "备注二", "更远"],
        &["丙有限公司", "010-62345679", "", "备注三"],
    ]);
    let ev = events(&open(bytes.clone()).expect("opens")).expect("reads");
    let SheetEvent::Row(r) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(r.cells.len(), 4);
    assert_eq!(r.cells[3].to_text().as_deref(), Some("备注一"));
    let out = import(&w, bytes, ImportOptions::new(Entity::Customer), Lang::Zh)
        .await
        .expect("import");
    assert_eq!((out.report.created, out.report.rejected), (2, 1));
    assert_eq!(
        out.report.ignored_columns,
        ["D (no header / 无表头)", "E (no header / 无表头)"]
    );
    let errors = out.error_workbook.expect("error workbook");
    let ev = events(&open(errors).expect("readable")).expect("read");
    let SheetEvent::Header { cells: h, .. } = &ev[0] else {
        panic!("header")
    };
    assert_eq!(h, &["客户名称", "电话", "原行号", "错误原因"]);
    let SheetEvent::Row(r) = &ev[1] else {
        panic!("row")
    };
    let texts: Vec<String> = r
        .cells
        .iter()
        .map(|c| c.to_text().unwrap_or_default())
        .collect();
    assert_eq!(texts[0], "乙有限公司");
    assert_eq!(texts[2], "3");
    assert_eq!(texts[4..], ["", "备注二", "更远"]);
}

/// The sheet read by default is the first worksheet (a chart sheet holds
/// no rows), and sheet names are read as calamine reads them: entities
/// decoded, either quote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_sheet_is_the_first_worksheet_named_as_calamine_names_it() {
    let mut b = Book::new();
    let mut chart = rust_xlsxwriter::Chart::new(rust_xlsxwriter::ChartType::Column);
    chart.add_series().set_values("'A&B'!$B$2:$B$3");
    b.add_chartsheet()
        .insert_chart(0, 0, &chart)
        .expect("chart");
    let ws = b.add_worksheet();
    ws.set_name("A&B").expect("name");
    ws.write_string(0, 0, "客户名称").expect("w");
    ws.write_string(1, 0, "甲有限公司").expect("w");
    let bytes = b.save_to_buffer().expect("save");
    let book_xml = part(&bytes, "xl/workbook.xml");
    assert!(book_xml.contains("name=\"A&amp;B\""), "{book_xml}");
    let wb = open(bytes.clone()).expect("opens");
    assert_eq!(wb.sheet_names(), ["A&B"]);
    let ev = events(&wb).expect("the worksheet, not the chart sheet");
    assert!(
        matches!(&ev[0], SheetEvent::Header { cells, .. } if cells == &["客户名称"]),
        "{ev:?}"
    );
    assert!(wb.read(Some("A&B"), |_| Ok(true)).is_ok());
    // Single quotes and a character reference: the same name.
    let edited = book_xml.replace("name=\"A&amp;B\"", "name='&#65;&amp;B'");
    assert_ne!(edited, book_xml);
    let wb = open(rezip(&bytes, &[("xl/workbook.xml", edited.into_bytes())])).expect("opens");
    assert_eq!(wb.sheet_names(), ["A&B"]);
    assert_eq!(events(&wb).expect("reads").len(), 2);
    // A chart sheet named is no sheet to import.
    assert!(matches!(
        wb.resolve_sheet(Some("Chart1")),
        Err(IoError::NoSheet { .. })
    ));
}

/// A hidden sheet ahead of the visible one (an old version, a lookup
/// list) is not what the file shows: the sheet read by default is the
/// first visible worksheet, as calamine's `sheets_metadata` tells them
/// (hidden and very hidden alike); a hidden sheet is read when named, and
/// a workbook of hidden sheets only reads its first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_sheet_is_the_first_visible_worksheet() {
    let mut b = Book::new();
    let old = b.add_worksheet();
    old.set_name("旧版").expect("name");
    old.write_string(0, 0, "客户名称").expect("w");
    old.write_string(1, 0, "旧有限公司").expect("w");
    let now = b.add_worksheet();
    now.set_name("客户").expect("name");
    now.write_string(0, 0, "客户名称").expect("w");
    now.write_string(1, 0, "新有限公司").expect("w");
    let bytes = b.save_to_buffer().expect("save");
    // (The writer hides no first sheet: hidden as Excel writes it.)
    let plain = part(&bytes, "xl/workbook.xml");
    let book_xml = plain.replace("name=\"旧版\"", "name=\"旧版\" state=\"hidden\"");
    assert_ne!(book_xml, plain);
    let bytes = rezip(
        &bytes,
        &[("xl/workbook.xml", book_xml.clone().into_bytes())],
    );
    let wb = open(bytes.clone()).expect("opens");
    assert_eq!(wb.sheet_names(), ["旧版", "客户"]);
    assert!(wb.is_hidden("旧版") && !wb.is_hidden("客户"));
    assert_eq!(wb.resolve_sheet(None).expect("sheet"), "客户");
    let first_cell = |ev: &[SheetEvent]| match &ev[1] {
        SheetEvent::Row(r) => r.cells[0].clone(),
        e => panic!("{e:?}"),
    };
    let ev = events(&wb).expect("reads");
    assert_eq!(
        first_cell(&ev),
        crm_core::import::Cell::Text("新有限公司".into())
    );
    // Named, the hidden sheet is read.
    let mut named = Vec::new();
    wb.read(Some("旧版"), |e| {
        named.push(e);
        Ok(true)
    })
    .expect("reads");
    assert_eq!(
        first_cell(&named),
        crm_core::import::Cell::Text("旧有限公司".into())
    );
    // Very hidden alike; every sheet hidden: the first.
    let very = book_xml.replace("state=\"hidden\"", "state=\"veryHidden\"");
    let wb = open(rezip(
        &bytes,
        &[("xl/workbook.xml", very.clone().into_bytes())],
    ))
    .expect("opens");
    assert_eq!(wb.resolve_sheet(None).expect("sheet"), "客户");
    let all = very.replace("name=\"客户\"", "name=\"客户\" state=\"hidden\"");
    assert_ne!(all, very);
    let wb = open(rezip(&bytes, &[("xl/workbook.xml", all.into_bytes())])).expect("opens");
    assert_eq!(wb.resolve_sheet(None).expect("sheet"), "旧版");
}

/// Excel has no day before 1900-01-01: such dates are written as ISO text,
/// which reads back as the same date, in exports and error workbooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_before_1900_are_written_as_iso_text_and_read_back() {
    use crm_core::import::{Cell, ExportColumn, ExportValue, ValueKind};
    let old = chrono::NaiveDate::from_ymd_opt(1899, 12, 31).expect("d");
    let new = chrono::NaiveDate::from_ymd_opt(1900, 1, 1).expect("d");
    let at = old.and_hms_opt(8, 30, 0).expect("t");
    let columns: Vec<ExportColumn> = ["a", "b", "c"]
        .iter()
        .map(|k| ExportColumn {
            key: k.to_string(),
            header_zh: k.to_string(),
            header_en: k.to_string(),
            kind: ValueKind::Date,
        })
        .collect();
    let mut sheet = crm_io::ExportSheet::new(&columns, "Data", Lang::En).expect("sheet");
    sheet
        .add(&[
            ExportValue::Date(old),
            ExportValue::Date(new),
            ExportValue::DateTime(at),
        ])
        .expect("row");
    let mut out = Cursor::new(Vec::new());
    sheet.finish(&mut out).expect("finish");
    let exported = out.into_inner();
    let mut errors = crm_io::ErrorWorkbook::new(&["a".into(), "b".into()], Lang::En).expect("book");
    errors
        .add(2, &[Cell::Date(old), Cell::DateTime(at)], "错", "wrong")
        .expect("row");
    let rejected = errors.finish().expect("finish");
    let cells = |bytes: Vec<u8>| {
        let ev = events(&open(bytes).expect("opens")).expect("reads");
        let SheetEvent::Row(r) = &ev[1] else {
            panic!("{ev:?}")
        };
        r.cells.clone()
    };
    let text = |s: &str| Cell::Text(s.into());
    assert_eq!(
        cells(exported),
        [
            text("1899-12-31"),
            Cell::Date(new),
            text("1899-12-31 08:30:00")
        ]
    );
    assert_eq!(
        cells(rejected)[..2],
        [text("1899-12-31"), text("1899-12-31 08:30:00")]
    );
    // Exported and imported again: the same date.
    let columns = [
        ("name", "客户名称", ValueKind::Text),
        ("next_follow_up", "下次跟进日期", ValueKind::Date),
    ]
    .map(|(key, zh, kind)| ExportColumn {
        key: key.into(),
        header_zh: zh.into(),
        header_en: key.into(),
        kind,
    });
    let mut sheet = crm_io::ExportSheet::new(&columns, "客户", Lang::Zh).expect("sheet");
    sheet
        .add(&[
            ExportValue::Text("旧日期有限公司".into()),
            ExportValue::Date(old),
        ])
        .expect("row");
    let mut out = Cursor::new(Vec::new());
    sheet.finish(&mut out).expect("finish");
    let w = world().await;
    let done = import(
        &w,
        out.into_inner(),
        ImportOptions::new(Entity::Customer),
        Lang::Zh,
    )
    .await
    .expect("import");
    assert_eq!(done.report.created, 1, "{:#?}", done.report.issues);
    let list = w
        .crm
        .list_records(&w.admin, Entity::Customer, &ListQuery::default())
        .await
        .expect("list");
    assert_eq!(list.items[0].text("next_follow_up"), Some("1899-12-31"));
}

/// One long shared string used by many cells is small in the file but not
/// once read: the text a row holds, and the text of the whole sheet, are
/// counted at every cell that uses it, against their limits.
#[test]
fn shared_strings_count_at_every_cell_that_uses_them() {
    let long = "长".repeat(20_000);
    let mut row: Vec<&str> = vec!["甲有限公司"];
    row.extend(std::iter::repeat_n(long.as_str(), 20));
    let header: Vec<String> = (0..row.len()).map(|i| format!("列{i}")).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let bytes = book(&[&header, &row]);
    // One copy of the string in the file (about 60 KB), twenty in the row.
    assert!(part(&bytes, "xl/sharedStrings.xml").matches(&long).count() == 1);
    match events(&open(bytes.clone()).expect("opens")) {
        Err(IoError::TooLarge { what, limit }) => {
            assert!(
                what.contains("row 2") && limit.contains("bytes of text"),
                "{what} / {limit}"
            )
        }
        other => panic!("expected the row refused, got {other:?}"),
    }
    // Within a wider row limit, the sheet's limit still counts every use.
    let lim = Limits {
        max_row_text_bytes: 10 << 20,
        max_text_bytes: 1 << 20,
        ..Limits::default()
    };
    match events(&Workbook::from_bytes(bytes.clone(), lim).expect("opens")) {
        Err(IoError::TooLarge { what, limit }) => {
            assert!(
                what == "the sheet" && limit.contains("bytes of text"),
                "{what} / {limit}"
            )
        }
        other => panic!("expected the sheet refused, got {other:?}"),
    }
    let lim = Limits {
        max_row_text_bytes: 10 << 20,
        max_text_bytes: 10 << 20,
        ..Limits::default()
    };
    let ev = events(&Workbook::from_bytes(bytes, lim).expect("opens")).expect("read");
    assert_eq!(ev.len(), 2);
}

/// A contact export by a user the contact is shared with, who may not
/// read its customer, writes the customer as `***` and nowhere its id; the
/// workbook imported back under the update policy changes nothing, and a
/// changed title lands with the customer kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_contacts_export_imports_back_keeping_its_hidden_customer() {
    let w = world().await;
    let c = w.customer(&w.wangwu, "看不见有限公司", json!({})).await;
    let contact = w
        .crm
        .create_record(
            &w.wangwu,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "周敏", "title": "经理"})),
        )
        .await
        .expect("contact");
    w.crm
        .share_record(
            &w.wangwu,
            Entity::Contact,
            contact.id,
            w.zhangsan.user_id,
            crm_core::ShareAccess::Write,
            None,
        )
        .await
        .expect("share");
    let mut out = Cursor::new(Vec::new());
    let n = crm_io::export(
        &w.crm,
        &w.zhangsan,
        Entity::Contact,
        ListQuery::default(),
        &[],
        Lang::Zh,
        &mut out,
        &mut |_| {},
    )
    .await
    .expect("export");
    assert_eq!(n, 1);
    let bytes = out.into_inner();
    let sheet = part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(!sheet.contains(&c.id.to_string()), "{sheet}");
    assert!(sheet.contains(crm_core::export::NOT_SHOWN), "{sheet}");
    let reimport = |bytes: Vec<u8>| {
        let w = &w;
        async move {
            let mut o = ImportOptions::new(Entity::Contact);
            o.policy = DuplicatePolicy::Update;
            crm_io::import_workbook(
                &w.crm,
                &w.zhangsan,
                &open(bytes).expect("workbook"),
                o,
                &ReadOptions {
                    sheet: None,
                    lang: Lang::Zh,
                },
                &mut |_| {},
            )
            .await
            .expect("import")
            .report
        }
    };
    let r = reimport(bytes.clone()).await;
    assert_eq!(
        (r.unchanged, r.updated, r.rejected),
        (1, 0, 0),
        "{:#?}",
        r.issues
    );
    // The same sheet with another title.
    let wb = open(bytes).expect("workbook");
    let ev = events(&wb).expect("read");
    let (SheetEvent::Header { cells: h, .. }, SheetEvent::Row(row)) = (&ev[0], &ev[1]) else {
        panic!("header and row")
    };
    let cells: Vec<String> = row
        .cells
        .iter()
        .map(|c| c.to_text().unwrap_or_default())
        .collect();
    let mut changed = cells.clone();
    let title = h.iter().position(|c| c == "职务").expect("title");
    changed[title] = "总监".into();
    let header: Vec<&str> = h.iter().map(String::as_str).collect();
    let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
    let r = reimport(book(&[&header, &changed])).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    let after = w
        .crm
        .get_record(&w.wangwu, Entity::Contact, contact.id)
        .await
        .expect("contact");
    assert_eq!(after.text("title"), Some("总监"));
    assert_eq!(after.text("customer_id"), Some(c.id.to_string().as_str()));
}

/// A dry run of a workbook whose customers would take their owner past a
/// pool's cap is refused as its import is, in batches too (where the
/// batches are prepared while the one before is written), and writes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_meets_the_pool_caps_its_import_meets() {
    let w = world().await;
    w.crm
        .create_pool(
            &w.admin,
            crm_core::pool::PoolSpec {
                name: "每人两个".into(),
                admins: vec![w.admin.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: crm_core::pool::PoolLimits {
                    max_owned_per_user: Some(2),
                    ..crm_core::pool::PoolLimits::default()
                },
            },
        )
        .await
        .expect("pool");
    let names: Vec<String> = (0..3).map(|i| format!("封顶{i}有限公司")).collect();
    let mut rows: Vec<Vec<&str>> = vec![vec!["客户名称"]];
    rows.extend(names.iter().map(|n| vec![n.as_str()]));
    let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
    let bytes = book(&rows);
    for commit in [CommitMode::Atomic, CommitMode::Batches] {
        let mut said = Vec::new();
        for dry_run in [true, false] {
            let mut o = ImportOptions::new(Entity::Customer);
            o.commit = commit;
            o.batch_size = 1;
            o.dry_run = dry_run;
            let got = crm_io::import_workbook(
                &w.crm,
                &w.zhangsan,
                &open(bytes.clone()).expect("workbook"),
                o,
                &ReadOptions {
                    sheet: None,
                    lang: Lang::Zh,
                },
                &mut |_| {},
            )
            .await;
            match got {
                Err(IoError::Crm(crm_core::Error::Forbidden(m))) => {
                    assert!(
                        m.contains("张三 already holds")
                            && m.contains("the limit of pool 每人两个 is 2"),
                        "{commit:?}, dry run {dry_run}: {m}"
                    );
                    said.push(m);
                }
                other => panic!("{commit:?}, dry run {dry_run}: expected the cap, got {other:?}"),
            }
            if dry_run {
                let list = w
                    .crm
                    .list_records(&w.zhangsan, Entity::Customer, &ListQuery::default())
                    .await
                    .expect("list");
                assert!(list.items.is_empty(), "the dry run wrote nothing");
            }
        }
        if commit == CommitMode::Atomic {
            assert_eq!(said[0], said[1], "the dry run says what the import says");
        }
    }
}

/// A text longer than a cell holds (Excel takes 32 767 characters) is cut
/// to that, ending in `…`, instead of failing the whole export; shorter
/// texts are written whole.
#[test]
fn an_export_cuts_a_text_longer_than_a_cell_instead_of_failing() {
    use crm_core::import::{ExportColumn, ExportValue, ValueKind};
    let columns = [("name", "名称"), ("notes", "备注")].map(|(key, zh)| ExportColumn {
        key: key.into(),
        header_zh: zh.into(),
        header_en: key.into(),
        kind: ValueKind::Text,
    });
    let mut sheet = crm_io::ExportSheet::new(&columns, "数据", Lang::Zh).expect("sheet");
    let long = "长".repeat(40_000);
    sheet
        .add(&[
            ExportValue::Text("长文本".into()),
            ExportValue::Text(long.clone()),
        ])
        .expect("a row with an over-long text");
    let whole = "短".repeat(32_767);
    sheet
        .add(&[
            ExportValue::Text("刚好".into()),
            ExportValue::Text(whole.clone()),
        ])
        .expect("a row at the limit");
    let mut out = Cursor::new(Vec::new());
    sheet.finish(&mut out).expect("finish");
    let bytes = out.into_inner();
    let xml = part(&bytes, "xl/worksheets/sheet1.xml");
    let cut = format!("{}…<", "长".repeat(32_766));
    assert!(xml.contains(&cut), "cut to the limit, ending in …");
    assert!(
        !xml.contains(&"长".repeat(32_767)),
        "nothing past the limit"
    );
    assert!(
        xml.contains(&format!(">{whole}<")),
        "a text at the limit is whole"
    );
}
