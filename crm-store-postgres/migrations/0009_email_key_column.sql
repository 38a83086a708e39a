-- 0009: a customer's e-mail key (the address lowercased) becomes a column
-- of the customer, `email_key`, with an index of its own, like the name,
-- credit-code and phone keys (0008): the duplicate checks find e-mail
-- holders through `customers_email_key_idx`, and `customer_keys` keeps
-- e-mail rows only while two or more live customers share an address
-- (flagged, for the duplicate report). An import of customers with e-mail
-- addresses wrote a key row per customer, with three indexes of its own;
-- now it writes none (crm-core dedupe.rs, `key_column`).
--
-- The key is the one the engine computed for the customer's existing
-- e-mail row (every live customer with an address has one); a deleted
-- customer, which has no row, gets the address lowercased here (the
-- engine recomputes the key when the customer is restored, or next
-- written).
--
-- Runs with search_path set to the CRM schema only; names are unqualified.
-- SHIPPED once released: never edit; add a new numbered file instead.

ALTER TABLE customers ADD COLUMN email_key text;
UPDATE customers c
SET email_key = COALESCE(
    (SELECT k.key FROM customer_keys k
     WHERE k.customer_id = c.id AND k.kind = 'email'
     LIMIT 1),
    lower(btrim(c.email)))
WHERE c.email IS NOT NULL AND btrim(c.email) <> '';
CREATE INDEX customers_email_key_idx ON customers (company_id, email_key);
DELETE FROM customer_keys WHERE kind = 'email' AND NOT duplicate;
