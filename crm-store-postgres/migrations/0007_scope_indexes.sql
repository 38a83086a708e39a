-- 0007: scoped lists read through indexes. A user's data scope is "owner in
-- …, or department in …, or shared with me"; the query compiler writes the
-- share term as `id = ANY(ARRAY(SELECT record_id FROM shares …))`
-- (src/select.rs), so that each term is an index condition and the three
-- combine in a BitmapOr instead of a scan of the company's rows. Customers
-- had `customers_owner_id_idx` and opportunities `opportunities_owner`;
-- these add the other owner and department terms' indexes (the customers'
-- department index is also what the pools' per-department caps count) and
-- the lookup of the records shared with a user (ending with the record, so
-- it also answers "this user's share of this record").
--
-- Runs with search_path set to the CRM schema only; names are unqualified.
-- SHIPPED once released: never edit; add a new numbered file instead.

CREATE INDEX customers_department_idx ON customers (company_id, department_id);
CREATE INDEX shares_user_idx ON shares (user_id, entity, record_id);
CREATE INDEX contacts_owner_idx ON contacts (company_id, owner_id);
CREATE INDEX contacts_department_idx ON contacts (company_id, department_id);
CREATE INDEX follow_ups_owner_idx ON follow_ups (company_id, owner_id);
CREATE INDEX follow_ups_department_idx ON follow_ups (company_id, department_id);
CREATE INDEX opportunities_department_idx ON opportunities (company_id, department_id);
CREATE INDEX quotes_owner_idx ON quotes (company_id, owner_id);
CREATE INDEX quotes_department_idx ON quotes (company_id, department_id);
CREATE INDEX contracts_owner_idx ON contracts (company_id, owner_id);
CREATE INDEX contracts_department_idx ON contracts (company_id, department_id);
-- Now prefixes of the indexes above, so they only cost writes (0005).
DROP INDEX opportunities_company_id_idx; -- opportunities_department_idx (company_id, department_id)
DROP INDEX quotes_company_id_idx;        -- quotes_owner_idx (company_id, owner_id)
