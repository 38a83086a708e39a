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
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL,
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    deleted_at   timestamptz,
    doc_type     text NOT NULL,
    name         text NOT NULL,
    flow_version bigint NOT NULL,
    active       boolean NOT NULL,
    definition   jsonb NOT NULL,
    created_by   uuid
);
CREATE INDEX approval_flows_company_id_idx ON approval_flows (company_id);
CREATE UNIQUE INDEX approval_flows_doc_version ON approval_flows (company_id, doc_type, flow_version) WHERE deleted_at IS NULL;

CREATE TABLE approval_instances (
    id            uuid PRIMARY KEY,
    company_id    uuid NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    flow_id       uuid NOT NULL,
    flow_version  bigint NOT NULL,
    doc_type      text NOT NULL,
    document_id   uuid NOT NULL,
    document_code text,
    title         text,
    applicant_id  uuid NOT NULL,
    status        text NOT NULL,
    pending_with  text NOT NULL,
    amount        bigint,
    state         jsonb NOT NULL,
    finished_at   timestamptz
);
CREATE INDEX approval_instances_company_id_idx ON approval_instances (company_id);
CREATE INDEX approval_instances_document ON approval_instances (document_id);
CREATE INDEX approval_instances_status ON approval_instances (company_id, status);

CREATE TABLE approval_actions (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    instance_id uuid NOT NULL,
    seq         bigint NOT NULL,
    action      text NOT NULL,
    actor_id    uuid,
    step_index  bigint,
    step_name   text,
    to_step     bigint,
    comment     text
);
CREATE INDEX approval_actions_company_id_idx ON approval_actions (company_id);
CREATE INDEX approval_actions_instance ON approval_actions (instance_id, seq);

CREATE TABLE product_categories (
    id         uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version    bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    name       text NOT NULL,
    code       text NOT NULL,
    parent_id  uuid,
    position   bigint NOT NULL
);
CREATE INDEX product_categories_company_id_idx ON product_categories (company_id);
CREATE UNIQUE INDEX product_categories_code_live ON product_categories (company_id, code) WHERE deleted_at IS NULL;

CREATE TABLE products (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    code        text NOT NULL,
    name        text NOT NULL,
    pinyin_keys text NOT NULL,
    category_id uuid,
    unit        text NOT NULL,
    list_price  bigint NOT NULL,
    cost        bigint,
    tax_rate    bigint NOT NULL,
    spec        text,
    description text,
    status      text NOT NULL,
    custom      jsonb NOT NULL
);
CREATE INDEX products_company_id_idx ON products (company_id);
CREATE UNIQUE INDEX products_code_live ON products (company_id, code) WHERE deleted_at IS NULL;
CREATE INDEX products_category ON products (category_id);

CREATE TABLE pipelines (
    id            uuid PRIMARY KEY,
    company_id    uuid NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    name          text NOT NULL,
    department_id uuid,
    active        boolean NOT NULL,
    definition    jsonb NOT NULL
);
CREATE INDEX pipelines_company_id_idx ON pipelines (company_id);

CREATE TABLE opportunities (
    id               uuid PRIMARY KEY,
    company_id       uuid NOT NULL,
    version          bigint NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    owner_id         uuid,
    department_id    uuid,
    created_by       uuid,
    archived_at      timestamptz,
    custom           jsonb NOT NULL,
    code             text,
    name             text NOT NULL,
    pinyin_keys      text NOT NULL,
    customer_id      uuid NOT NULL,
    pipeline_id      uuid,
    stage            text NOT NULL,
    status           text NOT NULL,
    probability      bigint NOT NULL,
    amount           bigint NOT NULL,
    expected_close   date,
    lost_reason      text,
    source           text,
    products         jsonb NOT NULL,
    competitors      jsonb NOT NULL,
    stage_history    jsonb NOT NULL,
    stage_entered_at timestamptz NOT NULL,
    closed_at        timestamptz,
    notes            text
);
CREATE INDEX opportunities_company_id_idx ON opportunities (company_id);
CREATE UNIQUE INDEX opportunities_code_live ON opportunities (company_id, code) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_customer ON opportunities (customer_id);
CREATE INDEX opportunities_owner ON opportunities (owner_id);

CREATE TABLE quotes (
    id              uuid PRIMARY KEY,
    company_id      uuid NOT NULL,
    version         bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    owner_id        uuid,
    department_id   uuid,
    created_by      uuid,
    archived_at     timestamptz,
    custom          jsonb NOT NULL,
    code            text,
    title           text NOT NULL,
    pinyin_keys     text NOT NULL,
    customer_id     uuid NOT NULL,
    opportunity_id  uuid,
    root_id         uuid NOT NULL,
    quote_version   bigint NOT NULL,
    status          text NOT NULL,
    lines           jsonb NOT NULL,
    gross           bigint NOT NULL,
    discount        bigint NOT NULL,
    amount          bigint NOT NULL,
    tax             bigint NOT NULL,
    max_discount_bp bigint NOT NULL,
    valid_until     date,
    contract_id     uuid,
    notes           text
);
CREATE INDEX quotes_company_id_idx ON quotes (company_id);
CREATE INDEX quotes_root ON quotes (root_id, quote_version);
CREATE INDEX quotes_customer ON quotes (customer_id);

CREATE TABLE contracts (
    id                uuid PRIMARY KEY,
    company_id        uuid NOT NULL,
    version           bigint NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    deleted_at        timestamptz,
    owner_id          uuid,
    department_id     uuid,
    created_by        uuid,
    archived_at       timestamptz,
    custom            jsonb NOT NULL,
    code              text,
    title             text NOT NULL,
    pinyin_keys       text NOT NULL,
    customer_id       uuid NOT NULL,
    opportunity_id    uuid,
    quote_id          uuid,
    contract_type     text NOT NULL,
    status            text NOT NULL,
    lines             jsonb NOT NULL,
    amount            bigint NOT NULL,
    tax               bigint NOT NULL,
    signed_on         date,
    start_on          date,
    end_on            date,
    received          bigint NOT NULL,
    outstanding       bigint NOT NULL,
    invoiced          bigint NOT NULL,
    terminated_reason text,
    notes             text
);
CREATE INDEX contracts_company_id_idx ON contracts (company_id);
CREATE UNIQUE INDEX contracts_code_live ON contracts (company_id, code) WHERE deleted_at IS NULL;
CREATE INDEX contracts_customer ON contracts (customer_id);
CREATE INDEX contracts_end_on ON contracts (company_id, end_on);

CREATE TABLE payment_plans (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    contract_id uuid NOT NULL,
    instalment  bigint NOT NULL,
    due_on      date NOT NULL,
    amount      bigint NOT NULL,
    notes       text
);
CREATE INDEX payment_plans_company_id_idx ON payment_plans (company_id);
CREATE INDEX payment_plans_contract ON payment_plans (contract_id);

CREATE TABLE payments (
    id          uuid PRIMARY KEY,
    company_id  uuid NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    contract_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    plan_id     uuid,
    amount      bigint NOT NULL,
    received_on date NOT NULL,
    method      text NOT NULL,
    status      text NOT NULL,
    receipt_no  text,
    notes       text,
    recorded_by uuid NOT NULL
);
CREATE INDEX payments_company_id_idx ON payments (company_id);
CREATE INDEX payments_contract ON payments (contract_id);

CREATE TABLE invoices (
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL,
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    deleted_at   timestamptz,
    contract_id  uuid NOT NULL,
    customer_id  uuid NOT NULL,
    kind         text NOT NULL,
    invoice_type text NOT NULL,
    amount       bigint NOT NULL,
    number       text,
    invoice_date date,
    notes        text
);
CREATE INDEX invoices_company_id_idx ON invoices (company_id);
CREATE INDEX invoices_contract ON invoices (contract_id);

CREATE TABLE deliveries (
    id           uuid PRIMARY KEY,
    company_id   uuid NOT NULL,
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    deleted_at   timestamptz,
    contract_id  uuid NOT NULL,
    delivered_on date NOT NULL,
    lines        jsonb NOT NULL,
    notes        text
);
CREATE INDEX deliveries_company_id_idx ON deliveries (company_id);
CREATE INDEX deliveries_contract ON deliveries (contract_id);
