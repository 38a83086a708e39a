-- 0002: customer pools (公海), recycling rules, pool history, duplicate
-- detection keys and settings (crm-core/src/pool.rs, dedupe.rs, view.rs).
--
-- New customer columns are appended (ALTER TABLE keeps Table::columns()
-- order): `place` (private | deal | public | invalid), the pool, since when
-- the owner holds it, the previous owner and when it was released (for the
-- re-claim cooldown), the lock, the sales activity the rules read, the due
-- date an owner was last warned about, and the survivor of a merge.
-- Contacts get `birthday_md` (MM-DD) so "birthdays in the next N days" is an
-- indexed IN list.
--
-- 0003 belongs to another change (imports); the runner accepts the order.
-- SHIPPED once released: never edit; add a new numbered file instead.

ALTER TABLE customers ADD COLUMN place TEXT NOT NULL DEFAULT 'private';
ALTER TABLE customers ADD COLUMN pool_id TEXT;
ALTER TABLE customers ADD COLUMN owned_since TEXT;
ALTER TABLE customers ADD COLUMN previous_owner_id TEXT;
ALTER TABLE customers ADD COLUMN released_at TEXT;
ALTER TABLE customers ADD COLUMN locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1));
ALTER TABLE customers ADD COLUMN closed_at TEXT;
ALTER TABLE customers ADD COLUMN last_opportunity_at TEXT;
ALTER TABLE customers ADD COLUMN open_opportunities INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN recycle_warned_due TEXT;
ALTER TABLE customers ADD COLUMN merged_into TEXT;
-- Customers owned before this migration have held their owner since creation.
UPDATE customers SET owned_since = created_at WHERE owner_id IS NOT NULL;
CREATE INDEX customers_place ON customers (company_id, place, pool_id);
CREATE INDEX customers_next_follow_up ON customers (company_id, next_follow_up);

ALTER TABLE contacts ADD COLUMN birthday_md TEXT;
UPDATE contacts SET birthday_md = substr(birthday, 6, 5) WHERE birthday IS NOT NULL;
CREATE INDEX contacts_birthday_md ON contacts (company_id, birthday_md);

CREATE TABLE pools (
    id                    TEXT PRIMARY KEY,
    company_id            TEXT NOT NULL,
    version               INTEGER NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    deleted_at            TEXT,
    name                  TEXT NOT NULL,
    admin_ids             TEXT NOT NULL CHECK (json_valid(admin_ids)),
    member_user_ids       TEXT NOT NULL CHECK (json_valid(member_user_ids)),
    member_department_ids TEXT NOT NULL CHECK (json_valid(member_department_ids)),
    limits                TEXT NOT NULL CHECK (json_valid(limits)),
    position              INTEGER NOT NULL
) STRICT;
CREATE INDEX pools_company_id ON pools (company_id);
CREATE UNIQUE INDEX pools_name_live ON pools (company_id, name) WHERE deleted_at IS NULL;

CREATE TABLE pool_rules (
    id                        TEXT PRIMARY KEY,
    company_id                TEXT NOT NULL,
    version                   INTEGER NOT NULL,
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL,
    deleted_at                TEXT,
    pool_id                   TEXT NOT NULL,
    kind                      TEXT NOT NULL,
    days                      INTEGER NOT NULL,
    level_days                TEXT NOT NULL CHECK (json_valid(level_days)),
    exempt_deals              INTEGER NOT NULL CHECK (exempt_deals IN (0, 1)),
    exempt_open_opportunities INTEGER NOT NULL CHECK (exempt_open_opportunities IN (0, 1)),
    enabled                   INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    position                  INTEGER NOT NULL
) STRICT;
CREATE INDEX pool_rules_company_id ON pool_rules (company_id);
CREATE INDEX pool_rules_pool ON pool_rules (pool_id);

CREATE TABLE pool_moves (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    action      TEXT NOT NULL,
    from_place  TEXT NOT NULL,
    to_place    TEXT NOT NULL,
    pool_id     TEXT,
    from_owner  TEXT,
    to_owner    TEXT,
    actor_id    TEXT,
    rule_id     TEXT,
    reason      TEXT,
    -- The customer's version after the move: orders moves of one instant.
    customer_version INTEGER NOT NULL
) STRICT;
CREATE INDEX pool_moves_company_id ON pool_moves (company_id);
CREATE INDEX pool_moves_customer ON pool_moves (customer_id, created_at);
-- Daily claim counts and "recently transferred to me".
CREATE INDEX pool_moves_to_owner ON pool_moves (company_id, to_owner, created_at);

CREATE TABLE customer_keys (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    duplicate   INTEGER NOT NULL CHECK (duplicate IN (0, 1))
) STRICT;
-- The duplicate check: one index probe per key, whatever the company size.
CREATE INDEX customer_keys_lookup ON customer_keys (company_id, kind, key);
CREATE INDEX customer_keys_customer ON customer_keys (customer_id);
-- The company-wide report walks only the keys shared by several customers.
CREATE INDEX customer_keys_duplicates ON customer_keys (company_id, duplicate, kind, key);

CREATE TABLE dedupe_rules (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    field       TEXT NOT NULL,
    mode        TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX dedupe_rules_field_live ON dedupe_rules (company_id, field) WHERE deleted_at IS NULL;

-- Keys of the customers that exist already. A key row's id is its
-- customer's id with the version nibble replaced by a digit per kind
-- (1 name, 2 credit code, 3 phone, 4 e-mail): unique, and never equal to
-- an id the engine makes (those are version 7). The engine keeps the keys
-- from here on; `Crm::rebuild_duplicate_keys` recomputes them.
INSERT INTO customer_keys
    (id, company_id, version, created_at, updated_at, deleted_at, customer_id, kind, key, duplicate)
SELECT substr(id, 1, 14) || digit || substr(id, 16), company_id, 1, updated_at, updated_at, NULL,
       id, kind, key, 0
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
);
UPDATE customer_keys SET duplicate = 1
WHERE (company_id, kind, key) IN (
    SELECT company_id, kind, key FROM customer_keys
    GROUP BY company_id, kind, key HAVING COUNT(*) > 1
);
