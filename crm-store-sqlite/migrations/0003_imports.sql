-- 0003: spreadsheet imports (crm-core/src/import.rs). `imports` holds one row
-- per import with its options, checkpoint (`rows_done`: the last sheet row of
-- the last committed batch) and counts; `import_items` one row per committed
-- batch with what it created and the before-images of what it updated, so an
-- import can be resumed and undone. No foreign keys: items outlive nothing
-- and the records they name may be purged independently.
--
-- 0002 belongs to another change (customer pools); the runner accepts the gap.
-- SHIPPED once released: never edit; add a new numbered file instead.

CREATE TABLE imports (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    entity        TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    file_hash     TEXT NOT NULL,
    options       TEXT NOT NULL CHECK (json_valid(options)),
    status        TEXT NOT NULL,
    rows_done     INTEGER NOT NULL,
    created       INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    skipped       INTEGER NOT NULL,
    rejected      INTEGER NOT NULL,
    finished_at   TEXT
) STRICT;
CREATE INDEX imports_company_hash ON imports (company_id, file_hash);

CREATE TABLE import_items (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    import_id     TEXT NOT NULL,
    batch         INTEGER NOT NULL,
    first_row     INTEGER NOT NULL,
    last_row      INTEGER NOT NULL,
    created_ids   TEXT NOT NULL CHECK (json_valid(created_ids)),
    updated       TEXT NOT NULL CHECK (json_valid(updated))
) STRICT;
CREATE INDEX import_items_import ON import_items (import_id, batch);

-- Exports page through a list by id (`id > last`; ids are time-ordered
-- UUIDv7); with this index each page is one range read instead of a sort of
-- the company's rows.
CREATE INDEX customers_company_id_id ON customers (company_id, id);
CREATE INDEX contacts_company_id_id ON contacts (company_id, id);
CREATE INDEX follow_ups_company_id_id ON follow_ups (company_id, id);
