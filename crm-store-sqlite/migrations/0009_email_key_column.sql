-- 0009: a customer's e-mail key (the address lowercased) becomes a column
-- of the customer, `email_key`, with an index of its own, like the name,
-- credit-code and phone keys (0008): the duplicate checks find e-mail
-- holders through `customers_by_email_key`, and `customer_keys` keeps
-- e-mail rows only while two or more live customers share an address
-- (flagged, for the duplicate report). An import of customers with e-mail
-- addresses wrote a key row per customer, with three indexes of its own;
-- now it writes none (crm-core dedupe.rs, `key_column`).
--
-- The key is the one the engine computed for the customer's existing
-- e-mail row (every live customer with an address has one); a deleted
-- customer, which has no row, gets the address lowercased here (SQLite's
-- lower() folds ASCII letters only; the engine recomputes the key when the
-- customer is restored, or next written). The index leaves `company_id` out, as the
-- other key indexes do (0007).
--
-- SHIPPED once released: never edit; add a new numbered file instead.

ALTER TABLE customers ADD COLUMN email_key TEXT;
UPDATE customers
SET email_key = COALESCE(
    (SELECT k.key FROM customer_keys k
     WHERE k.customer_id = customers.id AND k.kind = 'email'
     LIMIT 1),
    lower(trim(email)))
WHERE email IS NOT NULL AND trim(email) <> '';
CREATE INDEX customers_by_email_key ON customers (email_key);
DELETE FROM customer_keys WHERE kind = 'email' AND duplicate = 0;
