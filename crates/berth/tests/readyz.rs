//! `/readyz` on the embedded (SQLite + filesystem) configuration: ready
//! when both stores work, 503 naming the blob store when it cannot be
//! written, ready again once it can. `/healthz` (liveness) stays 200.

mod common;

use common::login::plain;
use common::TestServer;
use serde_json::{json, Value};

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let r = plain()
        .get(format!("{}{path}", server.base_url()))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn readyz_checks_the_database_and_the_blob_store() {
    let server = TestServer::start().await;
    let (status, body) = get(&server, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "blob_store": "ok", "storage": "ok"}})
    );

    // The blob store's upload folder is replaced by a file: nothing can be
    // written (root ignores permission bits, so a mode change would not do).
    let uploads = server.data_dir().join("uploads");
    let moved = server.data_dir().join("uploads.away");
    std::fs::rename(&uploads, &moved).expect("move uploads away");
    std::fs::write(&uploads, b"not a directory").expect("block uploads");
    let (status, body) = get(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["blob_store"], "failed");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["failed"], json!(["blob_store"]));
    // Liveness is unaffected.
    assert_eq!(get(&server, "/healthz").await.0, 200);

    std::fs::remove_file(&uploads).expect("unblock");
    std::fs::rename(&moved, &uploads).expect("move back");
    assert_eq!(get(&server, "/readyz").await.0, 200);
}
