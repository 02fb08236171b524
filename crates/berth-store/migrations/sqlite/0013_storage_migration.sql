-- `berth storage migrate` writes one row here in the database it moves an
-- embedded registry into, so that a second run can tell "a previous run of
-- the same migration, resume it" from "someone else's registry, refuse".
-- The table exists in SQLite too only to keep the two migration sets in
-- step; nothing writes it there. Times are unix milliseconds.
CREATE TABLE storage_migration (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    source       TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
