-- 0007: scoped customer lists read through indexes. A user's data scope is
-- "owner in …, or department in …, or shared with me"; for customers the
-- query compiler writes the share term as
-- `id = ANY(ARRAY(SELECT record_id FROM shares …))` (src/select.rs), so that
-- each term is an index condition and the three combine in a BitmapOr
-- instead of a scan of the company's rows. The owner
-- term has `customers_owner_id_idx`; these add the department term's index
-- (also what the pools' per-department caps count) and the lookup of the
-- records shared with a user.
--
-- Runs with search_path set to the CRM schema only; names are unqualified.
-- SHIPPED once released: never edit; add a new numbered file instead.

CREATE INDEX customers_department_idx ON customers (company_id, department_id);
CREATE INDEX shares_user_idx ON shares (user_id, entity);
