-- 0001: the initial schema. One table per crm_core::schema::Table with exactly
-- the columns of Table::columns(), in that order, plus the audit log, the
-- outbox, outbox cursors and per-company sequences.
--
-- Runs with search_path set to the CRM schema only; names are unqualified.
-- SHIPPED: never edit this file, add a new numbered migration instead.

CREATE TABLE companies (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    name text NOT NULL,
    code text NOT NULL
);

CREATE TABLE departments (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    name text NOT NULL,
    parent_id uuid,
    manager_id uuid,
    position bigint NOT NULL
);

CREATE TABLE roles (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    name text NOT NULL,
    is_admin boolean NOT NULL,
    permissions jsonb NOT NULL,
    field_rules jsonb NOT NULL
);

CREATE TABLE user_groups (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    name text NOT NULL,
    member_ids jsonb NOT NULL
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    username text NOT NULL,
    display_name text NOT NULL,
    pinyin_keys text NOT NULL,
    department_id uuid,
    superior_id uuid,
    role_ids jsonb NOT NULL,
    email text,
    mobile text,
    active boolean NOT NULL,
    password_hash text,
    failed_logins bigint NOT NULL,
    locked_until timestamptz
);

CREATE TABLE custom_fields (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    entity text NOT NULL,
    key text NOT NULL,
    label text NOT NULL,
    label_en text,
    field_type text NOT NULL,
    options jsonb NOT NULL,
    required boolean NOT NULL,
    is_unique boolean NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE picklists (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    entity text NOT NULL,
    field text NOT NULL,
    options jsonb NOT NULL
);

CREATE TABLE shares (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    user_id uuid NOT NULL,
    access text NOT NULL,
    expires_at timestamptz,
    granted_by uuid NOT NULL
);

CREATE TABLE customers (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    owner_id uuid,
    department_id uuid,
    created_by uuid,
    archived_at timestamptz,
    custom jsonb NOT NULL,
    code text,
    name text NOT NULL,
    short_name text,
    kind text NOT NULL,
    category text,
    level text,
    source text,
    industry text,
    province text,
    city text,
    district text,
    address text,
    phone text,
    phone_key text,
    email text,
    website text,
    uscc text,
    name_key text NOT NULL,
    pinyin_keys text NOT NULL,
    tags text,
    next_follow_up date,
    last_follow_up_at timestamptz,
    notes text,
    attachments jsonb NOT NULL
);

CREATE TABLE contacts (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    owner_id uuid,
    department_id uuid,
    created_by uuid,
    archived_at timestamptz,
    custom jsonb NOT NULL,
    code text,
    customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name text NOT NULL,
    pinyin_keys text NOT NULL,
    title text,
    department_name text,
    mobile text,
    mobile_key text,
    phone text,
    phone_key text,
    email text,
    wechat text,
    birthday date,
    decision_role text,
    id_number text,
    notes text
);

CREATE TABLE follow_ups (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    owner_id uuid,
    department_id uuid,
    created_by uuid,
    archived_at timestamptz,
    custom jsonb NOT NULL,
    code text,
    customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    channel text NOT NULL,
    content text NOT NULL,
    occurred_at timestamptz NOT NULL,
    next_follow_up_at timestamptz
);

CREATE TABLE audit_log (
    seq bigserial PRIMARY KEY,
    company_id uuid NOT NULL,
    table_name text NOT NULL,
    record_id uuid NOT NULL,
    actor_id uuid,
    at timestamptz NOT NULL,
    action text NOT NULL,
    changes jsonb NOT NULL
);

CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    company_id uuid NOT NULL,
    event_type text NOT NULL,
    table_name text NOT NULL,
    record_id uuid NOT NULL,
    payload jsonb NOT NULL,
    at timestamptz NOT NULL
);

CREATE TABLE outbox_cursors (
    consumer text PRIMARY KEY,
    seq bigint NOT NULL
);

CREATE TABLE sequences (
    company_id uuid NOT NULL,
    key text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (company_id, key)
);

-- company_id on every table.
CREATE INDEX companies_company_id_idx ON companies (company_id);
CREATE INDEX departments_company_id_idx ON departments (company_id);
CREATE INDEX roles_company_id_idx ON roles (company_id);
CREATE INDEX user_groups_company_id_idx ON user_groups (company_id);
CREATE INDEX users_company_id_idx ON users (company_id);
CREATE INDEX custom_fields_company_id_idx ON custom_fields (company_id);
CREATE INDEX picklists_company_id_idx ON picklists (company_id);
CREATE INDEX shares_company_id_idx ON shares (company_id);
CREATE INDEX customers_company_id_idx ON customers (company_id);
CREATE INDEX contacts_company_id_idx ON contacts (company_id);
CREATE INDEX follow_ups_company_id_idx ON follow_ups (company_id);

-- Lookups the core does (duplicate checks, owner lists, related records).
CREATE INDEX customers_name_key_idx ON customers (company_id, name_key);
CREATE INDEX customers_uscc_idx ON customers (company_id, uscc);
CREATE INDEX customers_phone_key_idx ON customers (company_id, phone_key);
CREATE INDEX customers_owner_id_idx ON customers (company_id, owner_id);
CREATE INDEX contacts_customer_id_idx ON contacts (customer_id);
CREATE INDEX contacts_mobile_key_idx ON contacts (company_id, mobile_key);
CREATE INDEX contacts_phone_key_idx ON contacts (company_id, phone_key);
CREATE INDEX follow_ups_customer_id_idx ON follow_ups (customer_id);
CREATE INDEX follow_ups_contact_id_idx ON follow_ups (contact_id);
CREATE INDEX shares_record_user_idx ON shares (record_id, user_id);
CREATE INDEX audit_log_record_idx ON audit_log (table_name, record_id);

-- Uniqueness among live rows.
CREATE UNIQUE INDEX users_username_key ON users (company_id, username)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX custom_fields_key_key ON custom_fields (company_id, entity, key)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX picklists_field_key ON picklists (company_id, entity, field)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX customers_code_key ON customers (company_id, code)
    WHERE deleted_at IS NULL AND code IS NOT NULL;
CREATE UNIQUE INDEX contacts_code_key ON contacts (company_id, code)
    WHERE deleted_at IS NULL AND code IS NOT NULL;
CREATE UNIQUE INDEX companies_code_key ON companies (code)
    WHERE deleted_at IS NULL;
