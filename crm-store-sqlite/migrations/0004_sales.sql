-- 0004: sales — approval flows (crm-core/src/approval), products,
-- pipelines, opportunities, quotes, contracts, payment plans, payments,
-- invoices and deliveries (crm-core/src/sales). Generated from
-- crm_core::schema::Table::columns(); column order and types must match it.
-- No foreign keys: documents of several kinds are referenced by id and the
-- core checks them.
--
-- 0002 and 0003 belong to other changes; the runner accepts the gap.
-- SHIPPED once released: never edit; add a new numbered file instead.

CREATE TABLE approval_flows (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    deleted_at   TEXT,
    doc_type     TEXT NOT NULL,
    name         TEXT NOT NULL,
    flow_version INTEGER NOT NULL,
    active       INTEGER NOT NULL,
    definition   TEXT NOT NULL CHECK (json_valid(definition)),
    created_by   TEXT
) STRICT;
CREATE INDEX approval_flows_company_id ON approval_flows (company_id);
CREATE UNIQUE INDEX approval_flows_doc_version ON approval_flows (company_id, doc_type, flow_version) WHERE deleted_at IS NULL;

CREATE TABLE approval_instances (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    flow_id       TEXT NOT NULL,
    flow_version  INTEGER NOT NULL,
    doc_type      TEXT NOT NULL,
    document_id   TEXT NOT NULL,
    document_code TEXT,
    title         TEXT,
    applicant_id  TEXT NOT NULL,
    status        TEXT NOT NULL,
    pending_with  TEXT NOT NULL,
    amount        INTEGER,
    state         TEXT NOT NULL CHECK (json_valid(state)),
    finished_at   TEXT
) STRICT;
CREATE INDEX approval_instances_company_id ON approval_instances (company_id);
CREATE INDEX approval_instances_document ON approval_instances (document_id);
CREATE INDEX approval_instances_status ON approval_instances (company_id, status);

CREATE TABLE approval_actions (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    instance_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor_id    TEXT,
    step_index  INTEGER,
    step_name   TEXT,
    to_step     INTEGER,
    comment     TEXT
) STRICT;
CREATE INDEX approval_actions_company_id ON approval_actions (company_id);
CREATE INDEX approval_actions_instance ON approval_actions (instance_id, seq);

CREATE TABLE product_categories (
    id         TEXT PRIMARY KEY,
    company_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    name       TEXT NOT NULL,
    code       TEXT NOT NULL,
    parent_id  TEXT,
    position   INTEGER NOT NULL
) STRICT;
CREATE INDEX product_categories_company_id ON product_categories (company_id);
CREATE UNIQUE INDEX product_categories_code_live ON product_categories (company_id, code) WHERE deleted_at IS NULL;

CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    pinyin_keys TEXT NOT NULL,
    category_id TEXT,
    unit        TEXT NOT NULL,
    list_price  INTEGER NOT NULL,
    cost        INTEGER,
    tax_rate    INTEGER NOT NULL,
    spec        TEXT,
    description TEXT,
    status      TEXT NOT NULL,
    custom      TEXT NOT NULL CHECK (json_valid(custom))
) STRICT;
CREATE INDEX products_company_id ON products (company_id);
CREATE UNIQUE INDEX products_code_live ON products (company_id, code) WHERE deleted_at IS NULL;
CREATE INDEX products_category ON products (category_id);

CREATE TABLE pipelines (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    name          TEXT NOT NULL,
    department_id TEXT,
    active        INTEGER NOT NULL,
    definition    TEXT NOT NULL CHECK (json_valid(definition))
) STRICT;
CREATE INDEX pipelines_company_id ON pipelines (company_id);

CREATE TABLE opportunities (
    id               TEXT PRIMARY KEY,
    company_id       TEXT NOT NULL,
    version          INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT,
    owner_id         TEXT,
    department_id    TEXT,
    created_by       TEXT,
    archived_at      TEXT,
    custom           TEXT NOT NULL CHECK (json_valid(custom)),
    code             TEXT,
    name             TEXT NOT NULL,
    pinyin_keys      TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    pipeline_id      TEXT,
    stage            TEXT NOT NULL,
    status           TEXT NOT NULL,
    probability      INTEGER NOT NULL,
    amount           INTEGER NOT NULL,
    expected_close   TEXT,
    lost_reason      TEXT,
    source           TEXT,
    products         TEXT NOT NULL CHECK (json_valid(products)),
    competitors      TEXT NOT NULL CHECK (json_valid(competitors)),
    stage_history    TEXT NOT NULL CHECK (json_valid(stage_history)),
    stage_entered_at TEXT NOT NULL,
    closed_at        TEXT,
    notes            TEXT
) STRICT;
CREATE INDEX opportunities_company_id ON opportunities (company_id);
CREATE UNIQUE INDEX opportunities_code_live ON opportunities (company_id, code) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_customer ON opportunities (customer_id);
CREATE INDEX opportunities_owner ON opportunities (owner_id);

CREATE TABLE quotes (
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
    title           TEXT NOT NULL,
    pinyin_keys     TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    opportunity_id  TEXT,
    root_id         TEXT NOT NULL,
    quote_version   INTEGER NOT NULL,
    status          TEXT NOT NULL,
    lines           TEXT NOT NULL CHECK (json_valid(lines)),
    gross           INTEGER NOT NULL,
    discount        INTEGER NOT NULL,
    amount          INTEGER NOT NULL,
    tax             INTEGER NOT NULL,
    max_discount_bp INTEGER NOT NULL,
    valid_until     TEXT,
    contract_id     TEXT,
    notes           TEXT
) STRICT;
CREATE INDEX quotes_company_id ON quotes (company_id);
CREATE INDEX quotes_root ON quotes (root_id, quote_version);
CREATE INDEX quotes_customer ON quotes (customer_id);

CREATE TABLE contracts (
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
    title             TEXT NOT NULL,
    pinyin_keys       TEXT NOT NULL,
    customer_id       TEXT NOT NULL,
    opportunity_id    TEXT,
    quote_id          TEXT,
    contract_type     TEXT NOT NULL,
    status            TEXT NOT NULL,
    lines             TEXT NOT NULL CHECK (json_valid(lines)),
    amount            INTEGER NOT NULL,
    tax               INTEGER NOT NULL,
    signed_on         TEXT,
    start_on          TEXT,
    end_on            TEXT,
    received          INTEGER NOT NULL,
    outstanding       INTEGER NOT NULL,
    invoiced          INTEGER NOT NULL,
    terminated_reason TEXT,
    notes             TEXT
) STRICT;
CREATE INDEX contracts_company_id ON contracts (company_id);
CREATE UNIQUE INDEX contracts_code_live ON contracts (company_id, code) WHERE deleted_at IS NULL;
CREATE INDEX contracts_customer ON contracts (customer_id);
CREATE INDEX contracts_end_on ON contracts (company_id, end_on);

CREATE TABLE payment_plans (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    contract_id TEXT NOT NULL,
    instalment  INTEGER NOT NULL,
    due_on      TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    notes       TEXT
) STRICT;
CREATE INDEX payment_plans_company_id ON payment_plans (company_id);
CREATE INDEX payment_plans_contract ON payment_plans (contract_id);

CREATE TABLE payments (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    contract_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    plan_id     TEXT,
    amount      INTEGER NOT NULL,
    received_on TEXT NOT NULL,
    method      TEXT NOT NULL,
    status      TEXT NOT NULL,
    receipt_no  TEXT,
    notes       TEXT,
    recorded_by TEXT NOT NULL
) STRICT;
CREATE INDEX payments_company_id ON payments (company_id);
CREATE INDEX payments_contract ON payments (contract_id);

CREATE TABLE invoices (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    deleted_at   TEXT,
    contract_id  TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    invoice_type TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    number       TEXT,
    invoice_date TEXT,
    notes        TEXT
) STRICT;
CREATE INDEX invoices_company_id ON invoices (company_id);
CREATE INDEX invoices_contract ON invoices (contract_id);

CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    deleted_at   TEXT,
    contract_id  TEXT NOT NULL,
    delivered_on TEXT NOT NULL,
    lines        TEXT NOT NULL CHECK (json_valid(lines)),
    notes        TEXT
) STRICT;
CREATE INDEX deliveries_company_id ON deliveries (company_id);
CREATE INDEX deliveries_contract ON deliveries (contract_id);
