-- 0002: customer pools (公海), recycling rules, pool history, duplicate
-- detection keys and settings (crm-core/src/pool.rs, dedupe.rs, view.rs).
--
-- New customer columns are appended in Table::columns() order: `place`
-- (private | deal | public | invalid), the pool, since when the owner holds
-- it, the previous owner and when it was released (for the re-claim
-- cooldown), the lock, the sales activity the rules read, the due date an
-- owner was last warned about, and the survivor of a merge. Contacts get
-- `birthday_md` (MM-DD) so "birthdays in the next N days" is an indexed IN
-- list.
--
-- Runs with search_path set to the CRM schema only; names are unqualified.
-- 0003 belongs to another change (imports); the runner accepts the order.
-- SHIPPED once released: never edit; add a new numbered file instead.

ALTER TABLE customers
    ADD COLUMN place text NOT NULL DEFAULT 'private',
    ADD COLUMN pool_id uuid,
    ADD COLUMN owned_since timestamptz,
    ADD COLUMN previous_owner_id uuid,
    ADD COLUMN released_at timestamptz,
    ADD COLUMN locked boolean NOT NULL DEFAULT false,
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN last_opportunity_at timestamptz,
    ADD COLUMN open_opportunities bigint NOT NULL DEFAULT 0,
    ADD COLUMN recycle_warned_due timestamptz,
    ADD COLUMN merged_into uuid;
-- Customers owned before this migration have held their owner since creation.
UPDATE customers SET owned_since = created_at WHERE owner_id IS NOT NULL;
CREATE INDEX customers_place_idx ON customers (company_id, place, pool_id);
CREATE INDEX customers_next_follow_up_idx ON customers (company_id, next_follow_up);

ALTER TABLE contacts ADD COLUMN birthday_md text;
UPDATE contacts SET birthday_md = to_char(birthday, 'MM-DD') WHERE birthday IS NOT NULL;
CREATE INDEX contacts_birthday_md_idx ON contacts (company_id, birthday_md);

CREATE TABLE pools (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    name text NOT NULL,
    admin_ids jsonb NOT NULL,
    member_user_ids jsonb NOT NULL,
    member_department_ids jsonb NOT NULL,
    limits jsonb NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX pools_company_id_idx ON pools (company_id);
CREATE UNIQUE INDEX pools_name_key ON pools (company_id, name) WHERE deleted_at IS NULL;

CREATE TABLE pool_rules (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    pool_id uuid NOT NULL,
    kind text NOT NULL,
    days bigint NOT NULL,
    level_days jsonb NOT NULL,
    exempt_deals boolean NOT NULL,
    exempt_open_opportunities boolean NOT NULL,
    enabled boolean NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX pool_rules_company_id_idx ON pool_rules (company_id);
CREATE INDEX pool_rules_pool_idx ON pool_rules (pool_id);

CREATE TABLE pool_moves (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    action text NOT NULL,
    from_place text NOT NULL,
    to_place text NOT NULL,
    pool_id uuid,
    from_owner uuid,
    to_owner uuid,
    actor_id uuid,
    rule_id uuid,
    reason text,
    -- The customer's version after the move: orders moves of one instant.
    customer_version bigint NOT NULL
);
CREATE INDEX pool_moves_company_id_idx ON pool_moves (company_id);
CREATE INDEX pool_moves_customer_idx ON pool_moves (customer_id, created_at);
-- Daily claim counts and "recently transferred to me".
CREATE INDEX pool_moves_to_owner_idx ON pool_moves (company_id, to_owner, created_at);

CREATE TABLE customer_keys (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    kind text NOT NULL,
    key text NOT NULL,
    duplicate boolean NOT NULL
);
-- The duplicate check: one index probe per key, whatever the company size.
CREATE INDEX customer_keys_lookup_idx ON customer_keys (company_id, kind COLLATE "C", key COLLATE "C");
CREATE INDEX customer_keys_customer_idx ON customer_keys (customer_id);
-- The company-wide report walks only the keys shared by several customers.
CREATE INDEX customer_keys_duplicates_idx
    ON customer_keys (company_id, duplicate, kind COLLATE "C", key COLLATE "C");

CREATE TABLE dedupe_rules (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    field text NOT NULL,
    mode text NOT NULL
);
CREATE UNIQUE INDEX dedupe_rules_field_key ON dedupe_rules (company_id, field)
    WHERE deleted_at IS NULL;

-- Keys of the customers that exist already. A key row's id is its
-- customer's id with the version nibble replaced by a digit per kind
-- (1 name, 2 credit code, 3 phone, 4 e-mail): unique, and never equal to
-- an id the engine makes (those are version 7). The engine keeps the keys
-- from here on; `Crm::rebuild_duplicate_keys` recomputes them.
INSERT INTO customer_keys
    (id, company_id, version, created_at, updated_at, deleted_at, customer_id, kind, key, duplicate)
SELECT overlay(id::text PLACING digit FROM 15 FOR 1)::uuid, company_id, 1, updated_at, updated_at,
       NULL, id, kind, key, false
FROM (
    SELECT id, company_id, updated_at, '1' AS digit, 'name' AS kind, name_key AS key
        FROM customers WHERE deleted_at IS NULL AND name_key <> ''
    UNION ALL
    SELECT id, company_id, updated_at, '2', 'uscc', uscc
        FROM customers WHERE deleted_at IS NULL AND uscc IS NOT NULL AND uscc <> ''
    UNION ALL
    SELECT id, company_id, updated_at, '3', 'phone', phone_key
        FROM customers WHERE deleted_at IS NULL AND phone_key IS NOT NULL AND phone_key <> ''
    UNION ALL
    SELECT id, company_id, updated_at, '4', 'email', lower(email)
        FROM customers WHERE deleted_at IS NULL AND email IS NOT NULL AND email <> ''
) k;
UPDATE customer_keys SET duplicate = true
WHERE (company_id, kind, key) IN (
    SELECT company_id, kind, key FROM customer_keys
    GROUP BY company_id, kind, key HAVING COUNT(*) > 1
);
