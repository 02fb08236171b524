//! Audit events over real HTTP (issue 5): login events with precise reason
//! codes, repository events, the query API's filters and pagination, the
//! correlation id of 401/403 bodies resolving to an explain record, who may
//! read the logs, `/metrics`, and the JSON-lines stream.
//!
//! Audit writes are asynchronous: queries poll with a bounded wait.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Longest wait for an event to become visible.
const POLL_ROUNDS: usize = 200;
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A client of the management API with fixed credentials.
struct Api {
    base: String,
    http: reqwest::Client,
    auth: Option<String>,
}

impl Api {
    fn basic(server: &TestServer, user: &str, password: &str) -> Api {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Api {
            base: server.base_url(),
            http: reqwest::Client::new(),
            auth: Some(format!("Basic {b}")),
        }
    }

    fn owner(server: &TestServer) -> Api {
        Api::basic(server, OWNER_USER, OWNER_PASSWORD)
    }

    fn anonymous(server: &TestServer) -> Api {
        Api {
            base: server.base_url(),
            http: reqwest::Client::new(),
            auth: None,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let (s, v) = self.send(method.clone(), path, body).await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {v}");
        v
    }

    /// Poll a logs endpoint until `done` holds for its events.
    async fn poll(&self, path: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut last = Value::Null;
        for _ in 0..POLL_ROUNDS {
            let (s, v) = self.get(path).await;
            assert_eq!(s, 200, "GET {path}: {v}");
            let events = v["events"].as_array().cloned().unwrap_or_default();
            if done(&events) {
                return events;
            }
            last = v;
            tokio::time::sleep(POLL_EVERY).await;
        }
        panic!("audit events did not show up at {path}; last answer: {last}");
    }

    /// Poll the explain endpoint until the record is there.
    async fn explain(&self, correlation_id: &str) -> Value {
        let path = format!("/api/v1/logs/explain/{correlation_id}");
        for _ in 0..POLL_ROUNDS {
            let (s, v) = self.get(&path).await;
            if s == 200 {
                return v;
            }
            assert_eq!(s, 404, "GET {path}: {v}");
            tokio::time::sleep(POLL_EVERY).await;
        }
        panic!("no explain record for {correlation_id}");
    }
}

async fn token_get(server: &TestServer, user: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/oauth2/token", server.base_url()))
        .basic_auth(user, Some(password))
        .query(&[
            ("service", server.host()),
            ("scope", "repository:audit/x:pull".to_string()),
        ])
        .send()
        .await
        .expect("token request")
}

fn correlation_id(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-correlation-id header")
        .to_string()
}

/// A user with a role, returning their password.
async fn user_with_role(owner: &Api, name: &str, role: &str) -> String {
    let pw = format!("{name}-password-123");
    owner
        .expect(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": name, "password": pw})),
            201,
        )
        .await;
    owner
        .expect(
            Method::POST,
            "/api/v1/role-assignments",
            Some(json!({"assignee": name, "role": role})),
            201,
        )
        .await;
    pw
}

/// A repository token with the given scope-map actions on `repository`.
async fn repo_token(owner: &Api, name: &str, repository: &str, actions: &[&str]) -> String {
    let body = owner
        .expect(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": name, "repositories": [
                {"repository": repository, "actions": actions}
            ]})),
            201,
        )
        .await;
    body["newPasswords"][0]["value"]
        .as_str()
        .expect("token password")
        .to_string()
}

fn find<'a>(events: &'a [Value], key: &str, value: &str) -> Option<&'a Value> {
    events.iter().find(|e| e[key] == value)
}

#[tokio::test]
async fn failed_logins_are_recorded_with_precise_reasons() {
    let server = TestServer::start().await;
    let owner = Api::owner(&server);

    // Wrong password and unknown user: same client message, different codes.
    let bad = token_get(&server, OWNER_USER, "wrong-password").await;
    assert_eq!(bad.status(), 401);
    let bad_id = correlation_id(&bad);
    let bad_body: Value = bad.json().await.expect("json");
    assert_eq!(bad_body["correlation_id"], bad_id.as_str());
    let unknown = token_get(&server, "ghost-user", "whatever").await;
    assert_eq!(unknown.status(), 401);
    let unknown_id = correlation_id(&unknown);
    let unknown_body: Value = unknown.json().await.expect("json");
    let strip = |v: &Value, id: &str| {
        v["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .replace(id, "")
    };
    assert_eq!(
        strip(&bad_body, &bad_id),
        strip(&unknown_body, &unknown_id),
        "no user enumeration"
    );
    assert!(
        bad_body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&bad_id),
        "{bad_body}"
    );

    // Basic on /v2 with a wrong password.
    let r = reqwest::Client::new()
        .get(format!("{}/v2/", server.base_url()))
        .basic_auth(OWNER_USER, Some("nope"))
        .header("user-agent", "audit-test/1.0")
        .send()
        .await
        .expect("v2");
    assert_eq!(r.status(), 401);

    // A bearer token with a tampered signature.
    let ok = token_get(&server, OWNER_USER, OWNER_PASSWORD).await;
    assert_eq!(ok.status(), 200);
    let token = ok.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let sig = parts[2].clone();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    parts[2] = format!("{flipped}{}", &sig[1..]);
    let r = reqwest::Client::new()
        .get(format!("{}/v2/audit/x/manifests/latest", server.base_url()))
        .bearer_auth(parts.join("."))
        .send()
        .await
        .expect("v2 bearer");
    assert_eq!(r.status(), 401);

    // A disabled repository token.
    let pw = repo_token(&owner, "audit-ci", "audit/*", &["content/read"]).await;
    owner
        .expect(
            Method::PATCH,
            "/api/v1/tokens/audit-ci",
            Some(json!({"status": "disabled"})),
            200,
        )
        .await;
    assert_eq!(token_get(&server, "audit-ci", &pw).await.status(), 401);

    let events = owner
        .poll("/api/v1/logs/login?failures=true&ip=127.0.0.1", |e| {
            e.len() >= 5
        })
        .await;
    let by_reason = |reason: &str| {
        find(&events, "reason", reason)
            .unwrap_or_else(|| panic!("no {reason} event in {events:#?}"))
            .clone()
    };
    let e = events
        .iter()
        .find(|e| e["reason"] == "bad_secret" && e["operation"] == "token_get")
        .expect("bad_secret token_get event");
    assert_eq!(e["result"], 401);
    assert_eq!(e["client_ip"], "127.0.0.1");
    assert_eq!(e["login_server"], server.host().as_str());
    assert!(
        e["correlation_id"].is_string() && e["time"].is_string() && e["duration_ms"].is_number()
    );
    let e = by_reason("unknown_identity");
    assert_eq!(e["username"], "ghost-user");
    assert_eq!(e["identity"], Value::Null);
    assert_eq!(e["correlation_id"], unknown_id.as_str());
    let v2 = events
        .iter()
        .find(|e| e["operation"] == "v2_basic")
        .expect("v2_basic event");
    assert_eq!(v2["reason"], "bad_secret");
    assert_eq!(v2["user_agent"], "audit-test/1.0");
    let e = by_reason("bad_signature");
    assert_eq!(e["operation"], "v2_bearer");
    let e = by_reason("disabled_token");
    assert_eq!(e["username"], "audit-ci");

    // Filters: identity (the username tried), operation, result.
    let (_, v) = owner.get("/api/v1/logs/login?identity=ghost-user").await;
    let only = v["events"].as_array().expect("events");
    assert_eq!(only.len(), 1, "{v}");
    let (_, v) = owner
        .get("/api/v1/logs/login?operation=v2_bearer&result=401")
        .await;
    assert!(v["events"]
        .as_array()
        .expect("events")
        .iter()
        .all(|e| e["operation"] == "v2_bearer" && e["result"] == 401));
    // The successful token login is recorded with the identity.
    let ok = owner
        .poll("/api/v1/logs/login?operation=token_get&result=200", |e| {
            !e.is_empty()
        })
        .await;
    assert_eq!(ok[0]["reason"], "ok");
    assert_eq!(ok[0]["identity"]["name"], OWNER_USER);
    assert_eq!(ok[0]["identity"]["kind"], "directory_user");
    // Time filters.
    let (_, v) = owner.get("/api/v1/logs/login?since=1h&failures=true").await;
    assert!(v["events"].as_array().expect("events").len() >= 5);
    let (_, v) = owner
        .get("/api/v1/logs/login?until=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(v["events"], json!([]));
    let (s, v) = owner.get("/api/v1/logs/login?since=yesterday").await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errors"][0]["field"], "since");
}

#[tokio::test]
async fn repository_operations_are_recorded_and_paginated() {
    let server = TestServer::start().await;
    let owner = Api::owner(&server);
    let reg = server.registry();
    let repo = "audit/app";
    let image = Image::random(1, 128);
    reg.push_image(repo, "v1", &image).await;
    reg.get_manifest(repo, "v1").await.expect_status(200);
    // HEAD is not a pull event.
    reg.head(&format!("/v2/{repo}/manifests/v1"))
        .await
        .expect_status(200);
    reg.delete(&format!("/v2/{repo}/manifests/v1"))
        .await
        .expect_status(202);
    reg.delete(&format!("/v2/{repo}/manifests/{}", image.digest()))
        .await
        .expect_status(202);
    // A second repository, deleted through the management API.
    reg.push_image("audit/other", "v1", &Image::random(1, 16))
        .await;
    owner
        .expect(
            Method::DELETE,
            "/api/v1/repositories/audit/other",
            None,
            204,
        )
        .await;

    let path = format!("/api/v1/logs/repository?repository={repo}");
    let events = owner.poll(&path, |e| e.len() >= 4).await;
    let ops: Vec<&str> = events
        .iter()
        .map(|e| e["operation"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ops,
        ["delete_manifest", "untag", "pull", "push"],
        "{events:#?}"
    );
    let push = &events[3];
    assert_eq!(push["tag"], "v1");
    assert_eq!(push["digest"], image.digest().as_str());
    assert_eq!(push["media_type"], OCI_MANIFEST);
    assert_eq!(push["size"], image.manifest.len());
    assert_eq!(push["result"], 201);
    assert_eq!(push["identity"]["name"], OWNER_USER);
    assert_eq!(push["client_ip"], "127.0.0.1");
    let pull = &events[2];
    assert_eq!(pull["digest"], image.digest().as_str());
    assert_eq!(pull["size"], image.manifest.len());
    assert_eq!(events[1]["tag"], "v1");
    assert_eq!(events[0]["digest"], image.digest().as_str());

    let deleted = owner
        .poll("/api/v1/logs/repository?operation=delete_repository", |e| {
            !e.is_empty()
        })
        .await;
    assert_eq!(deleted[0]["repository"], "audit/other");
    assert_eq!(deleted[0]["result"], 204);

    // Pagination: two per page, every event once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut p = format!("{path}&limit=2");
        if let Some(c) = &cursor {
            p.push_str(&format!("&cursor={c}"));
        }
        let (s, v) = owner.get(&p).await;
        assert_eq!(s, 200, "{v}");
        for e in v["events"].as_array().expect("events") {
            seen.push(e["correlation_id"].as_str().unwrap_or_default().to_string());
        }
        match v["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let all: Vec<String> = events
        .iter()
        .map(|e| e["correlation_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(seen, all);
    let (s, v) = owner.get(&format!("{path}&cursor=not-a-cursor")).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errors"][0]["field"], "cursor");
    let (s, _) = owner.get(&format!("{path}&colour=blue")).await;
    assert_eq!(s, 400);
    let (_, v) = owner.get(&format!("{path}&failures=true")).await;
    assert_eq!(v["events"], json!([]));
}

#[tokio::test]
async fn refusals_carry_a_correlation_id_that_explains_them() {
    let server = TestServer::start().await;
    let owner = Api::owner(&server);
    let pw = user_with_role(&owner, "puller", "AcrPull").await;
    let image = Image::random(1, 16);
    server
        .registry()
        .push_image("audit/locked", "v1", &image)
        .await;

    // A user whose role lacks push.
    let r = reqwest::Client::new()
        .put(format!(
            "{}/v2/audit/locked/manifests/v2",
            server.base_url()
        ))
        .basic_auth("puller", Some(&pw))
        .header("content-type", OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 403);
    let id = correlation_id(&r);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["correlation_id"], id.as_str());
    assert_eq!(body["errors"][0]["code"], "DENIED");
    let x = owner.explain(&id).await;
    assert_eq!(x["correlation_id"], id.as_str());
    let rec = &x["record"];
    assert_eq!(rec["status"], 403);
    assert_eq!(rec["recognised"]["name"], "puller");
    assert_eq!(rec["decided_by"]["rule"], "role_assignment", "{x}");
    assert_eq!(rec["decided_by"]["reason"], "insufficient_permission");
    assert!(
        rec["asked"]
            .as_array()
            .expect("asked")
            .iter()
            .any(|a| a["action"] == "push" && a["name"] == "audit/locked"),
        "{x}"
    );
    assert!(rec["granted"].is_array(), "{x}");
    // The refused push is a repository event and a login event.
    let ev = owner
        .poll("/api/v1/logs/repository?failures=true", |e| !e.is_empty())
        .await;
    assert_eq!(ev[0]["operation"], "push");
    assert_eq!(ev[0]["result"], 403);
    let ev = owner
        .poll("/api/v1/logs/login?identity=puller&failures=true", |e| {
            !e.is_empty()
        })
        .await;
    assert_eq!(ev[0]["reason"], "insufficient_permission");

    // A repository token whose scope map has no push.
    let tpw = repo_token(&owner, "audit-reader", "audit/*", &["content/read"]).await;
    let r = reqwest::Client::new()
        .put(format!(
            "{}/v2/audit/locked/manifests/v3",
            server.base_url()
        ))
        .basic_auth("audit-reader", Some(&tpw))
        .header("content-type", OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 403);
    let x = owner.explain(&correlation_id(&r)).await;
    assert_eq!(x["record"]["decided_by"]["rule"], "scope_map", "{x}");
    assert_eq!(
        x["record"]["decided_by"]["reason"],
        "scope_map_missing_action"
    );

    // Network rules.
    owner
        .expect(
            Method::PATCH,
            "/api/v1/registry",
            Some(json!({"defaultAction": "Deny"})),
            200,
        )
        .await;
    let r = reqwest::Client::new()
        .get(format!("{}/v2/", server.base_url()))
        .send()
        .await
        .expect("denied");
    assert_eq!(r.status(), 403);
    let x = owner.explain(&correlation_id(&r)).await;
    assert_eq!(x["record"]["decided_by"]["rule"], "network_rule", "{x}");
    assert_eq!(x["record"]["reason"], "ip_denied");
    let ev = owner
        .poll("/api/v1/logs/login?operation=v2_anonymous", |e| {
            !e.is_empty()
        })
        .await;
    assert_eq!(ev[0]["reason"], "ip_denied");
    assert_eq!(ev[0]["result"], 403);
    owner
        .expect(
            Method::PATCH,
            "/api/v1/registry",
            Some(json!({"defaultAction": "Allow"})),
            200,
        )
        .await;

    // A wrong password: the explain record has the precise reason.
    let r = token_get(&server, "puller", "not-it").await;
    let x = owner.explain(&correlation_id(&r)).await;
    assert_eq!(x["record"]["reason"], "bad_secret");
    assert_eq!(x["record"]["decided_by"]["rule"], "credential");

    let (s, v) = owner.get("/api/v1/logs/explain/no-such-id").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["errors"][0]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn readers_may_query_the_logs_others_may_not() {
    let server = TestServer::start().await;
    let owner = Api::owner(&server);
    let reader_pw = user_with_role(&owner, "auditor", "Reader").await;
    let pusher_pw = user_with_role(&owner, "pusher", "AcrPush").await;
    let token_pw = repo_token(&owner, "audit-tok", "audit/*", &["content/read"]).await;
    for path in [
        "/api/v1/logs/login",
        "/api/v1/logs/repository",
        "/api/v1/logs/explain/whatever",
    ] {
        let (s, v) = Api::basic(&server, "auditor", &reader_pw).get(path).await;
        assert!(s == 200 || s == 404, "Reader on {path}: {s} {v}");
        let (s, v) = Api::basic(&server, "pusher", &pusher_pw).get(path).await;
        assert_eq!(s, 403, "AcrPush on {path}: {v}");
        assert!(v["correlation_id"].is_string(), "{v}");
        let (s, _) = Api::basic(&server, "audit-tok", &token_pw).get(path).await;
        assert_eq!(s, 403, "repository token on {path}");
        let (s, _) = Api::anonymous(&server).get(path).await;
        assert_eq!(s, 401, "anonymous on {path}");
    }
    // The OpenAPI document lists the endpoints.
    let (_, doc) = owner.get("/api/v1/openapi.json").await;
    for p in [
        "/api/v1/logs/login",
        "/api/v1/logs/repository",
        "/api/v1/logs/explain/{correlation_id}",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing from OpenAPI");
    }
}

#[tokio::test]
async fn metrics_count_auth_outcomes_by_reason() {
    let server = TestServer::start().await;
    assert_eq!(token_get(&server, OWNER_USER, "wrong").await.status(), 401);
    assert_eq!(
        token_get(&server, "nobody-at-all", "wrong").await.status(),
        401
    );
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    let line = |needle: &[&str]| {
        text.lines()
            .find(|l| needle.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no metric with {needle:?} in:\n{text}"))
            .to_string()
    };
    let bad = line(&[
        "berth_auth_attempts_total{",
        "reason=\"bad_secret\"",
        "operation=\"token_get\"",
        "result=\"401\"",
    ]);
    assert!(bad.ends_with(" 1"), "{bad}");
    line(&["berth_auth_attempts_total{", "reason=\"unknown_identity\""]);
    line(&["berth_audit_events_dropped_total"]);
    line(&[
        "berth_http_requests_total{",
        "class=\"token\"",
        "status=\"401\"",
    ]);
    line(&["berth_http_request_duration_seconds"]);
}

#[tokio::test]
async fn events_stream_as_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.jsonl");
    let log_arg = log.to_string_lossy().to_string();
    let server = TestServer::start_with(&["--audit-log", &log_arg]).await;
    assert_eq!(token_get(&server, OWNER_USER, "wrong").await.status(), 401);
    for _ in 0..POLL_ROUNDS {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        if let Some(e) = lines
            .iter()
            .find(|e| e["event"] == "login" && e["reason"] == "bad_secret")
        {
            assert_eq!(e["username"], OWNER_USER);
            assert!(lines.iter().any(|e| e["event"] == "explain"));
            return;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    panic!("no login event in {}", log.display());
}

#[tokio::test]
async fn revoked_tokens_and_throttling_have_their_reasons() {
    let server = TestServer::start().await;
    let owner = Api::owner(&server);
    let pw = user_with_role(&owner, "rotator", "AcrPull").await;
    let r = token_get(&server, "rotator", &pw).await;
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    // The password is regenerated: tokens minted from the old one are revoked.
    owner
        .expect(
            Method::PATCH,
            "/api/v1/users/rotator",
            Some(json!({"password": "a-brand-new-password-9"})),
            200,
        )
        .await;
    let r = reqwest::Client::new()
        .get(format!("{}/v2/audit/x/manifests/latest", server.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("v2");
    assert_eq!(r.status(), 401);
    let id = correlation_id(&r);
    let ev = owner
        .poll("/api/v1/logs/login?operation=v2_bearer", |e| !e.is_empty())
        .await;
    assert_eq!(ev[0]["reason"], "revoked_token");
    assert_eq!(ev[0]["correlation_id"], id.as_str());

    // Failed logins past the limit are throttled (429), recorded as such.
    let mut last = StatusCode::OK;
    for _ in 0..25 {
        last = token_get(&server, "throttle-me", "wrong").await.status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let ev = owner
        .poll("/api/v1/logs/login?identity=throttle-me&result=429", |e| {
            !e.is_empty()
        })
        .await;
    assert_eq!(ev[0]["reason"], "throttled");
    assert_eq!(ev[0]["operation"], "token_get");
}
