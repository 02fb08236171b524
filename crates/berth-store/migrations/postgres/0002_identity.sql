-- PostgreSQL version of migrations/sqlite/0002_identity.sql (BIGINT integers, BYTEA
-- bytes, identity columns, byte-order "C" collation on text so ordering and
-- pagination match SQLite's).
-- Identities and access policy: registry settings, directory users and
-- groups, service principals and their client secrets, the admin account,
-- scope maps, repository tokens, role assignments, network rules and token
-- signing keys.
--
-- Portable SQL only (PostgreSQL shares these statements): UUIDs are TEXT,
-- booleans are BIGINT 0/1, `created_at`/`updated_at` are unix milliseconds,
-- `expires_at`/`retire_after` are unix seconds (as berth-auth reads them).
-- `generation` starts at 1 and is bumped whenever a credential changes in a
-- way that must revoke the refresh and identity tokens minted from it.

-- One row: the registry's access settings.
CREATE TABLE registry_settings (
    id                       BIGINT PRIMARY KEY CHECK (id = 1),
    anonymous_pull           BIGINT NOT NULL,
    default_action           TEXT COLLATE "C"    NOT NULL CHECK (default_action IN ('Allow', 'Deny')),
    access_token_ttl_secs    BIGINT NOT NULL,
    refresh_token_ttl_secs   BIGINT NOT NULL,
    identity_token_ttl_secs  BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
INSERT INTO registry_settings (id, anonymous_pull, default_action, access_token_ttl_secs,
    refresh_token_ttl_secs, identity_token_ttl_secs, updated_at)
VALUES (1, 0, 'Allow', 4500, 10800, 10800, 0);

-- Basic-auth usernames shared by directory users and repository tokens: a
-- named login tries the token, then the user, so one name may belong to one
-- of them only. The key is the lowercased name, so names that differ only in
-- case cannot coexist either.
CREATE TABLE login_names (
    name_key  TEXT COLLATE "C" PRIMARY KEY,
    kind      TEXT COLLATE "C" NOT NULL CHECK (kind IN ('user', 'token'))
);

CREATE TABLE directory_users (
    id            TEXT COLLATE "C"    PRIMARY KEY,
    name          TEXT COLLATE "C"    NOT NULL UNIQUE,
    password_phc  TEXT COLLATE "C",
    enabled       BIGINT NOT NULL,
    generation    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE directory_groups (
    id          TEXT COLLATE "C"    PRIMARY KEY,
    name        TEXT COLLATE "C"    NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE directory_group_members (
    group_id    TEXT COLLATE "C"    NOT NULL REFERENCES directory_groups(id) ON DELETE CASCADE,
    user_id     TEXT COLLATE "C"    NOT NULL REFERENCES directory_users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX directory_group_members_user ON directory_group_members(user_id);

CREATE TABLE service_principals (
    app_id      TEXT COLLATE "C"    PRIMARY KEY,
    name        TEXT COLLATE "C"    NOT NULL UNIQUE,
    enabled     BIGINT NOT NULL,
    generation  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE service_principal_secrets (
    id          TEXT COLLATE "C"    PRIMARY KEY,
    app_id      TEXT COLLATE "C"    NOT NULL REFERENCES service_principals(app_id) ON DELETE CASCADE,
    phc         TEXT COLLATE "C"    NOT NULL,
    expires_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX service_principal_secrets_app ON service_principal_secrets(app_id);

-- One row: the admin account, disabled and without passwords at first.
CREATE TABLE admin_account (
    id                    BIGINT PRIMARY KEY CHECK (id = 1),
    enabled               BIGINT NOT NULL,
    password1_phc         TEXT COLLATE "C",
    password1_created_at  BIGINT,
    password2_phc         TEXT COLLATE "C",
    password2_created_at  BIGINT,
    generation            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
INSERT INTO admin_account (id, enabled, generation, updated_at) VALUES (1, 0, 1, 0);

-- Scope maps; `rules` is a JSON array of stored rule strings. The five
-- system maps have rows (so tokens can reference them) but their rules come
-- from code; the stored array is informational.
CREATE TABLE scope_maps (
    name         TEXT COLLATE "C"    PRIMARY KEY,
    description  TEXT COLLATE "C"    NOT NULL,
    rules        TEXT COLLATE "C"    NOT NULL,
    system       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
INSERT INTO scope_maps (name, description, rules, system, created_at, updated_at) VALUES
    ('_repositories_pull', 'Can pull any repository of the registry',
     '["repositories/*/content/read"]', 1, 0, 0),
    ('_repositories_pull_metadata_read', 'Can pull and read metadata of any repository of the registry',
     '["repositories/*/content/read","repositories/*/metadata/read"]', 1, 0, 0),
    ('_repositories_push', 'Can push to any repository of the registry',
     '["repositories/*/content/read","repositories/*/content/write"]', 1, 0, 0),
    ('_repositories_push_metadata_write', 'Can push and write metadata of any repository of the registry',
     '["repositories/*/content/read","repositories/*/content/write","repositories/*/metadata/read","repositories/*/metadata/write"]', 1, 0, 0),
    ('_repositories_admin', 'Can perform all read, write and delete operations on the registry',
     '["repositories/*/content/read","repositories/*/content/write","repositories/*/content/delete","repositories/*/metadata/read","repositories/*/metadata/write"]', 1, 0, 0);

CREATE TABLE repository_tokens (
    name                   TEXT COLLATE "C"    PRIMARY KEY,
    scope_map              TEXT COLLATE "C"    NOT NULL REFERENCES scope_maps(name),
    enabled                BIGINT NOT NULL,
    password1_phc          TEXT COLLATE "C",
    password1_expires_at   BIGINT,
    password1_created_at   BIGINT,
    password2_phc          TEXT COLLATE "C",
    password2_expires_at   BIGINT,
    password2_created_at   BIGINT,
    generation             BIGINT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX repository_tokens_scope_map ON repository_tokens(scope_map);

-- `assignee_id` names a user, group or service principal; rows are removed
-- with their assignee.
CREATE TABLE role_assignments (
    id             TEXT COLLATE "C"    PRIMARY KEY,
    assignee_kind  TEXT COLLATE "C"    NOT NULL CHECK (assignee_kind IN ('user', 'group', 'service_principal')),
    assignee_id    TEXT COLLATE "C"    NOT NULL,
    role           TEXT COLLATE "C"    NOT NULL,
    scope          TEXT COLLATE "C"    NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (assignee_kind, assignee_id, role, scope)
);

-- Allowed client networks, normalized CIDR text (`10.0.0.0/8`, `2001:db8::/32`).
CREATE TABLE network_rules (
    cidr        TEXT COLLATE "C"    PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

-- Token signing keys (shared so any replica verifies any token).
CREATE TABLE signing_keys (
    kid           TEXT COLLATE "C"    PRIMARY KEY,
    pkcs8_pem     TEXT COLLATE "C"    NOT NULL,
    active        BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    retire_after  BIGINT
);
