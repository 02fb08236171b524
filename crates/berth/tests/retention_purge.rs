//! Retention of untagged manifests and purge through the server and the
//! CLI: `berth registry update --retention-untagged-days`, `berth gc`
//! deleting untagged manifests, `berth repository purge` (dry run, keep,
//! filters), `POST /api/v1/purge` refusals, audit events and metrics. The
//! exact deletion rule and the races are in `berth-store/tests/retention.rs`.

mod common;

use common::cli::CliEnv;
use common::*;
use serde_json::{json, Value};

async fn repository_events(
    server: &TestServer,
    repo: &str,
    operation: &str,
    want: usize,
) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        let logs: Value = server
            .client()
            .get(format!(
                "{}/api/v1/logs/repository?repository={repo}",
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
            .filter(|e| e["operation"] == operation)
            .collect();
        if seen.len() >= want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    seen
}

async fn metrics(server: &TestServer) -> String {
    server
        .client()
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn retention_policy_deletes_untagged_manifests_in_gc() {
    let server = TestServer::start_with(&["--gc-grace", "0s"]).await;
    let reg = server.registry();
    let env = CliEnv::new();
    env.login_owner(&server);

    let shown = env.json(&["registry", "show"]);
    assert_eq!(shown["retentionEnabled"], false, "off by default: {shown}");
    assert_eq!(shown["retentionUntaggedDays"], 7, "{shown}");

    let old = Image::random(1, 256);
    let new = Image::random(1, 256);
    reg.push_image("keep/app", "v1", &old)
        .await
        .expect_status(201);
    reg.push_image("keep/app", "v1", &new)
        .await
        .expect_status(201);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // Disabled: the untagged manifest stays.
    let run = env.json(&["gc"]);
    assert_eq!(run["manifests"], 0, "{run}");
    reg.get_manifest("keep/app", &old.digest())
        .await
        .expect_status(200);

    // Setting the days turns it on.
    let updated = env.json(&["registry", "update", "--retention-untagged-days", "0"]);
    assert_eq!(updated["retentionEnabled"], true, "{updated}");
    assert_eq!(updated["retentionUntaggedDays"], 0, "{updated}");
    let out = env.run(
        &["registry", "update", "--retention-untagged-days", "366"],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("0..=365"), "{err}");
    // The API refuses it too, naming the field.
    let r = server
        .client()
        .patch(format!("{}/api/v1/registry", server.base_url()))
        .json(&json!({"retentionUntaggedDays": 400}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["errors"][0]["field"], "retentionUntaggedDays", "{e}");

    let dry = env.json(&["gc", "--dry-run"]);
    assert_eq!(dry["manifests"], 1, "{dry}");
    reg.get_manifest("keep/app", &old.digest())
        .await
        .expect_status(200);
    let run = env.json(&["gc"]);
    assert_eq!(run["manifests"], 1, "{run}");
    assert_eq!(run["links"], 2, "the old image's config and layer: {run}");
    reg.get_manifest("keep/app", &old.digest())
        .await
        .expect_status(404);
    reg.get_manifest("keep/app", "v1").await.expect_status(200);
    reg.get_manifest("keep/app", &new.digest())
        .await
        .expect_status(200);

    let events = repository_events(&server, "keep/app", "gc_delete_manifest", 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["digest"], old.digest(), "{events:?}");
    let m = metrics(&server).await;
    assert!(
        m.contains("berth_gc_deleted_objects_total{kind=\"manifest\"} 1"),
        "{m}"
    );

    // Turned off again, it stays off.
    let off = env.json(&["registry", "update", "--retention-enabled", "false"]);
    assert_eq!(off["retentionEnabled"], false, "{off}");
}

#[tokio::test]
async fn berth_repository_purge_deletes_old_tags_and_their_manifests() {
    let server = TestServer::start_with(&["--gc-grace", "0s"]).await;
    let reg = server.registry();
    let env = CliEnv::new();
    env.login_owner(&server);
    let images: Vec<Image> = (0..4).map(|_| Image::random(1, 256)).collect();
    for (n, img) in images.iter().enumerate() {
        reg.push_image("purge/app", &format!("build-{n}"), img)
            .await
            .expect_status(201);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    reg.push_image("purge/app", "stable", &images[3])
        .await
        .expect_status(201);
    let other = Image::random(1, 256);
    reg.push_image("elsewhere", "build-0", &other)
        .await
        .expect_status(201);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // Nothing is older than a day.
    let none = env.json(&[
        "repository",
        "purge",
        "--filter",
        "purge/.*:build-.*",
        "--ago",
        "1d",
    ]);
    assert_eq!(
        (none["tags"].as_u64(), none["manifests"].as_u64()),
        (Some(0), Some(0)),
        "{none}"
    );

    let dry = env.json(&[
        "repository",
        "purge",
        "--filter",
        "purge/.*:build-.*",
        "--ago",
        "0",
        "--keep",
        "1",
        "--dry-run",
    ]);
    assert_eq!(dry["dryRun"], true, "{dry}");
    assert_eq!(
        dry["tags"], 3,
        "build-0..2; build-3 is the newest kept: {dry}"
    );
    assert_eq!(dry["manifests"], 3, "{dry}");
    reg.get_manifest("purge/app", "build-0")
        .await
        .expect_status(200);

    let table = env.ok(&[
        "repository",
        "purge",
        "--filter",
        "purge/.*:build-.*",
        "--ago",
        "0",
        "--keep",
        "1",
        "--output",
        "table",
    ]);
    assert!(
        table.contains("build-0") && table.contains("manifest"),
        "{table}"
    );
    for (n, img) in images.iter().enumerate().take(3) {
        reg.get_manifest("purge/app", &format!("build-{n}"))
            .await
            .expect_status(404);
        reg.get_manifest("purge/app", &img.digest())
            .await
            .expect_status(404);
    }
    reg.get_manifest("purge/app", "build-3")
        .await
        .expect_status(200);
    reg.get_manifest("purge/app", "stable")
        .await
        .expect_status(200);
    reg.get_manifest("elsewhere", "build-0")
        .await
        .expect_status(200);

    let events = repository_events(&server, "purge/app", "purge_delete_tag", 3).await;
    assert_eq!(events.len(), 3, "{events:?}");
    let events = repository_events(&server, "purge/app", "purge_delete_manifest", 3).await;
    assert_eq!(events.len(), 3, "{events:?}");
    let m = metrics(&server).await;
    assert!(
        m.contains("berth_purge_deleted_total{kind=\"tag\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("berth_purge_deleted_total{kind=\"manifest\"} 3"),
        "{m}"
    );

    // The next collection frees their blobs.
    let run = env.json(&["gc"]);
    assert_eq!(run["links"], 6, "{run}");

    // Refusals name the field.
    let url = format!("{}/api/v1/purge", server.base_url());
    for (body, field) in [
        (json!({"filters": ["no-colon"], "ago": "1d"}), "filters"),
        (json!({"filters": ["a:("], "ago": "1d"}), "filters"),
        (json!({"filters": [], "ago": "1d"}), "filters"),
        (json!({"filters": ["a:b"], "ago": "soon"}), "ago"),
    ] {
        let r = server
            .client()
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["errors"][0]["code"], "INVALID", "{e}");
        assert_eq!(e["errors"][0]["field"], field, "{e}");
    }
    let err = env.fails(&["repository", "purge", "--filter", "nocolon", "--ago", "1d"]);
    assert!(err.contains("repository-regex"), "{err}");
    // Without credentials: refused.
    let r = reqwest::Client::new()
        .post(&url)
        .json(&json!({"filters": [".*:.*"], "ago": "0"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
}
