-- 0005: cheaper key writes. Bulk imports spent about a third of the cost of
-- a `customer_keys` insert maintaining `customer_keys_duplicates_idx`,
-- although only the rare rows flagged `duplicate` (keys shared by several
-- customers) are ever read through it: the company-wide report filters on
-- `duplicate`, ordered by kind and key. A partial index holds just those
-- rows; an unflagged key is no longer written into it at all.
--
-- PostgreSQL uses a partial index only when the query's WHERE clause implies
-- the index's, and in the generic plan of a prepared statement (which the
-- store's statements get after five runs) `duplicate = $n` does not; so the
-- query compiler writes equality with a boolean as the literal
-- `TRUE`/`FALSE` (src/select.rs).
-- `kind` and `key` stay `COLLATE "C"`, as in 0002: the report compares and
-- sorts them in byte order, and equality on them is written in "C"
-- (`indexed_in_c` in src/sql.rs), so the index serves both.
--
-- The single-column `company_id` indexes below are prefixes of another index
-- of their table (e.g. `customers_company_id_id (company_id, id)`): every
-- plan that probes `company_id` through them probes the same way through the
-- longer index, so they only cost writes.
--
-- Runs with search_path set to the CRM schema only; names are unqualified.
-- SHIPPED once released: never edit; add a new numbered file instead.

DROP INDEX customer_keys_duplicates_idx;
CREATE INDEX customer_keys_duplicate_rows_idx
    ON customer_keys (company_id, kind COLLATE "C", key COLLATE "C")
    WHERE duplicate;

DROP INDEX customers_company_id_idx;          -- customers_company_id_id (company_id, id) …
DROP INDEX contacts_company_id_idx;           -- contacts_company_id_id (company_id, id) …
DROP INDEX follow_ups_company_id_idx;         -- follow_ups_company_id_id (company_id, id)
DROP INDEX pool_moves_company_id_idx;         -- pool_moves_to_owner_idx (company_id, to_owner, created_at)
DROP INDEX approval_instances_company_id_idx; -- approval_instances_status (company_id, status)
DROP INDEX contracts_company_id_idx;          -- contracts_end_on (company_id, end_on)
