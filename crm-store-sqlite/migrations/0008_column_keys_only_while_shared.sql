-- 0008: the name, credit-code and phone keys of a customer are looked up
-- through the customers' own indexes (customers_by_name_key, _by_uscc,
-- _by_phone_key), which hold the same values. Their `customer_keys` rows
-- now exist only while a key is shared by two or more live customers
-- (flagged `duplicate`, one row per holder, for the duplicate report and
-- a customer's duplicates); e-mail and custom-field keys keep a row per
-- live holder. A bulk import wrote four key rows per customer, three of
-- them copies of indexed customer columns: with one, SQLite writes the
-- 100 000-row benchmark's rows in about half the time (crm-core
-- dedupe.rs, `key_column`). The unshared rows of those kinds go. A flag
-- left unset by a concurrent write (see `rebuild_duplicate_keys`) takes
-- its key's rows with it; rebuilding the keys brings them back.
--
-- SHIPPED once released: never edit; add a new numbered file instead.

DELETE FROM customer_keys WHERE kind IN ('name', 'uscc', 'phone') AND duplicate = 0;
