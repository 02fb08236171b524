-- Web portal (/ui/) sign-in sessions, shared by every replica using this
-- database. `id` is the SHA-256 (hex) of the cookie's random token, so the
-- table never holds a usable session secret. Times are unix milliseconds.
CREATE TABLE portal_sessions (
    id            TEXT    PRIMARY KEY,
    principal     TEXT    NOT NULL,
    generation    INTEGER NOT NULL,
    csrf          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX portal_sessions_expires ON portal_sessions(expires_at);
