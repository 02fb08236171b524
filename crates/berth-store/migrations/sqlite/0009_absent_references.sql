-- References a sparse manifest was accepted with although their content was
-- never pushed to the repository (berth serve --sparse-manifests): layers of
-- image manifests and children of indexes. Read only when a pull of such a
-- digest answers 404, to say that it was never pushed; rows whose manifest
-- is gone are ignored (joined against manifests).
CREATE TABLE absent_references (
    repository_id   INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest          TEXT    NOT NULL,
    manifest_digest TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest, manifest_digest)
);
