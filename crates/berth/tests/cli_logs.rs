//! `berth logs login|repository|explain` against a spawned server: failed
//! logins and repository operations caused over real HTTP, then read back
//! through the CLI in json and table form, with paging, the `delete`
//! operation alias, a Reader allowed and an AcrPull user refused.
//!
//! Audit writes are asynchronous: the CLI is re-run (bounded) until the
//! events show up.

mod common;

use std::time::Duration;

use common::cli::CliEnv;
use common::*;
use serde_json::Value;

/// Rounds and pause of the bounded wait for audit events.
const POLL_ROUNDS: usize = 100;
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Run `berth args --output json` until `done` holds for its `events`.
fn poll(env: &CliEnv, args: &[&str], done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Value::Null;
    for _ in 0..POLL_ROUNDS {
        let v = env.json(args);
        let events = v["events"].as_array().cloned().unwrap_or_default();
        if done(&events) {
            return events;
        }
        last = v;
        std::thread::sleep(POLL_EVERY);
    }
    panic!("berth {args:?}: events did not show up; last: {last}");
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["correlation_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `POST /directory/token` with a password; the status.
async fn directory_login(server: &TestServer, user: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/directory/token", server.base_url()))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .expect("directory token")
        .status()
        .as_u16()
}

#[tokio::test]
async fn logs_show_failures_deletions_and_explanations() {
    let server = TestServer::start().await;
    let owner = CliEnv::new();
    owner.login_owner(&server);
    for (name, role) in [("puller", "AcrPull"), ("auditor", "Reader")] {
        owner.json(&[
            "user",
            "create",
            "--name",
            name,
            "--password",
            &format!("{name}-password-1"),
        ]);
        owner.json(&[
            "role-assignment",
            "create",
            "--assignee",
            name,
            "--role",
            role,
        ]);
    }

    // Two failed logins.
    assert_eq!(
        directory_login(&server, "ghost-user", "whatever-1").await,
        401
    );
    assert_eq!(
        directory_login(&server, OWNER_USER, "not-the-password").await,
        401
    );

    // Repository operations on `app`: two pushes, a manifest deletion, a
    // repository deletion; and a push refused to an AcrPull user.
    let reg = server.registry();
    let first = Image::random(1, 32);
    let second = Image::random(1, 32);
    reg.push_image("app", "v1", &first).await;
    reg.push_image("app", "v2", &second).await;
    let refused = reqwest::Client::new()
        .put(format!("{}/v2/app/manifests/v3", server.base_url()))
        .basic_auth("puller", Some("puller-password-1"))
        .header("content-type", OCI_MANIFEST)
        .body(first.manifest.clone())
        .send()
        .await
        .expect("push as puller");
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("403 body");
    let refusal_id = body["correlation_id"]
        .as_str()
        .expect("correlation_id in the 403 body")
        .to_string();
    reg.delete(&format!("/v2/app/manifests/{}", first.digest()))
        .await
        .expect_status(202);
    owner.ok(&["repository", "delete", "--repository", "app", "--yes"]);

    // berth logs login --failures --since 1h
    let failures = poll(
        &owner,
        &["logs", "login", "--failures", "--since", "1h"],
        |e| {
            e.iter().any(|x| x["reason"] == "unknown_identity")
                && e.iter().any(|x| x["reason"] == "bad_secret")
                && e.iter().any(|x| x["identity"]["name"] == "puller")
        },
    );
    assert!(
        failures
            .iter()
            .all(|e| e["result"].as_u64().is_some_and(|r| r >= 400)),
        "{failures:#?}"
    );
    let ghost = failures
        .iter()
        .find(|e| e["reason"] == "unknown_identity")
        .expect("ghost");
    assert_eq!(ghost["username"], "ghost-user");
    assert_eq!(ghost["client_ip"], "127.0.0.1");
    let none = owner.json(&[
        "logs",
        "login",
        "--failures",
        "--until",
        "2000-01-01T00:00:00Z",
    ]);
    assert_eq!(none["events"], Value::Array(vec![]), "{none}");

    // The table: one row per event, identity or username tried.
    let table = owner.ok(&[
        "logs",
        "login",
        "--failures",
        "--identity",
        "ghost-user",
        "--output",
        "table",
    ]);
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    for col in [
        "Time",
        "Identity",
        "ClientIp",
        "Operation",
        "Result",
        "Reason",
        "CorrelationId",
    ] {
        assert!(header.contains(col), "{table}");
    }
    assert!(table.contains("ghost-user"), "{table}");
    assert!(table.contains("unknown_identity"), "{table}");
    assert!(
        !table.contains("bad_secret"),
        "filtered by identity: {table}"
    );

    // berth logs repository --repository app --operation delete: both
    // kinds of deletion, nothing else.
    let deletions = poll(
        &owner,
        &[
            "logs",
            "repository",
            "--repository",
            "app",
            "--operation",
            "delete",
        ],
        |e| e.len() >= 2,
    );
    let mut ops: Vec<&str> = deletions
        .iter()
        .map(|e| e["operation"].as_str().unwrap_or_default())
        .collect();
    ops.sort_unstable();
    assert_eq!(
        ops,
        ["delete_manifest", "delete_repository"],
        "{deletions:#?}"
    );
    assert!(deletions.iter().all(|e| e["repository"] == "app"));
    let pushes = owner.json(&[
        "logs",
        "repository",
        "--repository",
        "app",
        "--operation",
        "push",
        "--result",
        "201",
    ]);
    assert_eq!(
        pushes["events"].as_array().map(Vec::len),
        Some(2),
        "{pushes}"
    );

    // Paging: --limit 1 is one page with a cursor; --all follows it to the
    // same events in the same order.
    let one = owner.json(&["logs", "login", "--failures", "--limit", "1"]);
    assert_eq!(one["events"].as_array().map(Vec::len), Some(1), "{one}");
    assert!(one["next"].is_string(), "{one}");
    let whole = owner.json(&["logs", "login", "--failures"]);
    let paged = owner.json(&["logs", "login", "--failures", "--limit", "1", "--all"]);
    assert!(paged["next"].is_null(), "{paged}");
    let whole_ids = ids(whole["events"].as_array().expect("events"));
    assert!(whole_ids.len() >= 3, "{whole}");
    assert_eq!(ids(paged["events"].as_array().expect("events")), whole_ids);

    // berth logs explain <id from the 403 body>: readable and JSON.
    let text = owner.ok(&["logs", "explain", &refusal_id, "--output", "table"]);
    for part in [
        refusal_id.as_str(),
        "Recognised:",
        "puller",
        "Asked:",
        "repository app: push",
        "Granted:",
        "repository app: pull → allowed by role_assignment (AcrPull on registry)",
        "repository app: push → denied (insufficient_permission)",
        "Decided by:",
        "role_assignment (insufficient_permission)",
        "Message:",
        "Fix:",
        "berth role-assignment create",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    let record = owner.json(&["logs", "explain", &refusal_id]);
    assert_eq!(record["correlation_id"], refusal_id.as_str());
    assert_eq!(record["record"]["decided_by"]["rule"], "role_assignment");
    assert_eq!(record["record"]["status"], 403);
    let err = owner.fails(&["logs", "explain", "no-such-id"]);
    assert!(err.contains("404") && err.contains("NOT_FOUND"), "{err}");

    // Bad input: the server's message, exit 1; a usage error, exit 2.
    let err = owner.fails(&["logs", "login", "--since", "yesterday"]);
    assert!(err.contains("400") && err.contains("field: since"), "{err}");
    let out = owner.run(&["logs", "repository", "--limit", "lots"], None);
    assert_eq!(out.status.code(), Some(2));

    // A Reader may read the logs.
    let reader = CliEnv::new();
    reader.login(&server, "auditor", "auditor-password-1");
    let seen = reader.json(&["logs", "login", "--failures", "--since", "1h"]);
    assert!(
        !seen["events"].as_array().expect("events").is_empty(),
        "{seen}"
    );
    reader.json(&["logs", "explain", &refusal_id]);

    // An AcrPull user may not: exit 1 with the server's refusal.
    let puller = CliEnv::new();
    puller.login(&server, "puller", "puller-password-1");
    for args in [
        &["logs", "login"][..],
        &["logs", "repository", "--repository", "app"][..],
        &["logs", "explain", &refusal_id][..],
    ] {
        let err = puller.fails(args);
        assert!(err.contains("403"), "{args:?}: {err}");
        assert!(err.contains("correlation id: "), "{args:?}: {err}");
    }
}

/// `berth logs explain <id>` (and the API under it) run right after a
/// refusal finds it, without any retry: the lookup waits for the audit
/// writer's pending batch (it lingers up to 20 ms) instead of answering 404.
#[tokio::test]
async fn explain_right_after_a_refusal_finds_it() {
    let server = TestServer::start().await;
    let owner = CliEnv::new();
    owner.login_owner(&server);
    let api_token = common::login::owner_api(&server).await;
    let client = reqwest::Client::new();
    for round in 0..10 {
        let refused = client
            .get(format!("{}/v2/app/tags/list", server.base_url()))
            .basic_auth("nobody", Some("wrong-password"))
            .send()
            .await
            .expect("refused request");
        assert_eq!(refused.status(), 401);
        let id = refused
            .headers()
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .expect("correlation id")
            .to_string();
        let explained = client
            .get(format!("{}/api/v1/logs/explain/{id}", server.base_url()))
            .bearer_auth(&api_token)
            .send()
            .await
            .expect("explain");
        assert_eq!(explained.status(), 200, "round {round}: explain {id}");
    }
    let refused = client
        .get(format!("{}/v2/app/tags/list", server.base_url()))
        .basic_auth("nobody", Some("wrong-password"))
        .send()
        .await
        .expect("refused request");
    let id = refused
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .expect("correlation id")
        .to_string();
    let record = owner.json(&["logs", "explain", &id]);
    assert_eq!(record["record"]["reason"], "unknown_identity", "{record}");
}
