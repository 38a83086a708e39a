-- 0007: index shapes for bulk imports, pool caps and data scopes.
--
-- Cheaper random-key indexes for bulk writes. The duplicate-key
-- lookups (`customer_keys` by kind and key; customers by normalised name,
-- credit code and phone) were indexed as `(company_id, …)`. A key's value
-- already tells companies apart in practice — the same USCC or phone number
-- in two companies of one database is rare — while `company_id`, a
-- 36-character text, made up more than half of every entry. These indexes
-- receive their entries in random order, so each batch of an import dirties
-- most of their pages and writes them to the WAL again at commit; smaller
-- entries mean fewer pages. Measured on the 100 000-row import's rows
-- written in batches of 1 000 customers: customers 3.3 s → 2.5 s,
-- customer_keys 2.8 s → 1.7 s.
--
-- Queries still say `company_id = ?`: it is checked on the rows the index
-- finds. The trade-offs: a key shared by many companies of one database
-- (the same real company prospected by many tenants) makes each probe read
-- every tenant's rows of it — SQLite is the embedded store, usually of one
-- or a few companies; PostgreSQL keeps `company_id` first in these indexes
-- (16-byte uuids there). And a list sorted by phone or credit code is now
-- sorted, not read in index order (lists sort by name or time by default).
--
-- The key comes before its kind: a handful of kinds would make `kind` look
-- selective to the planner's hand-written statistics (src/stats.rs), which
-- take any column but `company_id` to narrow to a few rows, and it would
-- then walk this index for the duplicate report (`kind IN (…)`) instead of
-- the partial index of flagged keys. New names, so that the store writes
-- fresh planner statistics for them (src/stats.rs keeps existing rows,
-- keyed by index name).
--
-- Customers also get an index by department: the per-department pool caps
-- counted a department's customers by walking the whole company. It and
-- the owner's index carry the place and the two lifecycle columns, so that
-- counting what a user or a department holds (every capped claim does)
-- reads the index alone, not every customer's row: 40 ms → under 1 ms for
-- an owner and about 8 ms for a department at 100 000 customers. Those
-- columns are short or NULL, and an owner's or a department's entries sit
-- together, so inserts land on few pages. The data scopes' customer lists
-- and counts use them too: their condition (owner in …, or department in
-- …, or shared with me) is read term by term through the owner's, the
-- department's and the (company_id, id) index, the shared records found
-- through `shares_user` (src/query.rs writes the share term as
-- `id IN (…)`): a sales person's list at 100 000 customers no longer walks
-- the company. `shares_user` ends with the record so that it also answers
-- "this user's share of this record" as well as `shares_record_user`, which
-- the planner would otherwise no longer prefer. The other owned tables
-- (contacts, follow-ups, opportunities, quotes, contracts) get owner and
-- department indexes for the same reason: "my contacts", "my team's
-- contracts" read their own rows, not the company's.
--
-- SHIPPED once released: never edit; add a new numbered file instead.

DROP INDEX customer_keys_lookup;
CREATE INDEX customer_keys_by_key ON customer_keys (key, kind);

DROP INDEX customers_name_key;
CREATE INDEX customers_by_name_key ON customers (name_key);
DROP INDEX customers_uscc;
CREATE INDEX customers_by_uscc ON customers (uscc);
DROP INDEX customers_phone_key;
CREATE INDEX customers_by_phone_key ON customers (phone_key);
DROP INDEX customers_owner;
CREATE INDEX customers_owner_place
    ON customers (company_id, owner_id, place, deleted_at, archived_at);
CREATE INDEX customers_department_place
    ON customers (company_id, department_id, place, deleted_at, archived_at);
CREATE INDEX shares_user ON shares (user_id, entity, record_id);
CREATE INDEX contacts_owner ON contacts (company_id, owner_id);
CREATE INDEX contacts_department ON contacts (company_id, department_id);
CREATE INDEX follow_ups_owner ON follow_ups (company_id, owner_id);
CREATE INDEX follow_ups_department ON follow_ups (company_id, department_id);
CREATE INDEX opportunities_department ON opportunities (company_id, department_id);
CREATE INDEX quotes_owner ON quotes (company_id, owner_id);
CREATE INDEX quotes_department ON quotes (company_id, department_id);
CREATE INDEX contracts_owner ON contracts (company_id, owner_id);
CREATE INDEX contracts_department ON contracts (company_id, department_id);
-- Now prefixes of the indexes above, so they only cost writes (0005).
DROP INDEX opportunities_company_id;     -- opportunities_department (company_id, department_id)
DROP INDEX quotes_company_id;            -- quotes_owner (company_id, owner_id)
