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

-- Tokens told "insufficient_scope" (401), shared by the replicas on one
-- PostgreSQL database: a client that comes back with the same token gets
-- 403 DENIED (oras-py refreshes its token only after a 403), whichever
-- replica it reaches. The embedded registry keeps this in memory only.
-- struck_at is unix seconds.
CREATE TABLE token_strikes (
    jti        TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    struck_at  BIGINT NOT NULL,
    PRIMARY KEY (jti, scope)
);
CREATE INDEX token_strikes_at ON token_strikes (struck_at);
