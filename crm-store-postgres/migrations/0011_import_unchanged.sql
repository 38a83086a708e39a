-- 0011: an import stores its unchanged rows (duplicates whose values were
-- all the same already) in their own count, `unchanged`, as its report
-- gives them, instead of adding them to `skipped`. Imports stored before
-- this migration keep their combined `skipped` and have 0 unchanged (the
-- run resuming one of them still tells the two apart from the issues its
-- batches kept). The SQLite store numbers the same change 0012.
-- Runs with search_path set to the CRM schema only; names are unqualified.

ALTER TABLE imports ADD COLUMN unchanged bigint NOT NULL DEFAULT 0;
