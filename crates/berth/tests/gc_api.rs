//! Garbage collection through the server: `berth gc` (dry run and real),
//! `POST/GET /api/v1/gc`, audit events, metrics, and a server killed with
//! SIGKILL in the middle of a collection. The store-level safety rules
//! (grace, races, shared blobs, crashes, S3) are in
//! `berth-store/tests/gc.rs`.

mod common;

use common::cli::CliEnv;
use common::*;
use serde_json::Value;

async fn pull_whole(reg: &Registry, repo: &str, image: &Image) {
    reg.get_manifest(repo, &image.digest())
        .await
        .expect_status(200);
    for b in image.blobs() {
        let r = reg.get_blob(repo, &sha256(b)).await;
        r.expect_status(200);
    }
}

#[tokio::test]
async fn berth_gc_reports_deletes_audits_and_counts() {
    let server = TestServer::start_with(&["--gc-grace", "0s"]).await;
    let reg = server.registry();
    let keep = Image::random(2, 512);
    let drop = Image::random(2, 512);
    reg.push_image("gc/app", "keep", &keep)
        .await
        .expect_status(201);
    reg.push_image("gc/app", "drop", &drop)
        .await
        .expect_status(201);
    reg.delete(&format!("/v2/gc/app/manifests/{}", drop.digest()))
        .await
        .expect_status(202);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let env = CliEnv::new();
    env.login_owner(&server);
    let dry = env.json(&["gc", "--dry-run"]);
    assert_eq!(dry["dryRun"], true, "{dry}");
    assert_eq!(
        dry["links"], 3,
        "config and two layers of the deleted image: {dry}"
    );
    assert_eq!(dry["blobs"], 3, "{dry}");
    // Nothing went.
    for b in drop.blobs() {
        reg.head_blob("gc/app", &sha256(b)).await.expect_status(200);
    }

    let table = env.ok(&["gc", "--output", "table"]);
    assert!(table.contains("blob_link"), "{table}");
    for b in drop.blobs() {
        reg.head_blob("gc/app", &sha256(b)).await.expect_status(404);
    }
    pull_whole(&reg, "gc/app", &keep).await;

    // The status endpoint shows the runs, newest first.
    let status = server
        .client()
        .get(format!("{}/api/v1/gc", server.base_url()))
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), 200);
    let status: Value = status.json().await.expect("json");
    assert!(status["running"].is_null(), "{status}");
    assert_eq!(status["recent"][0]["dryRun"], false, "{status}");
    assert_eq!(status["recent"][0]["blobs"], 3, "{status}");
    assert_eq!(status["recent"][0]["state"], "finished", "{status}");
    assert_eq!(status["recent"][1]["dryRun"], true, "{status}");

    // Each deletion is an audit event.
    let mut seen = Vec::new();
    for _ in 0..50 {
        let logs: Value = server
            .client()
            .get(format!(
                "{}/api/v1/logs/repository?repository=gc/app",
                server.base_url()
            ))
            .send()
            .await
            .expect("logs")
            .json()
            .await
            .expect("json");
        seen = logs["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["operation"] == "gc_unlink_blob")
            .collect();
        if seen.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen.len(), 3, "one audit event per unlinked blob: {seen:?}");

    let metrics = server
        .client()
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("berth_gc_runs_total{result=\"finished\",dry_run=\"false\"} 1")
            || metrics.contains("berth_gc_runs_total{dry_run=\"false\",result=\"finished\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_gc_deleted_objects_total{kind=\"blob\"} 3"),
        "{metrics}"
    );
    let freed: u64 = drop.blobs().iter().map(|b| b.len() as u64).sum();
    assert!(
        metrics.contains(&format!("berth_gc_bytes_freed_total {freed}")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_server_killed_mid_collection_leaves_every_manifest_whole() {
    let mut server = TestServer::start_with(&["--gc-grace", "0s"]).await;
    let reg = server.registry();
    let keep = Image::random(2, 1024);
    reg.push_image("crash/app", "keep", &keep)
        .await
        .expect_status(201);
    for i in 0..300 {
        reg.push_blob(&format!("crash/junk{}", i % 3), &random_bytes(64 + i))
            .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let client = server.client();
    let url = format!("{}/api/v1/gc", server.base_url());
    let call = tokio::spawn(async move { client.post(url).send().await });
    // Let it get going, then SIGKILL.
    for _ in 0..200 {
        let s: Value = server
            .client()
            .get(format!("{}/api/v1/gc", server.base_url()))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        if !s["running"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    server.kill9();
    let _ = call.await;
    server.restart().await;
    let reg = server.registry();
    pull_whole(&reg, "crash/app", &keep).await;
    // The next run finishes the job.
    let r = server
        .client()
        .post(format!("{}/api/v1/gc", server.base_url()))
        .send()
        .await
        .expect("gc");
    assert_eq!(r.status(), 200);
    let run: Value = r.json().await.expect("json");
    assert_eq!(run["state"], "finished", "{run}");
    pull_whole(&reg, "crash/app", &keep).await;
    let blobs = std::fs::read_dir(server.data_dir().join("blobs/sha256"))
        .expect("blobs dir")
        .flat_map(|fan| std::fs::read_dir(fan.expect("fan").path()).expect("fan dir"))
        .count();
    assert_eq!(blobs, 3, "only the kept image's config and layers remain");
}
