-- 0012: an issued invoice can be voided (作废): it stays, with its status,
-- why it was voided, when and by whom, and no longer counts as invoiced.
-- Invoices stored before this migration are `issued`, and invoice plans
-- `planned`. The SQLite store numbers the same change 0013.
-- Runs with search_path set to the CRM schema only; names are unqualified.

ALTER TABLE invoices ADD COLUMN status text NOT NULL DEFAULT 'issued';
ALTER TABLE invoices ADD COLUMN void_reason text;
ALTER TABLE invoices ADD COLUMN voided_at timestamptz;
ALTER TABLE invoices ADD COLUMN voided_by uuid;
UPDATE invoices SET status = 'planned' WHERE kind = 'plan';
