//! A graceful shutdown (SIGTERM) writes the audit events still buffered:
//! the writer lingers up to 20 ms before writing, so an event recorded just
//! before the signal is still in the buffer when shutdown starts.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn sigterm_flushes_buffered_events() {
    let data = tempfile::tempdir().expect("data dir");
    let log = data.path().join("audit.jsonl");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(berth_bin())
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .arg("--audit-log")
        .arg(&log)
        .env("BERTH_BOOTSTRAP_PASSWORD", OWNER_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth serve");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut ready = false;
    for _ in 0..300 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "server did not start");

    let r = http
        .get(format!("{base}/oauth2/token"))
        .basic_auth("shutdown-probe", Some("wrong"))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 401);
    drop(r);
    drop(http);
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "berth exited with {exit}");

    let text = std::fs::read_to_string(&log).expect("audit log");
    let found = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| e["event"] == "login" && e["username"] == "shutdown-probe");
    assert!(found, "login event missing after shutdown:\n{text}");
}
