-- 0008: the name, credit-code and phone keys of a customer are looked up
-- through the customers' own indexes (customers_by_name_key, _by_uscc,
-- _by_phone_key), which hold the same
-- values. Their `customer_keys` rows now exist only while a key is shared
-- by two or more live customers (flagged `duplicate`, one row per holder,
-- for the duplicate report and a customer's duplicates); e-mail and
-- custom-field keys keep a row per live holder. A bulk import wrote four
-- key rows per customer, three of them copies of indexed customer columns;
-- now it writes one (crm-core dedupe.rs, `key_column`).
--
-- The unshared rows of those kinds go. Where a concurrent write left flags
-- wrong (see `rebuild_duplicate_keys`), an unflagged row of a shared key
-- goes as well while its group's flagged rows stay, and a flagged row of a
-- key no longer shared stays: such a key is put right when a customer
-- next takes or leaves it, or at once by rebuilding the keys
-- (`crm dupes --rebuild`).
--
-- SHIPPED once released: never edit; add a new numbered file instead.

DELETE FROM customer_keys WHERE kind IN ('name', 'uscc', 'phone') AND duplicate = 0;
