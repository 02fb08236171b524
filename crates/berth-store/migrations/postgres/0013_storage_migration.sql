-- PostgreSQL version of migrations/sqlite/0013_storage_migration.sql.
-- `berth storage migrate` writes one row here in the database it moves an
-- embedded registry into, so that a second run can tell "a previous run of
-- the same migration, resume it" from "someone else's registry, refuse".
-- Times are unix milliseconds.
CREATE TABLE storage_migration (
    id           BIGINT  PRIMARY KEY CHECK (id = 1),
    source       TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT
);
