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
    ws.write_string(2, 1, "12345").expect("w");
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
            assert_eq!(r.cells.len(), 1, "a row is as wide as the header");
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
    assert!(
        !sheet.contains("<f>") && !sheet.contains("<f "),
        "no formula"
    );
    assert!(sheet.contains("<autoFilter ref=\"A1:D8\""), "{sheet}");
    assert!(sheet.contains("<pane") && sheet.contains("ySplit=\"1\""));
    assert!(sheet.contains("<cols>"), "column widths");
    let styles = part(&bytes, "xl/styles.xml");
    assert!(styles.contains("quotePrefix=\"1\""));
    // Every hostile text is in a cell whose style has the quote prefix.
    let xfs: Vec<&str> = styles
        .split("<cellXfs")
        .nth(1)
        .and_then(|s| s.split("</cellXfs>").next())
        .expect("cellXfs")
        .split("<xf ")
        .skip(1)
        .collect();
    let quoted: Vec<usize> = xfs
        .iter()
        .enumerate()
        .filter(|(_, x)| x.contains("quotePrefix=\"1\""))
        .map(|(i, _)| i)
        .collect();
    let cells: Vec<&str> = sheet.split("<c ").skip(1).collect();
    for h in ["=HYPERLINK", "+1+1", "-2+3", "@SUM"] {
        let cell = cells
            .iter()
            .find(|c| c.contains(&h.replace('"', "&quot;")))
            .unwrap_or_else(|| panic!("{h} not found"));
        let style: usize = cell
            .split("s=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{h} has no style: {cell}"));
        assert!(quoted.contains(&style), "{h} is not quote-prefixed");
    }
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
    let wb = open(out.into_inner()).expect("readable");
    let ev = events(&wb).expect("read");
    assert_eq!(ev.len(), 9);
    let SheetEvent::Header { cells: h, .. } = &ev[0] else {
        panic!("header")
    };
    assert_eq!(h[0], "Code");
    assert!(h.contains(&"Name".to_string()));
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
