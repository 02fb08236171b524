//! A full disk is explained (issue 16): uploads on a full file system are
//! answered 507 with an OCI envelope that says storage is full, /healthz,
//! /readyz, /metrics and check-health report it, and nothing acknowledged
//! before is lost. Runs
//! on a real 8 MiB tmpfs (needs root, as CI has).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{random_bytes, sha256, TestServer};
use reqwest::Method;

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _holder: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let holder = tempfile::Builder::new()
            .prefix("berth-tmpfs-")
            .tempdir()
            .expect("mount point");
        let dir = holder.path().to_path_buf();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs failed (the test needs root)");
        Tmpfs {
            dir,
            _holder: holder,
        }
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[tokio::test]
async fn a_full_disk_is_explained_and_loses_nothing() {
    let fs = Tmpfs::mount("8m");
    let mut server = TestServer::start_in(&fs.dir, &[]).await;
    let reg = server.registry();

    // Push 512 KiB blobs until the file system is full.
    let mut pushed: Vec<(String, Vec<u8>)> = Vec::new();
    let mut refusal = None;
    for _ in 0..40 {
        let data = random_bytes(512 * 1024);
        let digest = sha256(&data);
        let r = reg
            .req(Method::POST, "/v2/full/disk/blobs/uploads/")
            .header("Content-Length", "0")
            .send()
            .await;
        if r.status != 202 {
            refusal = Some(r);
            break;
        }
        let loc = reg.resolve_location(&r.must_header("Location"));
        let r = reg
            .req(Method::PUT, &common::with_query(&loc, "digest", &digest))
            .header("Content-Type", "application/octet-stream")
            .body(data.clone())
            .send()
            .await;
        if r.status == 201 {
            pushed.push((digest, data));
        } else {
            refusal = Some(r);
            break;
        }
    }
    let refusal = refusal.expect("8 MiB never filled up");
    assert_eq!(refusal.status, 507, "{}", refusal.describe());
    let v = refusal.json();
    assert_eq!(v["errors"][0]["code"], "UNKNOWN", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("storage is full")),
        "{v}"
    );
    assert_eq!(v["errors"][0]["detail"]["reason"], "storage_full", "{v}");
    assert!(!pushed.is_empty(), "nothing could be pushed at all");

    // /healthz and /metrics say so.
    let health = reqwest::get(format!("{}/healthz", server.base_url()))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let body = health.text().await.expect("healthz body");
    assert!(body.starts_with("storage full"), "{body}");
    let metrics = reqwest::get(format!("{}/metrics", server.base_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    assert!(metrics.contains("berth_storage_free_bytes"), "{metrics}");
    assert!(metrics.contains("berth_storage_full 1"), "{metrics}");

    // /readyz takes the replica out of the load balancer.
    let ready = reqwest::get(format!("{}/readyz", server.base_url()))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.expect("readyz body");
    assert_eq!(ready["checks"]["storage"], "failed", "{ready}");
    assert!(
        ready["failed"]
            .as_array()
            .is_some_and(|f| f.iter().any(|c| c == "storage")),
        "{ready}"
    );

    // check-health says so (and exits non-zero).
    let docker_config = tempfile::tempdir().expect("docker config dir");
    let out = std::process::Command::new(common::berth_bin())
        .args(["check-health", &server.host(), "--output", "json"])
        .env("DOCKER_CONFIG", docker_config.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run berth check-health");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-health printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let finding = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|f| f["code"] == "STORAGE_FULL_ERROR"))
        .unwrap_or_else(|| panic!("no STORAGE_FULL_ERROR in {report:#}"));
    assert_eq!(finding["status"], "error", "{finding}");
    assert!(
        finding["message"]
            .as_str()
            .is_some_and(|m| m.contains("storage full")),
        "{finding}"
    );
    assert_ne!(out.status.code(), Some(0));

    // Everything acknowledged is there, also after a restart.
    for (digest, data) in &pushed {
        let r = reg.get_blob("full/disk", digest).await;
        assert_eq!(r.status, 200, "{digest}");
        assert_eq!(sha256(&r.body), *digest);
        assert_eq!(r.body.len(), data.len());
    }
    // With room again, pushes work.
    fs.resize("64m");
    server.restart().await;
    let reg = server.registry();
    for (digest, _) in &pushed {
        assert_eq!(
            reg.get_blob("full/disk", digest).await.status,
            200,
            "{digest}"
        );
    }
    reg.push_blob("full/disk", &random_bytes(512 * 1024)).await;
    let ready = reqwest::get(format!("{}/readyz", server.base_url()))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    drop(server);
}
