-- 0010: each committed batch of an import also keeps the rows it rejected
-- or skipped, with their reasons (`issues`, a JSON array of RowIssue), so
-- that the run resuming an interrupted import reports them in its error
-- workbook too. Items stored before this migration have an empty list (the
-- import record says whether its batches kept their issues). The SQLite
-- store numbers the same change 0011.
-- Runs with search_path set to the CRM schema only; names are unqualified.

ALTER TABLE import_items ADD COLUMN issues jsonb NOT NULL DEFAULT '[]'::jsonb;
