-- 0006: duplicate keys compare byte-wise in their own right.
--
-- `customer_keys_lookup_idx` and `customer_keys_duplicates_idx` index `kind`
-- and `key` with COLLATE "C" (byte order, like SQLite), but the columns had
-- the database's default collation. A probe `key = ANY($n)` (the import's and
-- `index_customer_keys`' one statement per key kind and batch) compares with
-- the column's collation, so the index served only `(company_id, kind)`: every
-- probe walked all keys of that kind in the company and tested each against
-- the whole array — linear in the company's size per batch, quadratic over an
-- import (a generic plan of 500 keys over 16,000 rows took 0.7 s). With the
-- columns themselves in "C", `kind = $n`, `kind COLLATE "C" = $n` and
-- `key = ANY($n)` all match the indexes. Equality is byte equality under any
-- deterministic collation, so no result changes; ordering was "C" already.
--
-- 0005 belongs to another change; the runner accepts the gap.
-- Runs with search_path set to the CRM schema only; names are unqualified.

ALTER TABLE customer_keys
    ALTER COLUMN kind TYPE text COLLATE "C",
    ALTER COLUMN key TYPE text COLLATE "C";
