-- PostgreSQL version of migrations/sqlite/0014_retention.sql.
-- Retention of untagged manifests and `berth repository purge`
-- (docs/architecture.md, "Retention and purge").
--
-- untagged_at: when the manifest lost its last tag (unix milliseconds), or
-- when it was pushed untagged; NULL while a tag points at it. Written in
-- the same transaction as the tag change, so the collector's conditional
-- DELETE (… AND untagged_at < cutoff) and a PUT that tags the manifest
-- serialize on the manifest's row.
ALTER TABLE manifests ADD COLUMN untagged_at BIGINT;

-- Manifests that are untagged when this migration runs: the time they lost
-- their tags is unknown, so their retention period starts now.
UPDATE manifests SET untagged_at = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)
WHERE NOT EXISTS (SELECT 1 FROM tags t
                  WHERE t.repository_id = manifests.repository_id AND t.digest = manifests.digest);

CREATE INDEX manifests_untagged ON manifests(untagged_at) WHERE untagged_at IS NOT NULL;

-- The retention policy (off by default; ACR's default period is 7 days).
ALTER TABLE registry_settings ADD COLUMN retention_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE registry_settings ADD COLUMN retention_untagged_days BIGINT NOT NULL DEFAULT 7;
