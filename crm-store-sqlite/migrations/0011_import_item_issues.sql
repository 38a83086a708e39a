-- 0011: each committed batch of an import also keeps the rows it rejected
-- or skipped, with their reasons (`issues`, a JSON array of RowIssue). A
-- batched import interrupted part-way returns no error workbook; the run
-- that resumes it reads these back and reports the rows of the batches
-- committed before, so its error workbook lists every row of the file that
-- was not imported, not only its own. Items stored before this migration
-- have an empty list (the import record says whether its batches kept
-- their issues).
--
-- SHIPPED once released: never edit; add a new numbered file instead.

ALTER TABLE import_items
    ADD COLUMN issues TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(issues));
