-- PostgreSQL version of migrations/sqlite/0011_gc.sql (BIGINT integers).
-- Garbage collection (docs/architecture.md, "Garbage collection").
--
-- What each manifest references, recorded when it is pushed, so that the
-- collector can decide in SQL (inside the transaction that deletes) whether
-- a blob link is still needed. The foreign keys are the race rule: a
-- reference row can only be written while its blob link (or child manifest)
-- exists, and a link (or child) cannot be deleted while a reference row
-- names it. A manifest PUT and the sweep of a link therefore serialize on
-- the link's row: either the PUT commits first and the sweep keeps the link,
-- or the sweep commits first and the PUT fails with MANIFEST_BLOB_UNKNOWN.
CREATE TABLE manifest_blobs (
    repository_id   BIGINT  NOT NULL,
    manifest_digest TEXT COLLATE "C" NOT NULL,
    digest          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, digest),
    FOREIGN KEY (repository_id, manifest_digest)
        REFERENCES manifests(repository_id, digest) ON DELETE CASCADE,
    FOREIGN KEY (repository_id, digest)
        REFERENCES repository_blobs(repository_id, digest)
);
CREATE INDEX manifest_blobs_link ON manifest_blobs(repository_id, digest);

-- Children of an index (for retention: a manifest an index references is
-- never deleted by the collector).
CREATE TABLE manifest_children (
    repository_id   BIGINT  NOT NULL,
    parent_digest   TEXT COLLATE "C" NOT NULL,
    child_digest    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repository_id, parent_digest, child_digest),
    FOREIGN KEY (repository_id, parent_digest)
        REFERENCES manifests(repository_id, digest) ON DELETE CASCADE,
    FOREIGN KEY (repository_id, child_digest)
        REFERENCES manifests(repository_id, digest)
);
CREATE INDEX manifest_children_child ON manifest_children(repository_id, child_digest);

-- 1 once the manifest's rows in manifest_blobs/manifest_children are
-- written. Manifests pushed before this migration start at 0 and are
-- back-filled by the collector (from their content) before it sweeps; the
-- links of a repository that still has a manifest at 0 are never swept.
ALTER TABLE manifests ADD COLUMN refs_recorded BIGINT NOT NULL DEFAULT 0;

-- The sweep asks, for every link, whether its repository still has such a
-- manifest: answered from this (normally empty) index.
CREATE INDEX manifests_unrecorded ON manifests(repository_id) WHERE refs_recorded = 0;

-- One row per collection (the latest ones are the status the API reports;
-- every replica sees them).
CREATE TABLE gc_runs (
    id          TEXT    PRIMARY KEY,
    replica     TEXT COLLATE "C" NOT NULL,
    dry_run     BIGINT  NOT NULL,
    state       TEXT COLLATE "C" NOT NULL,
    phase       TEXT COLLATE "C" NOT NULL,
    started_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    finished_at BIGINT,
    manifests BIGINT NOT NULL DEFAULT 0,
    links BIGINT NOT NULL DEFAULT 0,
    blobs BIGINT NOT NULL DEFAULT 0,
    bytes_freed BIGINT NOT NULL DEFAULT 0,
    error       TEXT,
    -- JSON: {"deleted": [...], "truncated": bool}, written when the run ends.
    report      TEXT
);
CREATE INDEX gc_runs_started ON gc_runs(started_at);
