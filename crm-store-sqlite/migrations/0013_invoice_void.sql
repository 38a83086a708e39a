-- 0013: an issued invoice can be voided (作废): it stays, with its status,
-- why it was voided, when and by whom, and no longer counts as invoiced.
-- Invoices stored before this migration are `issued`, and invoice plans
-- `planned`. The PostgreSQL store numbers the same change 0012.
--
-- SHIPPED once released: never edit; add a new numbered file instead.

ALTER TABLE invoices ADD COLUMN status TEXT NOT NULL DEFAULT 'issued';
ALTER TABLE invoices ADD COLUMN void_reason TEXT;
ALTER TABLE invoices ADD COLUMN voided_at TEXT;
ALTER TABLE invoices ADD COLUMN voided_by TEXT;
UPDATE invoices SET status = 'planned' WHERE kind = 'plan';
