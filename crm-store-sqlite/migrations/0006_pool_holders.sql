-- 0006: pool caps that hold against concurrent claims. A claim (or an
-- assignment) counts what the user and the user's department already hold,
-- then moves the customer; two claims reading the counts at the same time
-- could both pass a cap of which only one slot was left. Every claim and
-- assignment now also bumps the version of its holder's rows here, in the
-- transaction that moves the customer: one that counted before another
-- committed fails with a version conflict and counts again
-- (crm-core/src/pool.rs, `Holding`). Only moves under a cap bump the rows
-- their cap depends on, so uncapped claims never contend. A row's id is the
-- user's or the department's id; the first such move of a holder inserts
-- it.
--
-- SHIPPED once released: never edit; add a new numbered file instead.

CREATE TABLE pool_holders (
    id         TEXT PRIMARY KEY,
    company_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    kind       TEXT NOT NULL
) STRICT;
