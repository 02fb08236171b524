//! Audit retention: events older than `--audit-retention-days` are pruned
//! in the background (at start and then hourly). The test backdates stored
//! rows in the SQLite file while the server is down, restarts it, and
//! waits for the pruner to remove them while fresh events stay.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const DAY_MS: i64 = 86_400_000;

async fn login_events(server: &TestServer, query: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/logs/login?{query}", server.base_url()))
        .basic_auth(OWNER_USER, Some(OWNER_PASSWORD))
        .send()
        .await
        .expect("logs");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["events"].as_array().cloned().unwrap_or_default()
}

async fn fail_login(server: &TestServer, user: &str) {
    let r = reqwest::Client::new()
        .get(format!("{}/oauth2/token", server.base_url()))
        .basic_auth(user, Some("wrong"))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 401);
}

/// Poll until `done` holds for the events of `query` (bounded).
async fn wait_for(server: &TestServer, query: &str, done: impl Fn(&[Value]) -> bool) {
    for _ in 0..200 {
        if done(&login_events(server, query).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition on {query} never held");
}

#[tokio::test]
async fn old_events_are_pruned_at_start() {
    let mut server = TestServer::start_with(&["--audit-retention-days", "7"]).await;
    fail_login(&server, "old-user").await;
    wait_for(&server, "identity=old-user", |e| e.len() == 1).await;
    server.kill9();

    // Make the stored event ten days old.
    let db = server.data_dir().join("meta.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open meta.db");
    let changed = sqlx::query(
        "UPDATE audit_login_events SET time_ms = time_ms - $1 WHERE username = 'old-user'",
    )
    .bind(10 * DAY_MS)
    .execute(&pool)
    .await
    .expect("backdate")
    .rows_affected();
    assert_eq!(changed, 1);
    // Six days old: inside the retention period, kept.
    insert_recent_event(&pool).await;
    pool.close().await;

    server.restart().await;
    fail_login(&server, "new-user").await;
    wait_for(&server, "identity=old-user", |e| e.is_empty()).await;
    wait_for(&server, "identity=new-user", |e| e.len() == 1).await;
    wait_for(&server, "identity=recent-user", |e| e.len() == 1).await;
}

/// Insert an event six days old, which the pruner must keep.
async fn insert_recent_event(pool: &sqlx::SqlitePool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    sqlx::query(
        "INSERT INTO audit_login_events (time_ms, correlation_id, login_server, username, \
         operation, result, reason, duration_ms) VALUES ($1, 'c-recent', 'x', 'recent-user', \
         'token_get', 401, 'bad_secret', 1)",
    )
    .bind(now - 6 * DAY_MS)
    .execute(pool)
    .await
    .expect("insert");
}
