-- Audit events (issue 5): login attempts, repository operations, and the
-- explain record of each refusal. Times are unix milliseconds; rows older
-- than the retention setting are pruned in the background.
CREATE TABLE audit_login_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms BIGINT NOT NULL,
    correlation_id TEXT NOT NULL,
    login_server TEXT NOT NULL,
    identity_kind TEXT,
    identity_id TEXT,
    identity_name TEXT,
    username TEXT,
    client_ip TEXT,
    user_agent TEXT,
    operation TEXT NOT NULL,
    result INTEGER NOT NULL,
    reason TEXT NOT NULL,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX audit_login_time ON audit_login_events(time_ms);
CREATE INDEX audit_login_identity ON audit_login_events(identity_name);
CREATE INDEX audit_login_username ON audit_login_events(username);
CREATE INDEX audit_login_ip ON audit_login_events(client_ip);
CREATE INDEX audit_login_result ON audit_login_events(result);
CREATE INDEX audit_login_correlation ON audit_login_events(correlation_id);

CREATE TABLE audit_repository_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms BIGINT NOT NULL,
    correlation_id TEXT NOT NULL,
    identity_kind TEXT,
    identity_id TEXT,
    identity_name TEXT,
    client_ip TEXT,
    user_agent TEXT,
    repository TEXT NOT NULL,
    tag TEXT,
    digest TEXT,
    media_type TEXT,
    artifact_type TEXT,
    size BIGINT,
    operation TEXT NOT NULL,
    result INTEGER NOT NULL,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX audit_repo_time ON audit_repository_events(time_ms);
CREATE INDEX audit_repo_repository ON audit_repository_events(repository, time_ms);
CREATE INDEX audit_repo_identity ON audit_repository_events(identity_name);
CREATE INDEX audit_repo_operation ON audit_repository_events(operation);

CREATE TABLE audit_explain (
    correlation_id TEXT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX audit_explain_time ON audit_explain(time_ms);
