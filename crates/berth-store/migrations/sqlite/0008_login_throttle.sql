-- Failed-login counters shared by every replica of one registry.
-- One fixed window per key: `a:<address>` (a client address, IPv6 by /64),
-- `p:<account>|<address>` (one account from one address) and `u:<account>`
-- (one account from anywhere). Only failures write here; successful logins
-- never do. Rows whose window has ended are pruned by the failure path.
CREATE TABLE login_throttle (
    key          TEXT    PRIMARY KEY,
    window_start BIGINT  NOT NULL,
    failures     BIGINT  NOT NULL
);
CREATE INDEX login_throttle_window ON login_throttle (window_start);
