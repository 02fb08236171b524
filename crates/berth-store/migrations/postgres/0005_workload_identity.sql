-- PostgreSQL version of migrations/sqlite/0005_workload_identity.sql (BIGINT integers, BYTEA
-- bytes, identity columns, byte-order "C" collation on text so ordering and
-- pagination match SQLite's).
-- Workload identities: identities that log in with a token from a trusted
-- external OIDC issuer (federated credential) instead of a secret.
-- Role assignments name them like service principals (assignee_kind
-- 'service_principal', assignee_id = client_id).
CREATE TABLE workload_identities (
    client_id   TEXT COLLATE "C"    PRIMARY KEY,
    name        TEXT COLLATE "C"    NOT NULL UNIQUE,
    issuer      TEXT COLLATE "C"    NOT NULL,
    subject     TEXT COLLATE "C"    NOT NULL,
    audience    TEXT COLLATE "C"    NOT NULL,
    enabled     BIGINT NOT NULL,
    generation  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
