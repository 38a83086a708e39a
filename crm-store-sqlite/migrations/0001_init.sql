-- 0001: the initial schema. One table per crm_core::schema::Table with exactly
-- the columns of Table::columns(), plus the audit log, the outbox and the
-- per-company sequences.
--
-- Encoding (see src/codec.rs): ids are lowercase hyphenated TEXT, timestamps
-- fixed-width TEXT `YYYY-MM-DDTHH:MM:SS.ffffffZ` (text order = time order),
-- dates TEXT `YYYY-MM-DD`, booleans INTEGER 0/1, JSON TEXT.
--
-- SHIPPED: never edit this file; add 0002_….sql instead (see NOTES.md).

CREATE TABLE companies (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    name          TEXT NOT NULL,
    code          TEXT NOT NULL
) STRICT;
CREATE INDEX companies_company_id ON companies (company_id);
CREATE UNIQUE INDEX companies_code_live ON companies (code) WHERE deleted_at IS NULL;

CREATE TABLE departments (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    name          TEXT NOT NULL,
    parent_id     TEXT,
    manager_id    TEXT,
    position      INTEGER NOT NULL
) STRICT;
CREATE INDEX departments_company_id ON departments (company_id);

CREATE TABLE roles (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    name          TEXT NOT NULL,
    is_admin      INTEGER NOT NULL CHECK (is_admin IN (0, 1)),
    permissions   TEXT NOT NULL CHECK (json_valid(permissions)),
    field_rules   TEXT NOT NULL CHECK (json_valid(field_rules))
) STRICT;
CREATE INDEX roles_company_id ON roles (company_id);

CREATE TABLE user_groups (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    name          TEXT NOT NULL,
    member_ids    TEXT NOT NULL CHECK (json_valid(member_ids))
) STRICT;
CREATE INDEX user_groups_company_id ON user_groups (company_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    pinyin_keys   TEXT NOT NULL,
    department_id TEXT,
    superior_id   TEXT,
    role_ids      TEXT NOT NULL CHECK (json_valid(role_ids)),
    email         TEXT,
    mobile        TEXT,
    active        INTEGER NOT NULL CHECK (active IN (0, 1)),
    password_hash TEXT,
    failed_logins INTEGER NOT NULL,
    locked_until  TEXT
) STRICT;
CREATE INDEX users_company_id ON users (company_id);
CREATE UNIQUE INDEX users_username_live ON users (company_id, username) WHERE deleted_at IS NULL;

CREATE TABLE custom_fields (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    entity        TEXT NOT NULL,
    key           TEXT NOT NULL,
    label         TEXT NOT NULL,
    label_en      TEXT,
    field_type    TEXT NOT NULL,
    options       TEXT NOT NULL CHECK (json_valid(options)),
    required      INTEGER NOT NULL CHECK (required IN (0, 1)),
    is_unique     INTEGER NOT NULL CHECK (is_unique IN (0, 1)),
    position      INTEGER NOT NULL
) STRICT;
CREATE INDEX custom_fields_company_id ON custom_fields (company_id);
CREATE UNIQUE INDEX custom_fields_key_live ON custom_fields (company_id, entity, key) WHERE deleted_at IS NULL;

CREATE TABLE picklists (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    entity        TEXT NOT NULL,
    field         TEXT NOT NULL,
    options       TEXT NOT NULL CHECK (json_valid(options))
) STRICT;
CREATE INDEX picklists_company_id ON picklists (company_id);
CREATE UNIQUE INDEX picklists_field_live ON picklists (company_id, entity, field) WHERE deleted_at IS NULL;

CREATE TABLE shares (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    entity        TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    access        TEXT NOT NULL,
    expires_at    TEXT,
    granted_by    TEXT NOT NULL
) STRICT;
CREATE INDEX shares_company_id ON shares (company_id);
CREATE INDEX shares_record_user ON shares (record_id, user_id);

CREATE TABLE customers (
    id                TEXT PRIMARY KEY,
    company_id        TEXT NOT NULL,
    version           INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    deleted_at        TEXT,
    owner_id          TEXT,
    department_id     TEXT,
    created_by        TEXT,
    archived_at       TEXT,
    custom            TEXT NOT NULL CHECK (json_valid(custom)),
    code              TEXT,
    name              TEXT NOT NULL,
    short_name        TEXT,
    kind              TEXT NOT NULL,
    category          TEXT,
    level             TEXT,
    source            TEXT,
    industry          TEXT,
    province          TEXT,
    city              TEXT,
    district          TEXT,
    address           TEXT,
    phone             TEXT,
    phone_key         TEXT,
    email             TEXT,
    website           TEXT,
    uscc              TEXT,
    name_key          TEXT NOT NULL,
    pinyin_keys       TEXT NOT NULL,
    tags              TEXT,
    next_follow_up    TEXT,
    last_follow_up_at TEXT,
    notes             TEXT,
    attachments       TEXT NOT NULL CHECK (json_valid(attachments))
) STRICT;
CREATE INDEX customers_company_id ON customers (company_id);
CREATE INDEX customers_name_key ON customers (company_id, name_key);
CREATE INDEX customers_uscc ON customers (company_id, uscc);
CREATE INDEX customers_phone_key ON customers (company_id, phone_key);
CREATE INDEX customers_owner ON customers (company_id, owner_id);
CREATE UNIQUE INDEX customers_code_live ON customers (company_id, code)
    WHERE deleted_at IS NULL AND code IS NOT NULL;

CREATE TABLE contacts (
    id              TEXT PRIMARY KEY,
    company_id      TEXT NOT NULL,
    version         INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    deleted_at      TEXT,
    owner_id        TEXT,
    department_id   TEXT,
    created_by      TEXT,
    archived_at     TEXT,
    custom          TEXT NOT NULL CHECK (json_valid(custom)),
    code            TEXT,
    customer_id     TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    pinyin_keys     TEXT NOT NULL,
    title           TEXT,
    department_name TEXT,
    mobile          TEXT,
    mobile_key      TEXT,
    phone           TEXT,
    phone_key       TEXT,
    email           TEXT,
    wechat          TEXT,
    birthday        TEXT,
    decision_role   TEXT,
    id_number       TEXT,
    notes           TEXT
) STRICT;
CREATE INDEX contacts_company_id ON contacts (company_id);
CREATE INDEX contacts_customer_id ON contacts (customer_id);
CREATE INDEX contacts_mobile_key ON contacts (company_id, mobile_key);
CREATE INDEX contacts_phone_key ON contacts (company_id, phone_key);
CREATE UNIQUE INDEX contacts_code_live ON contacts (company_id, code)
    WHERE deleted_at IS NULL AND code IS NOT NULL;

CREATE TABLE follow_ups (
    id                TEXT PRIMARY KEY,
    company_id        TEXT NOT NULL,
    version           INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    deleted_at        TEXT,
    owner_id          TEXT,
    department_id     TEXT,
    created_by        TEXT,
    archived_at       TEXT,
    custom            TEXT NOT NULL CHECK (json_valid(custom)),
    code              TEXT,
    customer_id       TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    contact_id        TEXT REFERENCES contacts (id) ON DELETE SET NULL,
    channel           TEXT NOT NULL,
    content           TEXT NOT NULL,
    occurred_at       TEXT NOT NULL,
    next_follow_up_at TEXT
) STRICT;
CREATE INDEX follow_ups_company_id ON follow_ups (company_id);
CREATE INDEX follow_ups_customer_id ON follow_ups (customer_id);
-- Not asked for by the schema description, but ON DELETE SET NULL on
-- contact_id scans follow_ups without it.
CREATE INDEX follow_ups_contact_id ON follow_ups (contact_id);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id  TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    actor_id    TEXT,
    at          TEXT NOT NULL,
    action      TEXT NOT NULL,
    changes     TEXT NOT NULL CHECK (json_valid(changes))
) STRICT;
CREATE INDEX audit_log_record ON audit_log (table_name, record_id);

CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id  TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    payload     TEXT NOT NULL CHECK (json_valid(payload)),
    at          TEXT NOT NULL
) STRICT;

CREATE TABLE outbox_cursors (
    consumer    TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL
) STRICT;

CREATE TABLE sequences (
    company_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (company_id, key)
) STRICT;
