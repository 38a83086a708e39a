-- 0012: an import stores its unchanged rows (duplicates whose values were
-- all the same already) in their own count, `unchanged`, as its report
-- gives them, instead of adding them to `skipped`. Imports stored before
-- this migration keep their combined `skipped` and have 0 unchanged (the
-- run resuming one of them still tells the two apart from the issues its
-- batches kept).
--
-- SHIPPED once released: never edit; add a new numbered file instead.

ALTER TABLE imports ADD COLUMN unchanged INTEGER NOT NULL DEFAULT 0;
