-- 0003: spreadsheet imports (crm-core/src/import.rs). `imports` holds one row
-- per import with its options, checkpoint (`rows_done`: the last sheet row of
-- the last committed batch) and counts; `import_items` one row per committed
-- batch with what it created and the before-images of what it updated, so an
-- import can be resumed and undone. No foreign keys.
--
-- 0002 belongs to another change (customer pools); the runner accepts the gap.
-- Runs with search_path set to the CRM schema only; names are unqualified.

CREATE TABLE imports (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    entity text NOT NULL,
    actor_id uuid NOT NULL,
    file_name text NOT NULL,
    file_hash text NOT NULL,
    options jsonb NOT NULL,
    status text NOT NULL,
    rows_done bigint NOT NULL,
    created bigint NOT NULL,
    updated bigint NOT NULL,
    skipped bigint NOT NULL,
    rejected bigint NOT NULL,
    finished_at timestamptz
);
CREATE INDEX imports_company_hash ON imports (company_id, file_hash);

CREATE TABLE import_items (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    import_id uuid NOT NULL,
    batch bigint NOT NULL,
    first_row bigint NOT NULL,
    last_row bigint NOT NULL,
    created_ids jsonb NOT NULL,
    updated jsonb NOT NULL
);
CREATE INDEX import_items_import ON import_items (import_id, batch);

-- Exports page through a list by id (`id > last`; ids are time-ordered
-- UUIDv7); with this index each page is one range read instead of a sort of
-- the company's rows.
CREATE INDEX customers_company_id_id ON customers (company_id, id);
CREATE INDEX contacts_company_id_id ON contacts (company_id, id);
CREATE INDEX follow_ups_company_id_id ON follow_ups (company_id, id);
