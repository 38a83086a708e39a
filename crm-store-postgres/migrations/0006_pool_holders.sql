-- 0006: pool caps that hold against concurrent claims. A claim (or an
-- assignment) counts what the user and the user's department already hold,
-- then moves the customer; two claims reading the counts at the same time
-- could both pass a cap of which only one slot was left. Every claim and
-- assignment now also bumps the version of its holder's rows here, in the
-- transaction that moves the customer: the second writer waits on the row
-- lock, finds the version changed, and fails with a version conflict; the
-- engine then counts again (crm-core/src/pool.rs, `Holding`). Only moves
-- under a cap bump the rows their cap depends on, so uncapped claims never
-- contend. A row's id is the user's or the department's id; the first such
-- move of a holder inserts it.
--
-- Runs with search_path set to the CRM schema only; names are unqualified.
-- SHIPPED once released: never edit; add a new numbered file instead.

CREATE TABLE pool_holders (
    id uuid PRIMARY KEY,
    company_id uuid NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    kind text NOT NULL
);
