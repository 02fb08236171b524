//! `berth check-health` against real servers: the failure matrix of
//! issue 5. Each test reproduces one cause of login trouble on a spawned
//! `berth serve` (or, for clock skew, a tiny fake registry), runs the real
//! `berth check-health … --output json`, asserts the check-health code, and
//! asserts the client-facing HTTP answer a client would get for the same
//! cause.
//!
//! Every row that reaches the server's authentication also names the audit
//! reason code it records (`AuthFailure::code()` / `DenyReason::code()` in
//! crates/berth-auth/src/error.rs) and the rule its explain record names;
//! [`Api::expect_audit`] asserts both through `/api/v1/logs/login` and
//! `/api/v1/logs/explain/{id}` as the Owner.
//!
//! Expiry rows (service-principal secret, directory token, stored refresh
//! token) move the server's clock through the test-only
//! `BERTH_TEST_CLOCK_FILE` hook instead of sleeping. check-health runs on
//! the real clock, so for it the stored token is still valid and merely
//! expiring soon, while the server has passed its expiry.
//!
//! The local-environment step counts docker problems as errors only when
//! no other client is installed; these tests expect skopeo on PATH
//! (scripts/test.sh installs it) or a docker whose daemon runs.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::clock::Clock;
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const NULL_USER: &str = "00000000-0000-0000-0000-000000000000";
/// Bounded wait for audit events (written off the request path).
const POLL_ROUNDS: usize = 200;
const POLL_EVERY: Duration = Duration::from_millis(50);

/// One row of the failure matrix.
struct Row {
    /// The cause reproduced.
    cause: &'static str,
    /// The code check-health must report.
    code: &'static str,
    /// Its status (`error` or `warning`).
    status: &'static str,
    /// Text check-health's message for the finding contains.
    finding_text: &'static str,
    /// HTTP status a client gets for the same cause (None: no HTTP answer).
    http_status: Option<u16>,
    /// Text the client-facing message contains.
    client_message: &'static str,
    /// The server's audit reason code for this cause (None: nothing reaches
    /// the server's authentication), asserted against `/api/v1/logs/login`.
    audit_reason: Option<&'static str>,
    /// The rule the refusal's explain record names (`decided_by.rule`;
    /// None: no explain record, e.g. a 429).
    audit_rule: Option<&'static str>,
}

const WRONG_HOST: Row = Row {
    cause: "login server name misspelled",
    code: "CONNECTIVITY_DNS_ERROR",
    status: "error",
    finding_text: "does not resolve",
    http_status: None,
    client_message: "does not resolve",
    audit_reason: None,
    audit_rule: None,
};
const WRONG_PORT: Row = Row {
    cause: "wrong port",
    code: "CONNECTIVITY_TCP_ERROR",
    status: "error",
    finding_text: "cannot connect",
    http_status: None,
    client_message: "cannot connect",
    audit_reason: None,
    audit_rule: None,
};
const UPPERCASE: Row = Row {
    cause: "uppercase login server",
    code: "LOGIN_SERVER_ERROR",
    status: "error",
    finding_text: "uppercase",
    http_status: None,
    client_message: "uppercase",
    audit_reason: None,
    audit_rule: None,
};
const UNKNOWN_USER: Row = Row {
    cause: "unknown user",
    code: "CONNECTIVITY_AAD_LOGIN_ERROR",
    status: "error",
    finding_text: "invalid username or password",
    http_status: Some(401),
    client_message: "invalid username or password",
    audit_reason: Some("unknown_identity"),
    audit_rule: Some("credential"),
};
const WRONG_PASSWORD: Row = Row {
    cause: "wrong password",
    code: "CONNECTIVITY_AAD_LOGIN_ERROR",
    status: "error",
    finding_text: "invalid username or password",
    http_status: Some(401),
    client_message: "invalid username or password",
    audit_reason: Some("bad_secret"),
    audit_rule: Some("credential"),
};
const DISABLED_TOKEN: Row = Row {
    cause: "disabled repository-scoped token",
    code: "CONNECTIVITY_AAD_LOGIN_ERROR",
    status: "error",
    finding_text: "this repository token is disabled",
    http_status: Some(401),
    client_message: "this repository token is disabled",
    audit_reason: Some("disabled_token"),
    audit_rule: Some("credential"),
};
const PASSWORD_REGENERATED: Row = Row {
    cause: "password regenerated after login (stale identitytoken)",
    code: "CONNECTIVITY_REFRESH_TOKEN_ERROR",
    status: "error",
    finding_text: "revoked",
    http_status: Some(401),
    client_message: "revoked",
    audit_reason: Some("revoked_token"),
    audit_rule: Some("credential"),
};
const MISSING_ROLE: Row = Row {
    cause: "user without a role assignment",
    code: "CONNECTIVITY_REFRESH_TOKEN_ERROR",
    status: "error",
    finding_text: "no role on this registry",
    http_status: Some(401),
    client_message: "no role on this registry",
    audit_reason: Some("no_role_assignment"),
    audit_rule: Some("role_assignment"),
};
const SCOPE_MAP_WITHOUT_PUSH: Row = Row {
    cause: "scope map without push",
    code: "PERMISSION_PUSH_ERROR",
    status: "warning",
    finding_text: "content/write",
    http_status: Some(403),
    client_message: "requested access to the resource is denied: token \"reader-token\" may not push to app: its scope map grants content/read; it needs content/write",
    audit_reason: Some("scope_map_missing_action"),
    audit_rule: Some("scope_map"),
};
const STALE_WITH_ANONYMOUS: Row = Row {
    cause: "anonymous pull on, stale stored credentials (a login; a pull-only request gets anonymous access)",
    code: "STALE_CREDENTIALS_ANONYMOUS_PULL",
    status: "warning",
    finding_text: "anonymous pull is on",
    http_status: Some(401),
    client_message: "the token was revoked: log in again; anonymous pull is on for this registry: the stored credentials are refused, and `docker logout 127.0.0.1:",
    audit_reason: Some("revoked_token"),
    audit_rule: Some("credential"),
};
const IP_NOT_ALLOWED: Row = Row {
    cause: "client IP not allowed by the network rules",
    code: "CONNECTIVITY_FORBIDDEN_ERROR",
    status: "error",
    finding_text: "client with IP '127.0.0.1' is not allowed access",
    http_status: Some(403),
    client_message: "client with IP '127.0.0.1' is not allowed access",
    audit_reason: Some("ip_denied"),
    audit_rule: Some("network_rule"),
};
const TLS_UNTRUSTED: Row = Row {
    cause: "TLS certificate not trusted",
    code: "CONNECTIVITY_SSL_ERROR",
    status: "error",
    finding_text: "not trust",
    http_status: None,
    client_message: "not trust",
    audit_reason: None,
    audit_rule: None,
};
const REALM_INTERNAL: Row = Row {
    cause: "realm behind a proxy pointing at an internal address",
    code: "REALM_UNREACHABLE_ERROR",
    status: "error",
    finding_text: "cannot be reached",
    http_status: Some(401),
    client_message: "authentication required",
    audit_reason: None,
    audit_rule: None,
};
const CLOCK_SKEW: Row = Row {
    cause: "clock skew",
    code: "CLOCK_SKEW_ERROR",
    status: "warning",
    finding_text: "ahead of",
    http_status: None,
    client_message: "ahead of",
    audit_reason: None,
    audit_rule: None,
};
const EXPIRED_STORED_TOKEN: Row = Row {
    cause: "stored refresh token past its exp (exp rewritten: the test cannot wait 3 hours)",
    code: "CREDENTIAL_EXPIRING_SOON",
    status: "warning",
    finding_text: "expired",
    http_status: Some(401),
    client_message: "the token signature is invalid",
    audit_reason: Some("bad_signature"),
    audit_rule: Some("credential"),
};
const EXPIRED_SP_SECRET: Row = Row {
    cause: "service-principal secret expired (server clock 2 days on)",
    code: "CONNECTIVITY_AAD_LOGIN_ERROR",
    status: "error",
    finding_text: "expired",
    http_status: Some(401),
    client_message: "this password or client secret has expired: client secret ",
    audit_reason: Some("expired_secret"),
    audit_rule: Some("credential"),
};
const EXPIRED_REFRESH_TOKEN: Row = Row {
    cause: "stored refresh token expired (server clock past its 3 hours)",
    code: "CONNECTIVITY_REFRESH_TOKEN_ERROR",
    status: "error",
    finding_text: "expired",
    http_status: Some(401),
    client_message: "the token has expired: this registry refresh token expired at ",
    audit_reason: Some("token_expired"),
    audit_rule: Some("credential"),
};
/// check-health logs in afresh on every run, so it never holds an expired
/// directory token: the same expiry is what it reports for the stored
/// refresh token ([`EXPIRED_REFRESH_TOKEN`]); this row asserts the
/// exchange's answer and audit event.
const EXPIRED_DIRECTORY_TOKEN: Row = Row {
    cause: "directory token expired before the exchange (server clock past its 3 hours)",
    code: "CONNECTIVITY_REFRESH_TOKEN_ERROR",
    status: "error",
    finding_text: "expired",
    http_status: Some(401),
    client_message: "the token has expired: this directory token expired at ",
    audit_reason: Some("token_expired"),
    audit_rule: Some("credential"),
};
/// A repository token's password past its expiry (issue 13: the message
/// names the password, when, and the command that renews it).
const EXPIRED_TOKEN_PASSWORD: Row = Row {
    cause: "repository token password1 expired (server clock 2 days on)",
    code: "CONNECTIVITY_AAD_LOGIN_ERROR",
    status: "error",
    finding_text: "expired",
    http_status: Some(401),
    client_message: "this password or client secret has expired: password1 of repository token \"nightly-token\" expired at ",
    audit_reason: Some("expired_secret"),
    audit_rule: Some("credential"),
};
const REFRESH_TOKEN_WRONG_USERNAME: Row = Row {
    cause: "a refresh token sent with a username other than the null GUID",
    code: "REFRESH_TOKEN_USERNAME_ERROR",
    status: "error",
    finding_text: "is a registry refresh token",
    http_status: Some(401),
    client_message: "the password is a registry refresh token: use it with the username 00000000-0000-0000-0000-000000000000",
    audit_reason: Some("refresh_token_wrong_username"),
    audit_rule: Some("credential"),
};
const USER_PUSH_WITHOUT_ROLE: Row = Row {
    cause: "a user with AcrPull only pushes",
    code: "PERMISSION_PUSH_ERROR",
    status: "warning",
    finding_text: "AcrPush, Contributor or Owner",
    http_status: Some(403),
    client_message: "requested access to the resource is denied: alice may not push to team/app: needs AcrPush, Contributor or Owner on team/app or registry-wide",
    audit_reason: Some("insufficient_permission"),
    audit_rule: Some("role_assignment"),
};
const MANAGEMENT_WITHOUT_ROLE: Row = Row {
    cause: "management API without a management role (AcrPush only)",
    code: "MANAGEMENT_ROLE_MISSING",
    status: "warning",
    finding_text: "needs a registry-wide role assignment of Reader, Contributor or Owner",
    http_status: Some(403),
    client_message: "mallory may not use the management API (management read): needs a registry-wide role assignment of Reader, Contributor or Owner",
    audit_reason: Some("insufficient_permission"),
    audit_rule: Some("role_assignment"),
};
const ACCESS_CHANGED: Row = Row {
    cause: "role assignment added after the access token was issued",
    code: "ACCESS_CHANGED_RELOGIN",
    status: "warning",
    finding_text: "access changed after this token was issued",
    http_status: Some(401),
    client_message: "access changed after this token was issued: oscar may now push on team/app, which this token was refused; a new login",
    audit_reason: Some("access_changed"),
    audit_rule: Some("token_scope"),
};
const THROTTLED: Row = Row {
    cause: "throttled after more than 20 failed logins",
    code: "CONNECTIVITY_TOOMANYREQUESTS_ERROR",
    status: "error",
    finding_text: "too many failed logins",
    http_status: Some(429),
    client_message: "too many failed logins",
    audit_reason: Some("throttled"),
    audit_rule: None,
};

// ---------------------------------------------------------------------------
// Running check-health
// ---------------------------------------------------------------------------

/// A report of one `berth check-health --output json` run.
struct Run {
    report: Value,
    exit: i32,
}

impl Run {
    fn checks(&self) -> &Vec<Value> {
        self.report["checks"].as_array().expect("checks array")
    }

    /// The finding with `code`; panics with the whole report if absent.
    fn finding(&self, code: &str) -> &Value {
        self.checks()
            .iter()
            .find(|c| c["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {:#}", self.report))
    }

    /// Assert the row's code, status and message, and the exit status.
    fn expect_row(&self, row: &Row) -> &Value {
        let f = self.finding(row.code);
        assert_eq!(f["status"], row.status, "{}: {f}", row.cause);
        assert!(
            f["message"]
                .as_str()
                .unwrap_or_default()
                .contains(row.finding_text),
            "{}: message should contain {:?}: {f}",
            row.cause,
            row.finding_text
        );
        assert!(
            f["fix"].as_str().is_some_and(|s| !s.is_empty()),
            "{}: {f}",
            row.cause
        );
        let any_error = self.checks().iter().any(|c| c["status"] == "error");
        assert_eq!(self.exit != 0, any_error, "exit status {}", self.exit);
        f
    }

    /// The findings named `name`.
    fn named(&self, name: &str) -> Vec<&Value> {
        self.checks().iter().filter(|c| c["name"] == name).collect()
    }
}

/// Run `berth check-health <args> --output json` with `DOCKER_CONFIG` set
/// to `docker_config` (a directory; may hold config.json).
async fn check_health(args: &[&str], docker_config: &Path) -> Run {
    check_health_with_path(args, docker_config, None).await
}

/// [`check_health`] with `extra_path` prepended to `PATH`.
async fn check_health_with_path(
    args: &[&str],
    docker_config: &Path,
    extra_path: Option<&Path>,
) -> Run {
    let mut cmd = tokio::process::Command::new(berth_bin());
    if let Some(dir) = extra_path {
        let mut paths = vec![dir.to_path_buf()];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        cmd.env("PATH", std::env::join_paths(paths).expect("join PATH"));
    }
    let out = cmd
        .arg("check-health")
        .args(args)
        .args(["--output", "json"])
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("SSL_CERT_FILE")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run berth check-health");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "check-health printed no JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Run {
        report,
        exit: out.status.code().unwrap_or(-1),
    }
}

fn empty_config_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("docker config dir")
}

/// A DOCKER_CONFIG directory whose config.json holds `doc`.
fn config_dir_with(doc: Value) -> tempfile::TempDir {
    let dir = empty_config_dir();
    std::fs::write(dir.path().join("config.json"), doc.to_string()).expect("write config.json");
    dir
}

/// config.json as `berth login` / `docker login` leave it after a token
/// login: the null-UUID username and the refresh token as identitytoken.
fn config_with_identity_token(host: &str, refresh_token: &str) -> tempfile::TempDir {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{NULL_USER}:"));
    config_dir_with(json!({"auths": {host: {"auth": auth, "identitytoken": refresh_token}}}))
}

// ---------------------------------------------------------------------------
// Talking to the server as a client and as the Owner
// ---------------------------------------------------------------------------

fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A reply's status and JSON body.
async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// The message of an OCI error body or an OAuth2 error body.
fn message_of(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .or_else(|| body["error_description"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A refusal message without the ` (correlation id: …)` suffix every
/// 401/403 message ends with; panics when the suffix is missing.
fn without_correlation_id(message: &str) -> String {
    let (text, id) = message
        .rsplit_once(" (correlation id: ")
        .unwrap_or_else(|| panic!("no correlation id in {message:?}"));
    assert!(
        id.ends_with(')') && id.len() > 1,
        "malformed correlation id suffix in {message:?}"
    );
    text.to_string()
}

/// Assert a client-facing answer against the row.
fn expect_http(row: &Row, status: u16, body: &Value) {
    assert_eq!(Some(status), row.http_status, "{}: {body}", row.cause);
    assert!(
        message_of(body).contains(row.client_message),
        "{}: {body}",
        row.cause
    );
}

/// `POST /directory/token` with the password grant.
async fn directory_login(server: &TestServer, user: &str, password: &str) -> (u16, Value) {
    answer(
        plain()
            .post(format!("{}/directory/token", server.base_url()))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .expect("directory token"),
    )
    .await
}

/// The management API as the bootstrapped Owner.
struct Api<'a> {
    server: &'a TestServer,
    token: String,
}

impl<'a> Api<'a> {
    async fn new(server: &'a TestServer) -> Api<'a> {
        let (status, body) = directory_login(server, OWNER_USER, OWNER_PASSWORD).await;
        assert_eq!(status, 200, "{body}");
        Api {
            server,
            token: body["access_token"].as_str().expect("token").to_string(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut req = plain()
            .request(
                method.clone(),
                format!("{}/api/v1{path}", self.server.base_url()),
            )
            .bearer_auth(&self.token);
        if !body.is_null() {
            req = req.json(&body);
        }
        let (status, reply) = answer(req.send().await.expect("api request")).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {reply}"
        );
        reply
    }

    /// `GET /api/v1<path>`: status and body, whatever the status.
    async fn get(&self, path: &str) -> (u16, Value) {
        let req = plain()
            .get(format!("{}/api/v1{path}", self.server.base_url()))
            .bearer_auth(&self.token);
        answer(req.send().await.expect("api request")).await
    }

    /// The audit assertion of a row: a failed login event matching
    /// `filter` (query parameters, e.g. `identity=ghost-user`) with the
    /// row's reason code shows up in `/api/v1/logs/login` (bounded wait:
    /// events are written asynchronously). When the client-facing
    /// `refusal` body carries a correlation id, the event must be that
    /// request's, and its `/api/v1/logs/explain` record must name the row's
    /// rule. Returns the event.
    async fn expect_audit(&self, row: &Row, filter: &str, refusal: &Value) -> Value {
        let reason = row.audit_reason.expect("the row has an audit reason");
        let id = refusal["correlation_id"].as_str();
        let path = format!("/logs/login?failures=true&{filter}");
        let mut last = Value::Null;
        let mut event = None;
        for _ in 0..POLL_ROUNDS {
            let (status, page) = self.get(&path).await;
            assert_eq!(status, 200, "GET {path}: {page}");
            event = page["events"]
                .as_array()
                .and_then(|events| {
                    events.iter().find(|e| match id {
                        Some(id) => e["correlation_id"] == id,
                        None => e["reason"] == reason,
                    })
                })
                .cloned();
            if event.is_some() {
                break;
            }
            last = page;
            tokio::time::sleep(POLL_EVERY).await;
        }
        let event = event.unwrap_or_else(|| {
            panic!(
                "{}: no login event {id:?} with reason {reason} at {path}; last: {last}",
                row.cause
            )
        });
        assert_eq!(event["reason"], reason, "{}: {event}", row.cause);
        assert_eq!(
            Some(event["result"].as_u64().unwrap_or_default()),
            row.http_status.map(u64::from),
            "{}: {event}",
            row.cause
        );
        if let (Some(id), Some(rule)) = (id, row.audit_rule) {
            let (status, record) = self.get(&format!("/logs/explain/{id}")).await;
            assert_eq!(status, 200, "{}: explain {id}: {record}", row.cause);
            assert_eq!(
                record["record"]["decided_by"]["rule"], rule,
                "{}: {record}",
                row.cause
            );
            assert_eq!(
                record["record"]["reason"], reason,
                "{}: {record}",
                row.cause
            );
        }
        event
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, body).await
    }

    async fn patch(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PATCH, path, body).await
    }

    /// A repository-scoped token that may only pull `repository`
    /// (`content/read`); returns its password1.
    async fn pull_token(&self, name: &str, repository: &str) -> String {
        let created = self
            .post(
                "/tokens",
                json!({"name": name, "repositories": [{"repository": repository, "actions": ["content/read"]}]}),
            )
            .await;
        created["newPasswords"][0]["value"]
            .as_str()
            .expect("password1")
            .to_string()
    }

    /// A service principal whose secret lives one day, holding
    /// `role` registry-wide; returns its app id and secret.
    async fn service_principal(&self, name: &str, role: &str) -> (String, String) {
        let sp = self
            .post(
                "/service-principals",
                json!({"name": name, "expirationInDays": 1}),
            )
            .await;
        let app_id = sp["appId"].as_str().expect("appId").to_string();
        let secret = sp["secret"].as_str().expect("secret").to_string();
        self.post(
            "/role-assignments",
            json!({"assignee": app_id, "role": role}),
        )
        .await;
        (app_id, secret)
    }

    /// A directory user with a password, optionally with a registry-wide role.
    async fn user(&self, name: &str, password: &str, role: Option<&str>) {
        self.post("/users", json!({"name": name, "password": password}))
            .await;
        if let Some(role) = role {
            self.post("/role-assignments", json!({"assignee": name, "role": role}))
                .await;
        }
    }
}

/// A refresh token for `user` from the Docker flow (what docker stores as
/// its identitytoken).
async fn refresh_token_for(server: &TestServer, user: &str, password: &str) -> String {
    let (status, body) =
        docker_token(server, Some((user, password)), &[("offline_token", "true")]).await;
    assert_eq!(status, 200, "{body}");
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string()
}

/// The Docker flow: `GET /oauth2/token?service=…` with Basic credentials
/// (or none) and extra query parameters.
async fn docker_token(
    server: &TestServer,
    basic: Option<(&str, &str)>,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let host = server.host();
    let mut q = vec![("service", host.as_str())];
    q.extend_from_slice(query);
    let mut req = plain()
        .get(format!("{}/oauth2/token", server.base_url()))
        .query(&q);
    if let Some((user, password)) = basic {
        req = req.basic_auth(user, Some(password));
    }
    answer(req.send().await.expect("token")).await
}

/// `POST /oauth2/token grant_type=refresh_token`.
async fn use_refresh_token(server: &TestServer, refresh_token: &str) -> (u16, Value) {
    answer(
        plain()
            .post(format!("{}/oauth2/token", server.base_url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("service", server.host().as_str()),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .expect("refresh"),
    )
    .await
}

// ---------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------

#[tokio::test]
async fn healthy_registry_passes_every_check() {
    let server = TestServer::start().await;
    let dir = empty_config_dir();
    let run = check_health(
        &[
            &server.host(),
            "-u",
            OWNER_USER,
            "-p",
            OWNER_PASSWORD,
            "--repository",
            "team/app",
            "--yes",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(run.exit, 0, "{:#}", run.report);
    for name in [
        "login server",
        "DNS",
        "TCP",
        "network rules",
        "challenge",
        "realm",
        "clock",
        "directory login",
        "refresh token",
        "access token",
        "pull team/app",
        "push team/app",
        "delete team/app",
    ] {
        let found = run.named(name);
        assert_eq!(found.len(), 1, "{name}: {:#}", run.report);
        assert_eq!(found[0]["status"], "ok", "{name}: {:#}", run.report);
    }
    // Plain HTTP on loopback is a warning, not an error.
    assert_eq!(run.finding("PLAIN_HTTP_WARNING")["status"], "warning");
    // The table form carries the same codes.
    let out = tokio::process::Command::new(berth_bin())
        .args(["check-health", &server.host(), "--output", "table"])
        .env("DOCKER_CONFIG", dir.path())
        .output()
        .await
        .expect("table run");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("CREDENTIALS_MISSING"), "{table}");
    assert!(table.contains("fix: "), "{table}");
}

#[tokio::test]
async fn misspelled_host_port_and_uppercase_name() {
    let dir = empty_config_dir();
    let (_held, port) = closed_port();
    let run = check_health(&[&format!("berth-typo.invalid:{port}")], dir.path()).await;
    run.expect_row(&WRONG_HOST);
    assert!(run.named("TCP").is_empty(), "stops at the first error");

    let run = check_health(&[&format!("127.0.0.1:{port}")], dir.path()).await;
    run.expect_row(&WRONG_PORT);

    let run = check_health(&[&format!("LOCALHOST:{port}")], dir.path()).await;
    let f = run.expect_row(&UPPERCASE);
    assert!(f["message"]
        .as_str()
        .unwrap_or_default()
        .contains("'localhost:"));

    let run = check_health(&[], dir.path()).await;
    run.finding("LOGIN_SERVER_ERROR");
    assert_ne!(run.exit, 0);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_read_the_same() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let dir = empty_config_dir();
    let host = server.host();
    let unknown = check_health(&[&host, "-u", "ghost-user", "-p", "whatever-1"], dir.path()).await;
    unknown.expect_row(&UNKNOWN_USER);
    let wrong = check_health(
        &[&host, "-u", OWNER_USER, "-p", "not-the-password"],
        dir.path(),
    )
    .await;
    wrong.expect_row(&WRONG_PASSWORD);

    // Client-facing: identical answers for both causes, on both login paths.
    let mut bodies = Vec::new();
    for (row, user, password) in [
        (&UNKNOWN_USER, "ghost-user", "whatever-1"),
        (&WRONG_PASSWORD, OWNER_USER, "not-the-password"),
    ] {
        let (status, body) = directory_login(&server, user, password).await;
        expect_http(row, status, &body);
        let (status, body2) = docker_token(&server, Some((user, password)), &[]).await;
        expect_http(row, status, &body2);
        bodies.push((
            without_correlation_id(&message_of(&body)),
            without_correlation_id(&message_of(&body2)),
        ));
        // Audit: both refusals carry the precise reason.
        let filter = format!("identity={user}");
        let event = api.expect_audit(row, &filter, &body).await;
        assert_eq!(event["operation"], "directory_token", "{event}");
        assert_eq!(event["username"], user, "{event}");
        let event = api.expect_audit(row, &filter, &body2).await;
        assert_eq!(event["operation"], "token_get", "{event}");
    }
    assert_eq!(bodies[0], bodies[1], "no user enumeration");
}

#[tokio::test]
async fn service_principal_login_and_wrong_secret() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let (app_id, secret) = api.service_principal("ci-robot", "AcrPull").await;
    // Reader lets it see its own secrets' expiry through the management API.
    api.post(
        "/role-assignments",
        json!({"assignee": app_id, "role": "Reader"}),
    )
    .await;
    let dir = empty_config_dir();
    let host = server.host();
    let run = check_health(
        &[
            &host,
            "--service-principal",
            "-u",
            &app_id,
            "-p",
            &secret,
            "--repository",
            "app",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(
        run.named("directory login")[0]["status"],
        "ok",
        "{:#}",
        run.report
    );
    // Its only secret was created for one day: flagged before it breaks.
    let expiry = run.finding("CREDENTIAL_EXPIRING_SOON");
    assert_eq!(expiry["name"], "secret expiry", "{expiry}");
    assert_eq!(expiry["status"], "warning");
    assert_eq!(run.named("pull app")[0]["status"], "ok", "{:#}", run.report);
    let push = run.finding("PERMISSION_PUSH_ERROR");
    assert!(
        push["message"]
            .as_str()
            .unwrap_or_default()
            .contains("AcrPush"),
        "{push}"
    );
    assert_eq!(run.exit, 0, "missing push/delete are warnings");

    let run = check_health(
        &[
            &host,
            "--service-principal",
            "-u",
            &app_id,
            "-p",
            "wrong-secret",
        ],
        dir.path(),
    )
    .await;
    run.expect_row(&WRONG_PASSWORD);
}

#[tokio::test]
async fn disabled_repository_token() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let password = api.pull_token("ci-token", "app").await;
    api.patch("/tokens/ci-token", json!({"status": "disabled"}))
        .await;
    let dir = empty_config_dir();
    let run = check_health(
        &[&server.host(), "-u", "ci-token", "-p", &password],
        dir.path(),
    )
    .await;
    run.expect_row(&DISABLED_TOKEN);
    let (status, body) = docker_token(&server, Some(("ci-token", &password)), &[]).await;
    expect_http(&DISABLED_TOKEN, status, &body);
    let event = api
        .expect_audit(&DISABLED_TOKEN, "identity=ci-token", &body)
        .await;
    assert_eq!(event["username"], "ci-token", "{event}");
}

#[tokio::test]
async fn password_regenerated_leaves_a_stale_identity_token() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.user("carol", "carol-password-1", Some("AcrPush")).await;
    let rt = refresh_token_for(&server, "carol", "carol-password-1").await;
    let dir = config_with_identity_token(&server.host(), &rt);

    // Before: the stored token works; its 3-hour lifetime is flagged.
    let run = check_health(&[&server.host()], dir.path()).await;
    assert_eq!(run.exit, 0, "{:#}", run.report);
    assert_eq!(run.finding("CREDENTIAL_EXPIRING_SOON")["status"], "warning");
    assert_eq!(run.named("refresh token")[0]["status"], "ok");

    api.patch("/users/carol", json!({"password": "carol-password-2"}))
        .await;
    let run = check_health(&[&server.host()], dir.path()).await;
    run.expect_row(&PASSWORD_REGENERATED);
    let (status, body) = use_refresh_token(&server, &rt).await;
    expect_http(&PASSWORD_REGENERATED, status, &body);
    // A revoked refresh token names no identity in its event (the failure
    // carries no subject): the correlation id pins the event.
    api.expect_audit(&PASSWORD_REGENERATED, "operation=token_post", &body)
        .await;
}

#[tokio::test]
async fn user_without_a_role_is_refused_at_the_exchange() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.user("dave", "dave-password-1", None).await;
    let dir = empty_config_dir();
    let run = check_health(
        &[&server.host(), "-u", "dave", "-p", "dave-password-1"],
        dir.path(),
    )
    .await;
    assert_eq!(
        run.named("directory login")[0]["status"],
        "ok",
        "{:#}",
        run.report
    );
    run.expect_row(&MISSING_ROLE);

    let (_, body) = directory_login(&server, "dave", "dave-password-1").await;
    let identity = body["access_token"].as_str().expect("identity token");
    let (status, body) = answer(
        plain()
            .post(format!("{}/oauth2/exchange", server.base_url()))
            .form(&[
                ("grant_type", "access_token"),
                ("service", server.host().as_str()),
                ("access_token", identity),
            ])
            .send()
            .await
            .expect("exchange"),
    )
    .await;
    expect_http(&MISSING_ROLE, status, &body);
    let event = api
        .expect_audit(&MISSING_ROLE, "identity=dave", &body)
        .await;
    assert_eq!(event["operation"], "exchange", "{event}");
}

#[tokio::test]
async fn scope_map_without_push_is_named_by_the_permission_probe() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let password = api.pull_token("reader-token", "app").await;
    let dir = empty_config_dir();
    let run = check_health(
        &[
            &server.host(),
            "-u",
            "reader-token",
            "-p",
            &password,
            "--repository",
            "app",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(run.named("pull app")[0]["status"], "ok", "{:#}", run.report);
    let f = run.expect_row(&SCOPE_MAP_WITHOUT_PUSH);
    let msg = f["message"].as_str().unwrap_or_default();
    assert!(msg.contains("content/write"), "{msg}");
    assert!(msg.contains("scope_map_missing_action"), "{msg}");
    assert!(run.finding("PERMISSION_DELETE_ERROR")["message"]
        .as_str()
        .unwrap_or_default()
        .contains("content/delete"));
    assert_eq!(run.exit, 0);

    // The probe left nothing behind.
    let repos = api
        .send(reqwest::Method::GET, "/repositories", Value::Null)
        .await;
    assert_eq!(repos, json!([]), "no repository was created");

    let (status, body) = answer(
        plain()
            .post(format!("{}/v2/app/blobs/uploads/", server.base_url()))
            .basic_auth("reader-token", Some(&password))
            .header("Content-Length", "0")
            .send()
            .await
            .expect("push"),
    )
    .await;
    expect_http(&SCOPE_MAP_WITHOUT_PUSH, status, &body);
    assert_eq!(
        body["errors"][0]["detail"][0]["reason"],
        "scope_map_missing_action"
    );
    api.expect_audit(&SCOPE_MAP_WITHOUT_PUSH, "identity=reader-token", &body)
        .await;
}

#[tokio::test]
async fn anonymous_pull_with_stale_credentials_warns() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.user("erin", "erin-password-1", Some("AcrPull")).await;
    let rt = refresh_token_for(&server, "erin", "erin-password-1").await;
    api.patch("/users/erin", json!({"password": "erin-password-2"}))
        .await;
    api.patch("/registry", json!({"anonymousPullEnabled": true}))
        .await;
    let dir = config_with_identity_token(&server.host(), &rt);
    let run = check_health(&[&server.host()], dir.path()).await;
    run.expect_row(&STALE_WITH_ANONYMOUS);
    let checks = run.checks();
    let warn = checks
        .iter()
        .position(|c| c["code"] == STALE_WITH_ANONYMOUS.code);
    let err = checks
        .iter()
        .position(|c| c["code"] == "CONNECTIVITY_REFRESH_TOKEN_ERROR");
    assert!(
        warn < err && err.is_some(),
        "warning before the refusal: {:#}",
        run.report
    );

    // Client-facing: a login with the stale token is refused and names
    // `docker logout`; no credentials work.
    let (status, body) = use_refresh_token(&server, &rt).await;
    expect_http(&STALE_WITH_ANONYMOUS, status, &body);
    assert!(
        message_of(&body).contains(&format!("docker logout {}`", server.host())),
        "{body}"
    );
    let (status, _) = docker_token(&server, None, &[("scope", "repository:app:pull")]).await;
    assert_eq!(status, 200);
    api.expect_audit(&STALE_WITH_ANONYMOUS, "operation=token_post", &body)
        .await;

    // A pull-only request with the stale token gets exactly anonymous
    // access (ACR would refuse it); the refused token is still audited.
    let (status, body) = answer(
        plain()
            .post(format!("{}/oauth2/token", server.base_url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("service", server.host().as_str()),
                ("refresh_token", rt.as_str()),
                ("scope", "repository:app:pull,push"),
            ])
            .send()
            .await
            .expect("refresh with a push scope"),
    )
    .await;
    assert_eq!(status, 401, "push asked: no fallback: {body}");
    let (status, body) = answer(
        plain()
            .post(format!("{}/oauth2/token", server.base_url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("service", server.host().as_str()),
                ("refresh_token", rt.as_str()),
                ("scope", "repository:app:pull"),
            ])
            .send()
            .await
            .expect("refresh with a pull scope"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "repository:app:pull", "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let claims = common_claims(body["access_token"].as_str().expect("token"));
    assert!(
        claims.get("principal").is_none_or(|p| p == "anonymous"),
        "{claims}"
    );
    // Basic on /v2 with the old password: the same anonymous pull.
    let pulled = plain()
        .get(format!("{}/v2/app/tags/list", server.base_url()))
        .basic_auth("erin", Some("erin-password-1"))
        .send()
        .await
        .expect("basic pull");
    assert_eq!(
        pulled.status(),
        404,
        "anonymous pull reaches the handler (no such repository)"
    );
    let mut fallback = None;
    for _ in 0..POLL_ROUNDS {
        let (_, page) = api.get("/logs/login?identity=erin").await;
        fallback = page["events"].as_array().and_then(|events| {
            events
                .iter()
                .find(|e| e["operation"] == "v2_basic" && e["reason"] == "bad_secret")
                .cloned()
        });
        if fallback.is_some() {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    let fallback = fallback.expect("the refused Basic login is audited");
    assert_eq!(fallback["result"], 404, "{fallback}");
}

#[tokio::test]
async fn ip_not_allowed_names_the_address() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.post("/network-rules", json!({"ipAddress": "10.0.0.0/8"}))
        .await;
    api.patch("/registry", json!({"defaultAction": "Deny"}))
        .await;
    let dir = empty_config_dir();
    let run = check_health(
        &[&server.host(), "-u", OWNER_USER, "-p", OWNER_PASSWORD],
        dir.path(),
    )
    .await;
    run.expect_row(&IP_NOT_ALLOWED);
    let (status, body) = answer(
        plain()
            .get(format!("{}/v2/", server.base_url()))
            .send()
            .await
            .expect("v2"),
    )
    .await;
    expect_http(&IP_NOT_ALLOWED, status, &body);
    assert_eq!(body["errors"][0]["code"], "DENIED");
    let event = api
        .expect_audit(&IP_NOT_ALLOWED, "ip=127.0.0.1&result=403", &body)
        .await;
    assert_eq!(event["client_ip"], "127.0.0.1", "{event}");
}

/// `berth serve --tls-self-signed localhost`, killed on drop.
struct TlsServer {
    child: std::process::Child,
    port: u16,
    data: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn tls_server() -> TlsServer {
    tls_server_with(&["--tls-self-signed", "localhost"]).await
}

/// `berth serve` over TLS with extra flags.
async fn tls_server_with(tls_args: &[&str]) -> TlsServer {
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let child = std::process::Command::new(berth_bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .args(tls_args)
        .env("BERTH_BOOTSTRAP_PASSWORD", OWNER_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth serve");
    let server = TlsServer { child, port, data };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "TLS server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

#[tokio::test]
async fn untrusted_tls_certificate() {
    let server = tls_server().await;
    let dir = empty_config_dir();
    let host = format!("localhost:{}", server.port);
    let run = check_health(&[&host], dir.path()).await;
    let f = run.expect_row(&TLS_UNTRUSTED);
    assert!(
        f["message"]
            .as_str()
            .unwrap_or_default()
            .contains("self-signed"),
        "{f}"
    );
    assert!(
        run.named("challenge").is_empty(),
        "stops at the first error"
    );

    // Trusting the certificate with --ca-cert makes TLS pass.
    let cert = server.data.path().join("tls/localhost.crt");
    let run = check_health(
        &[
            &host,
            "--ca-cert",
            &cert.display().to_string(),
            "-u",
            OWNER_USER,
            "-p",
            OWNER_PASSWORD,
        ],
        dir.path(),
    )
    .await;
    assert_eq!(run.named("TLS")[0]["status"], "ok", "{:#}", run.report);
    assert_eq!(run.exit, 0, "{:#}", run.report);

    // A client with default trust gets no HTTP answer at all.
    let err = plain()
        .get(format!("https://{host}/v2/"))
        .send()
        .await
        .expect_err("untrusted certificate refused");
    assert!(
        TLS_UNTRUSTED.http_status.is_none() && err.is_connect(),
        "{err}"
    );
}

#[tokio::test]
async fn realm_pointing_at_an_unreachable_address() {
    // Deterministic: a port on this machine that refuses connections.
    let (_held, closed) = closed_port();
    let realm = format!("http://127.0.0.1:{closed}/oauth2/token");
    let server = TestServer::start_with(&["--realm", &realm]).await;
    let dir = empty_config_dir();
    let run = check_health(
        &[&server.host(), "-u", OWNER_USER, "-p", OWNER_PASSWORD],
        dir.path(),
    )
    .await;
    let f = run.expect_row(&REALM_INTERNAL);
    assert!(
        f["message"].as_str().unwrap_or_default().contains(&realm),
        "{f}"
    );
    let r = plain()
        .get(format!("{}/v2/", server.base_url()))
        .send()
        .await
        .expect("v2");
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        challenge.contains(&format!("realm=\"{realm}\"")),
        "{challenge}"
    );
    let (status, body) = answer(r).await;
    expect_http(&REALM_INTERNAL, status, &body);
    // With --ignore-errors the later steps run, and the token request fails
    // at the realm.
    let run = check_health(
        &[
            &server.host(),
            "-u",
            OWNER_USER,
            "-p",
            OWNER_PASSWORD,
            "--ignore-errors",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(
        run.named("directory login")[0]["status"],
        "ok",
        "{:#}",
        run.report
    );
    run.finding("CONNECTIVITY_ACCESS_TOKEN_ERROR");

    // An internal address: unreachable on most networks, but some
    // sandboxes answer every address; either way the realm is flagged and
    // the run fails.
    let realm = "http://10.255.255.1/oauth2/token";
    let server = TestServer::start_with(&["--realm", realm]).await;
    let run = check_health(
        &[&server.host(), "-u", OWNER_USER, "-p", OWNER_PASSWORD],
        dir.path(),
    )
    .await;
    let f = run.named("realm");
    assert!(
        f[0]["code"] == "REALM_UNREACHABLE_ERROR" || f[0]["code"] == "REALM_MISMATCH_WARNING",
        "{:#}",
        run.report
    );
    assert!(f[0]["message"].as_str().unwrap_or_default().contains(realm));
    assert_ne!(run.exit, 0, "{:#}", run.report);
}

/// A fake registry answering every request with `response(port)` as soon
/// as any bytes arrive.
async fn fake_registry(response: fn(u16) -> String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if sock.read(&mut buf).await.unwrap_or(0) > 0 {
                    let _ = sock.write_all(response(port).as_bytes()).await;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, task)
}

fn skewed_challenge(port: u16) -> String {
    let date = httpdate_of(SystemTime::now() + Duration::from_secs(2 * 3600));
    format!(
        "HTTP/1.1 401 Unauthorized\r\nDate: {date}\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/oauth2/token\",service=\"127.0.0.1:{port}\"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
}

fn basic_challenge(_port: u16) -> String {
    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"registry\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
}

/// IMF-fixdate without a date crate: weekday, day month year hh:mm:ss GMT.
fn httpdate_of(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {d:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

#[tokio::test]
async fn clock_skew_and_malformed_challenge_from_a_fake_registry() {
    let (port, task) = fake_registry(skewed_challenge).await;
    let dir = empty_config_dir();
    let run = check_health(&[&format!("127.0.0.1:{port}")], dir.path()).await;
    let f = run.expect_row(&CLOCK_SKEW);
    let msg = f["message"].as_str().unwrap_or_default();
    assert!(msg.contains("1h 59m") || msg.contains("2h"), "{f}");
    task.abort();

    let (port, task) = fake_registry(basic_challenge).await;
    let run = check_health(&[&format!("127.0.0.1:{port}")], dir.path()).await;
    let f = run.finding("CONNECTIVITY_WWW_AUTHENTICATE_ERROR");
    assert_eq!(f["status"], "error");
    assert!(
        f["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not Bearer"),
        "{f}"
    );
    task.abort();
}

#[tokio::test]
async fn throttling_after_failed_logins() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.user("frank", "frank-password-1", Some("AcrPull")).await;
    let mut last = (0, Value::Null);
    for _ in 0..22 {
        last = directory_login(&server, "frank", "wrong").await;
    }
    let dir = empty_config_dir();
    let run = check_health(
        &[&server.host(), "-u", "frank", "-p", "frank-password-1"],
        dir.path(),
    )
    .await;
    run.expect_row(&THROTTLED);
    // The last failed attempt was already throttled, in the OCI envelope.
    let (status, body) = last;
    expect_http(&THROTTLED, status, &body);
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    let event = api
        .expect_audit(&THROTTLED, "identity=frank&result=429", &body)
        .await;
    assert_eq!(event["operation"], "directory_token", "{event}");
}

#[tokio::test]
async fn config_json_key_mismatch_and_missing_helper() {
    let server = TestServer::start().await;
    let host = server.host();
    let rt = refresh_token_for(&server, OWNER_USER, OWNER_PASSWORD).await;
    // Stored under the scheme-prefixed spelling: clients look up `host`.
    let dir =
        config_dir_with(json!({"auths": {format!("https://{host}/"): {"identitytoken": rt}}}));
    let run = check_health(&[&host], dir.path()).await;
    let f = run.finding("CREDENTIAL_KEY_MISMATCH");
    assert_eq!(f["status"], "warning");
    assert!(
        f["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("https://{host}/")),
        "{f}"
    );
    run.finding("CREDENTIALS_MISSING");

    // A credential helper that is not installed.
    let dir = config_dir_with(
        json!({"auths": {host.clone(): {}}, "credsStore": "berth-test-nonexistent"}),
    );
    let run = check_health(&[&host], dir.path()).await;
    let f = run.finding("CREDENTIAL_HELPER_MISSING");
    assert_eq!(f["status"], "error");
    assert!(f["message"]
        .as_str()
        .unwrap_or_default()
        .contains("docker-credential-berth-test-nonexistent"));
    assert_ne!(run.exit, 0);

    // Not JSON at all.
    let dir = empty_config_dir();
    std::fs::write(dir.path().join("config.json"), "{not json").expect("write");
    let run = check_health(&[&host], dir.path()).await;
    assert_eq!(run.finding("CONFIG_JSON_ERROR")["status"], "error");
}

/// A credential helper speaking docker's protocol (a shell script: `get`
/// reads the server URL on stdin and prints the credential JSON) serves
/// the stored refresh token.
#[tokio::test]
async fn credential_helper_serves_the_stored_token() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = TestServer::start().await;
    let host = server.host();
    let rt = refresh_token_for(&server, OWNER_USER, OWNER_PASSWORD).await;
    let bin = tempfile::tempdir().expect("bin dir");
    let helper = bin.path().join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r server\nif [ \"$1\" = get ] && [ \"$server\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"<token>\",\"Secret\":\"{rt}\"}}' \"$server\"\n  exit 0\nfi\necho 'credentials not found in native keychain'\nexit 1\n"
        ),
    )
    .expect("write helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = config_dir_with(json!({"auths": {host.clone(): {}}, "credsStore": "berthtest"}));
    let run = check_health_with_path(&[&host], dir.path(), Some(bin.path())).await;
    let creds = run.named("credentials");
    assert!(
        creds[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("docker-credential-berthtest"),
        "{:#}",
        run.report
    );
    assert_eq!(
        run.named("refresh token")[0]["status"],
        "ok",
        "{:#}",
        run.report
    );
    assert_eq!(run.exit, 0, "{:#}", run.report);

    // Another registry: the helper has nothing, so no credentials.
    let other = format!(
        "localhost:{}",
        server.host().rsplit(':').next().unwrap_or_default()
    );
    let dir = config_dir_with(json!({"credHelpers": {other.clone(): "berthtest"}}));
    let run = check_health_with_path(&[&other], dir.path(), Some(bin.path())).await;
    run.finding("CREDENTIALS_MISSING");
}

/// Certificate files for `berth serve --tls-cert/--tls-key`, and the CA
/// that signed them (PEM).
struct CertFiles {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    ca: std::path::PathBuf,
}

/// A leaf for `names`, signed by a new CA called `ca_name`; with
/// `expired` its validity ended in 2021.
fn issue_certificate(dir: &Path, ca_name: &str, names: &[&str], expired: bool) -> CertFiles {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let mut leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    if expired {
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .expect("leaf cert");
    let files = CertFiles {
        cert: dir.join("leaf.crt"),
        key: dir.join("leaf.key"),
        ca: dir.join("ca.crt"),
    };
    std::fs::write(&files.cert, leaf_cert.pem()).expect("write cert");
    std::fs::write(&files.key, leaf_key.serialize_pem()).expect("write key");
    std::fs::write(&files.ca, ca_cert.pem()).expect("write ca");
    files
}

#[tokio::test]
async fn tls_hostname_mismatch_expiry_and_foreign_issuer() {
    let dir = empty_config_dir();
    let certs = tempfile::tempdir().expect("cert dir");
    let cases: [(&str, &[&str], bool, bool, &str); 3] = [
        // (CA name, certificate names, expired, trust the CA, expected text)
        (
            "Registry CA",
            &["registry.internal"],
            false,
            true,
            "hostname mismatch",
        ),
        ("Registry CA", &["127.0.0.1"], true, true, "expired"),
        (
            "Corp Proxy CA",
            &["127.0.0.1"],
            false,
            false,
            "Corp Proxy CA",
        ),
    ];
    for (i, (ca_name, names, expired, trust, expected)) in cases.into_iter().enumerate() {
        let case_dir = certs.path().join(i.to_string());
        std::fs::create_dir_all(&case_dir).expect("case dir");
        let files = issue_certificate(&case_dir, ca_name, names, expired);
        let server = tls_server_with(&[
            "--tls-cert",
            &files.cert.display().to_string(),
            "--tls-key",
            &files.key.display().to_string(),
        ])
        .await;
        let host = format!("127.0.0.1:{}", server.port);
        let ca = files.ca.display().to_string();
        let mut args = vec![host.as_str()];
        if trust {
            args.extend(["--ca-cert", ca.as_str()]);
        }
        let run = check_health(&args, dir.path()).await;
        let f = run.finding("CONNECTIVITY_SSL_ERROR");
        assert_eq!(f["status"], "error");
        assert!(
            f["message"].as_str().unwrap_or_default().contains(expected),
            "{expected}: {f}"
        );
        assert_ne!(run.exit, 0);
    }
}

/// A stored refresh token whose `exp` has passed is flagged before the
/// registry is asked. A genuinely expired token needs a 3-hour wait, so
/// the test rewrites the `exp` of a real one: the registry then refuses
/// its signature (the reason differs, the local detection is the same).
#[tokio::test]
async fn expired_stored_token_is_flagged_locally() {
    let server = TestServer::start().await;
    let rt = refresh_token_for(&server, OWNER_USER, OWNER_PASSWORD).await;
    let parts: Vec<&str> = rt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value =
        serde_json::from_slice(&b64.decode(parts[1]).expect("base64 claims")).expect("claims");
    claims["exp"] = json!(1_600_000_000u64);
    let expired = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    let dir = config_with_identity_token(&server.host(), &expired);
    let run = check_health(&[&server.host()], dir.path()).await;
    run.expect_row(&EXPIRED_STORED_TOKEN);
    run.finding("CONNECTIVITY_REFRESH_TOKEN_ERROR");
    let (status, body) = use_refresh_token(&server, &expired).await;
    expect_http(&EXPIRED_STORED_TOKEN, status, &body);
    Api::new(&server)
        .await
        .expect_audit(&EXPIRED_STORED_TOKEN, "operation=token_post", &body)
        .await;
}

/// Service-principal secrets live at least a day: the server's clock moves
/// two days on and the secret that worked is refused as expired.
#[tokio::test]
async fn expired_service_principal_secret() {
    let clock = Clock::new();
    let server = clock.server().await;
    let api = Api::new(&server).await;
    let (app_id, secret) = api.service_principal("nightly-robot", "AcrPull").await;
    let dir = empty_config_dir();
    let args = [
        server.host(),
        "--service-principal".into(),
        "-u".into(),
        app_id.clone(),
        "-p".into(),
        secret.clone(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = check_health(&args, dir.path()).await;
    assert_eq!(run.exit, 0, "valid for a day: {:#}", run.report);

    clock.at(2 * 86_400);
    let run = check_health(&args, dir.path()).await;
    run.expect_row(&EXPIRED_SP_SECRET);
    let (status, body) = answer(
        plain()
            .post(format!("{}/directory/token", server.base_url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", app_id.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .expect("client credentials"),
    )
    .await;
    expect_http(&EXPIRED_SP_SECRET, status, &body);
    // The Owner's directory token expired with the clock too: a fresh one.
    let api = Api::new(&server).await;
    let event = api
        .expect_audit(&EXPIRED_SP_SECRET, &format!("identity={app_id}"), &body)
        .await;
    assert_eq!(event["operation"], "directory_token", "{event}");
}

/// Directory and refresh tokens live 3 hours (+60 s leeway): with the
/// server's clock past that, the token `berth login` / `docker login`
/// stored is refused, and so is a directory token at the exchange.
#[tokio::test]
async fn expired_directory_and_refresh_tokens() {
    let clock = Clock::new();
    let server = clock.server().await;
    let api = Api::new(&server).await;
    api.user("grace", "grace-password-1", Some("AcrPull")).await;
    let rt = refresh_token_for(&server, "grace", "grace-password-1").await;
    let (status, body) = directory_login(&server, "grace", "grace-password-1").await;
    assert_eq!(status, 200, "{body}");
    let directory_token = body["access_token"].as_str().expect("token").to_string();
    let dir = config_with_identity_token(&server.host(), &rt);

    clock.at(3 * 3600 + 60 + 1);
    let run = check_health(&[&server.host()], dir.path()).await;
    run.expect_row(&EXPIRED_REFRESH_TOKEN);
    // Locally (real clock) the stored token is still valid, expiring soon.
    let soon = run.finding("CREDENTIAL_EXPIRING_SOON");
    assert_eq!(soon["status"], "warning", "{soon}");
    let (status, body) = use_refresh_token(&server, &rt).await;
    expect_http(&EXPIRED_REFRESH_TOKEN, status, &body);

    let (status, body2) = answer(
        plain()
            .post(format!("{}/oauth2/exchange", server.base_url()))
            .form(&[
                ("grant_type", "access_token"),
                ("service", server.host().as_str()),
                ("access_token", directory_token.as_str()),
            ])
            .send()
            .await
            .expect("exchange"),
    )
    .await;
    expect_http(&EXPIRED_DIRECTORY_TOKEN, status, &body2);

    let api = Api::new(&server).await;
    let event = api
        .expect_audit(&EXPIRED_REFRESH_TOKEN, "operation=token_post", &body)
        .await;
    assert_eq!(event["result"], 401, "{event}");
    api.expect_audit(&EXPIRED_DIRECTORY_TOKEN, "operation=exchange", &body2)
        .await;
}

/// The claims of a JWT, unverified (to see whom a token names).
fn common_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

// ---------------------------------------------------------------------------
// Refusals that name the fix (issue 13)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn refresh_token_with_another_username_names_the_null_guid() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.user("ivy", "ivy-password-1", Some("AcrPull")).await;
    let rt = refresh_token_for(&server, "ivy", "ivy-password-1").await;
    let dir = empty_config_dir();
    let run = check_health(&[&server.host(), "-u", "ivy", "-p", &rt], dir.path()).await;
    run.expect_row(&REFRESH_TOKEN_WRONG_USERNAME);

    let (status, body) = docker_token(&server, Some(("ivy", &rt)), &[]).await;
    expect_http(&REFRESH_TOKEN_WRONG_USERNAME, status, &body);
    api.expect_audit(&REFRESH_TOKEN_WRONG_USERNAME, "identity=ivy", &body)
        .await;
    // No enumeration: a name nobody has reads the same.
    let (status, ghost) = docker_token(&server, Some(("ghost-user", &rt)), &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        without_correlation_id(&message_of(&ghost)),
        without_correlation_id(&message_of(&body))
    );
    // The null GUID works.
    let (status, ok) = docker_token(&server, Some((NULL_USER, &rt)), &[]).await;
    assert_eq!(status, 200, "{ok}");
}

#[tokio::test]
async fn user_push_without_role_names_the_roles() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.user("alice", "alice-password-1", Some("AcrPull")).await;
    let dir = empty_config_dir();
    let run = check_health(
        &[
            &server.host(),
            "-u",
            "alice",
            "-p",
            "alice-password-1",
            "--repository",
            "team/app",
        ],
        dir.path(),
    )
    .await;
    run.expect_row(&USER_PUSH_WITHOUT_ROLE);

    let (status, body) = answer(
        plain()
            .post(format!("{}/v2/team/app/blobs/uploads/", server.base_url()))
            .basic_auth("alice", Some("alice-password-1"))
            .header("Content-Length", "0")
            .send()
            .await
            .expect("push"),
    )
    .await;
    expect_http(&USER_PUSH_WITHOUT_ROLE, status, &body);
    api.expect_audit(&USER_PUSH_WITHOUT_ROLE, "identity=alice", &body)
        .await;
    // A role scoped elsewhere is not revealed to the client.
    api.post(
        "/role-assignments",
        json!({"assignee": "alice", "role": "AcrPush", "scope": "repositories/secret-team/*"}),
    )
    .await;
    let (_, body) = answer(
        plain()
            .post(format!("{}/v2/team/app/blobs/uploads/", server.base_url()))
            .basic_auth("alice", Some("alice-password-1"))
            .header("Content-Length", "0")
            .send()
            .await
            .expect("push"),
    )
    .await;
    let m = message_of(&body);
    assert!(m.contains("needs AcrPush, Contributor or Owner"), "{m}");
    assert!(!m.contains("secret-team"), "{m}");
}

#[tokio::test]
async fn management_without_role_names_reader() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.user("mallory", "mallory-password-1", Some("AcrPush"))
        .await;
    let dir = empty_config_dir();
    let run = check_health(
        &[&server.host(), "-u", "mallory", "-p", "mallory-password-1"],
        dir.path(),
    )
    .await;
    run.expect_row(&MANAGEMENT_WITHOUT_ROLE);

    let (_, login) = directory_login(&server, "mallory", "mallory-password-1").await;
    let token = login["access_token"].as_str().expect("directory token");
    let (status, body) = answer(
        plain()
            .get(format!("{}/api/v1/registry", server.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .expect("management read"),
    )
    .await;
    expect_http(&MANAGEMENT_WITHOUT_ROLE, status, &body);
    let event = api
        .expect_audit(&MANAGEMENT_WITHOUT_ROLE, "identity=mallory", &body)
        .await;
    assert_eq!(event["operation"], "management", "{event}");
}

#[tokio::test]
async fn access_changed_after_the_token_was_issued() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    api.user("oscar", "oscar-password-1", Some("AcrPull")).await;
    let (status, body) = docker_token(
        &server,
        Some(("oscar", "oscar-password-1")),
        &[("scope", "repository:team/app:pull,push")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "repository:team/app:pull");
    let old = body["access_token"].as_str().expect("token").to_string();
    api.post(
        "/role-assignments",
        json!({"assignee": "oscar", "role": "AcrPush"}),
    )
    .await;

    let (status, body) = answer(
        plain()
            .post(format!("{}/v2/team/app/blobs/uploads/", server.base_url()))
            .bearer_auth(&old)
            .header("Content-Length", "0")
            .send()
            .await
            .expect("push with the old token"),
    )
    .await;
    expect_http(&ACCESS_CHANGED, status, &body);
    api.expect_audit(&ACCESS_CHANGED, "identity=oscar", &body)
        .await;

    let dir = empty_config_dir();
    let run = check_health(
        &[
            &server.host(),
            "-u",
            "oscar",
            "-p",
            "oscar-password-1",
            "--repository",
            "team/app",
            "--access-token",
            &old,
        ],
        dir.path(),
    )
    .await;
    run.expect_row(&ACCESS_CHANGED);
    // A new token carries the new access.
    let (_, body) = docker_token(
        &server,
        Some(("oscar", "oscar-password-1")),
        &[("scope", "repository:team/app:pull,push")],
    )
    .await;
    assert_eq!(body["scope"], "repository:team/app:pull,push", "{body}");
}

/// A repository token whose password1 lived one day, two days on.
#[tokio::test]
async fn expired_token_password_names_the_renewal_command() {
    let clock = Clock::new();
    let server = clock.server().await;
    let api = Api::new(&server).await;
    api.post(
        "/tokens",
        json!({"name": "nightly-token", "repositories": [{"repository": "app", "actions": ["content/read"]}]}),
    )
    .await;
    let generated = api
        .post(
            "/tokens/nightly-token/credentials/generate",
            json!({"passwordName": "password1", "expirationInDays": 1}),
        )
        .await;
    let password = generated["newPasswords"][0]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("password in {generated}"))
        .to_string();
    clock.at(2 * 86_400);
    let dir = empty_config_dir();
    let run = check_health(
        &[&server.host(), "-u", "nightly-token", "-p", &password],
        dir.path(),
    )
    .await;
    run.expect_row(&EXPIRED_TOKEN_PASSWORD);
    let (status, body) = docker_token(&server, Some(("nightly-token", &password)), &[]).await;
    expect_http(&EXPIRED_TOKEN_PASSWORD, status, &body);
    assert!(
        message_of(&body)
            .contains("`berth token credential generate --name nightly-token --password1`"),
        "{body}"
    );
    let api = Api::new(&server).await;
    api.expect_audit(&EXPIRED_TOKEN_PASSWORD, "identity=nightly-token", &body)
        .await;
}
