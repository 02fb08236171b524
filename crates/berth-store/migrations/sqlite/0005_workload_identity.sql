-- Workload identities: identities that log in with a token from a trusted
-- external OIDC issuer (federated credential) instead of a secret.
-- Role assignments name them like service principals (assignee_kind
-- 'service_principal', assignee_id = client_id).
CREATE TABLE workload_identities (
    client_id   TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    issuer      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    audience    TEXT    NOT NULL,
    enabled     INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
