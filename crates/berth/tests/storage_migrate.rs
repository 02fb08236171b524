//! `berth storage migrate`: an embedded registry filled with every kind of
//! data (images, tags, a referrer, users, a group, a service principal, a
//! repository token with its own scope map, role assignments, a network
//! rule, changed settings, audit history, tokens issued before the move)
//! is moved to PostgreSQL (berth-testpg) and moto's S3. The move is
//! interrupted twice (once among the blobs, once among the rows, the
//! process aborting as if killed) and resumed; a different registry is
//! refused on the same target. berth is then started on the target and
//! must serve the same digests, accept the same credentials and the old
//! tokens, and show the same management objects and audit history.

mod common;

use std::process::{Command, Output};

use berth_testpg::PgServer;
use common::login::{json_of, plain, str_field, token_get, token_refresh, Api};
use common::object_servers::{available, Kind, ObjectServer};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Both servers answer for this name, so tokens issued by the embedded
/// registry are for the one on the target too.
const LOGIN_SERVER: &str = "registry.migrate.test";

/// The management views compared before and after.
const VIEWS: &[&str] = &[
    "/api/v1/users",
    "/api/v1/groups",
    "/api/v1/service-principals",
    "/api/v1/tokens",
    "/api/v1/scope-maps",
    "/api/v1/role-assignments",
    "/api/v1/network-rules",
    "/api/v1/registry",
    "/api/v1/repositories",
];

fn migrate(
    dir: &std::path::Path,
    db: &str,
    store: &ObjectServer,
    url: &str,
    extra_env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(berth_bin());
    cmd.args(["storage", "migrate", "--from-data-dir"])
        .arg(dir)
        .args(["--blob-store", url, "--output", "json"])
        .env("BERTH_DATABASE_URL", db)
        .envs(store.env())
        .envs(extra_env.iter().copied());
    cmd.output().expect("run berth storage migrate")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn status_of(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn embedded_registry_moves_to_postgres_and_s3() {
    moves_to(Kind::S3).await;
}

#[tokio::test]
async fn embedded_registry_moves_to_postgres_and_azure_blob() {
    moves_to(Kind::Azure).await;
}

/// The whole move, onto PostgreSQL and the object store of `kind`.
async fn moves_to(kind: Kind) {
    if !available(kind) {
        return;
    }
    let src = tempfile::Builder::new()
        .prefix("berth-migrate-src-")
        .tempdir()
        .expect("source dir");
    let blobs_url = format!("file://{}/blobs", src.path().display());
    let mut source = TestServer::start_in(
        src.path(),
        &["--login-server", LOGIN_SERVER, "--blob-store", &blobs_url],
    )
    .await;

    // ---- fill the embedded registry --------------------------------------
    let reg = source.registry();
    // One layer larger than the migration's 8 MiB write buffer (a
    // multipart upload on S3), the others small.
    let app = Image::from_parts(
        random_bytes(200),
        vec![random_bytes(9 * 1024 * 1024 + 5), random_bytes(3000)],
    );
    reg.push_image("mig/app", "v1", &app).await;
    reg.put_manifest_ok("mig/app", "latest", &app.media_type, &app.manifest)
        .await;
    let tool = Image::random(1, 4000);
    reg.push_image("mig/tool", "1.0", &tool).await;
    reg.push_blob("mig/app", EMPTY_JSON).await;
    let sig_layer = random_bytes(100);
    reg.push_blob("mig/app", &sig_layer).await;
    let referrer = referrer_manifest(
        &descriptor(OCI_MANIFEST, &app.manifest),
        Some("application/vnd.example.sig"),
        "application/vnd.oci.empty.v1+json",
        &sig_layer,
        &json!({"org.example": "signed"}),
    );
    let referrer_digest = sha256(&referrer);
    reg.put_manifest_ok("mig/app", &referrer_digest, OCI_MANIFEST, &referrer)
        .await;

    let api = Api::owner(&source).await;
    let alice_pw = api.user("alice").await;
    api.user("bob").await;
    api.expect(
        Method::POST,
        "/api/v1/groups",
        Some(json!({"name": "devs"})),
        201,
    )
    .await;
    api.expect(
        Method::POST,
        "/api/v1/groups/devs/members",
        Some(json!({"user": "bob"})),
        200,
    )
    .await;
    api.assign("alice", "AcrPull", Some("repositories/mig/*"))
        .await;
    api.assign("devs", "AcrPush", None).await;
    let (app_id, sp_secret) = api.service_principal("ci", Some(30)).await;
    api.assign(&app_id, "AcrPull", None).await;
    api.expect(
        Method::POST,
        "/api/v1/scope-maps",
        Some(json!({"name": "mig-readers", "actions": ["repositories/mig/app/content/read"]})),
        201,
    )
    .await;
    let token_pw = api
        .repo_token(json!({"name": "puller", "scopeMap": "mig-readers"}))
        .await;
    api.expect(
        Method::POST,
        "/api/v1/network-rules",
        Some(json!({"ipAddress": "10.9.0.0/16"})),
        201,
    )
    .await;
    api.registry_settings(json!({"anonymousPullEnabled": true}))
        .await;
    // Tokens issued by the embedded registry, used after the move.
    let r = token_get(
        &source,
        OWNER_USER,
        OWNER_PASSWORD,
        &["repository:mig/app:pull"],
        true,
    )
    .await;
    assert_eq!(r.status(), 200);
    let issued = json_of(r).await;
    let old_access = str_field(&issued, "access_token");
    let old_refresh = str_field(&issued, "refresh_token");
    // A pull, so the audit log has more than pushes.
    reg.get_manifest("mig/app", "v1").await.expect_status(200);

    let mut before = Vec::new();
    for v in VIEWS {
        before.push(api.expect(Method::GET, v, None, 200).await);
    }
    let audit_before = api
        .expect(
            Method::GET,
            "/api/v1/logs/repository?repository=mig/app",
            None,
            200,
        )
        .await;
    let logins_before = api
        .expect(Method::GET, "/api/v1/logs/login", None, 200)
        .await;
    assert!(
        audit_before["events"].as_array().map_or(0, Vec::len) >= 3,
        "{audit_before}"
    );

    // Stop it gracefully (buffered audit events are written).
    let pid = source.pid().expect("running");
    let stopped = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill -TERM");
    assert!(stopped.success());
    for _ in 0..200 {
        if !source.is_running() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!source.is_running(), "the embedded registry did not stop");

    // ---- migrate, interrupted twice --------------------------------------
    let pg = PgServer::start();
    let db = pg.create_database();
    let store = ObjectServer::start(kind).await;
    let url = store.blob_store_url("moved");

    let cut = migrate(
        src.path(),
        &db,
        &store,
        &url,
        &[("BERTH_TEST_MIGRATE_ABORT", "blobs:2")],
    );
    assert!(!cut.status.success(), "{}", text(&cut));
    let cut = migrate(
        src.path(),
        &db,
        &store,
        &url,
        &[("BERTH_TEST_MIGRATE_ABORT", "rows:3")],
    );
    assert!(!cut.status.success(), "{}", text(&cut));
    let done = migrate(src.path(), &db, &store, &url, &[]);
    assert!(done.status.success(), "{}", text(&done));
    let report: Value = serde_json::from_slice(&done.stdout).expect("JSON summary");
    assert_eq!(report["resumed"], true, "{report:#}");
    let blobs = &report["blobs"];
    let total = app.blobs().len() + tool.blobs().len() + 2;
    assert_eq!(blobs["total"], total, "{report:#}");
    assert!(
        blobs["skipped"].as_u64() >= Some(2),
        "the first run's blobs are kept: {report:#}"
    );
    assert_eq!(
        blobs["copied"].as_u64().unwrap_or(0) + blobs["skipped"].as_u64().unwrap_or(0),
        total as u64
    );
    let tables = report["tables"].as_array().expect("tables");
    for t in tables {
        assert_eq!(
            t["copied"].as_u64().unwrap_or(0) + t["skipped"].as_u64().unwrap_or(0),
            t["source"].as_u64().unwrap_or(u64::MAX),
            "{t}"
        );
    }
    let repos = tables
        .iter()
        .find(|t| t["table"] == "repositories")
        .expect("repositories counted");
    assert_eq!(repos["source"], 2);
    assert_eq!(repos["skipped"], 2, "the second run copied them: {repos}");
    for name in [
        "manifests",
        "tags",
        "directory_users",
        "repository_tokens",
        "signing_keys",
        "audit_repository_events",
    ] {
        assert!(
            tables.iter().any(|t| t["table"] == name),
            "{name} missing from {report:#}"
        );
    }
    // Once complete, another run copies nothing.
    let again = migrate(src.path(), &db, &store, &url, &[]);
    assert!(again.status.success(), "{}", text(&again));
    let again: Value = serde_json::from_slice(&again.stdout).expect("JSON summary");
    assert_eq!(again["blobs"]["copied"], 0, "{again:#}");
    assert!(again["tables"]
        .as_array()
        .is_some_and(|ts| ts.iter().all(|t| t["copied"] == 0
            || ["registry_settings", "admin_account"]
                .contains(&t["table"].as_str().unwrap_or("")))));

    // The table summary, as an operator reads it: one line per table.
    let mut cmd = Command::new(berth_bin());
    cmd.args(["storage", "migrate", "--from-data-dir"])
        .arg(src.path())
        .args(["--blob-store", &url, "--output", "table"])
        .env("BERTH_DATABASE_URL", &db)
        .envs(store.env());
    let table = cmd.output().expect("run berth storage migrate");
    assert!(table.status.success(), "{}", text(&table));
    let shown = String::from_utf8_lossy(&table.stdout);
    for name in [
        "blobs",
        "manifests",
        "tags",
        "directory_users",
        "signing_keys",
    ] {
        assert!(
            shown
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from the table:\n{shown}"
        );
    }
    assert!(!shown.contains("berth-test-secret"), "{shown}");

    // Another registry may not be merged into this target.
    let other = tempfile::Builder::new()
        .prefix("berth-migrate-other-")
        .tempdir()
        .expect("other dir");
    std::fs::copy(src.path().join("meta.db"), other.path().join("meta.db")).expect("copy db");
    let refused = migrate(other.path(), &db, &store, &url, &[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(
        msg.contains("already holds a registry migrated from"),
        "{msg}"
    );
    assert!(!msg.contains("berth-test-secret"), "{msg}");

    // ---- serve the target and compare -------------------------------------
    drop(source);
    let env = store.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let target = TestServer::start_full(
        &["--login-server", LOGIN_SERVER, "--blob-store", &url],
        &env,
        Some(db.clone()),
        None,
    )
    .await;
    let tapi = Api::owner(&target).await;
    for (v, want) in VIEWS.iter().zip(&before) {
        let got = tapi.expect(Method::GET, v, None, 200).await;
        assert_eq!(&got, want, "{v} differs after the move");
    }
    let treg = target.registry();
    for (repo, tag, image) in [
        ("mig/app", "v1", &app),
        ("mig/app", "latest", &app),
        ("mig/tool", "1.0", &tool),
    ] {
        let m = treg.get_manifest(repo, tag).await;
        m.expect_status(200);
        assert_eq!(m.must_header("Docker-Content-Digest"), image.digest());
        assert_eq!(m.body, image.manifest);
        for b in image.blobs() {
            let got = treg.get_blob(repo, &sha256(b)).await;
            got.expect_status(200);
            assert!(got.body == b, "{repo}: blob {} differs", sha256(b));
        }
    }
    assert_eq!(treg.tags("mig/app").await, ["latest", "v1"]);
    let refs = treg
        .get(&format!("/v2/mig/app/referrers/{}", app.digest()))
        .await;
    refs.expect_status(200);
    let refs = refs.json();
    assert_eq!(refs["manifests"][0]["digest"], referrer_digest.as_str());

    // The same credentials and the old tokens.
    let base = target.base_url();
    let manifest_url = format!("{base}/v2/mig/app/manifests/v1");
    assert_eq!(
        status_of(plain().get(&manifest_url).bearer_auth(&old_access)).await,
        200,
        "an access token issued before the move"
    );
    let r = token_refresh(&target, &old_refresh, &["repository:mig/app:pull"]).await;
    assert_eq!(r.status(), 200, "a refresh token issued before the move");
    for (user, pw) in [
        ("alice", alice_pw.as_str()),
        (app_id.as_str(), sp_secret.as_str()),
        ("puller", token_pw.as_str()),
    ] {
        let r = token_get(&target, user, pw, &["repository:mig/app:pull"], false).await;
        assert_eq!(r.status(), 200, "{user} logs in after the move");
        let t = str_field(&json_of(r).await, "access_token");
        assert_eq!(
            status_of(plain().get(&manifest_url).bearer_auth(&t)).await,
            200,
            "{user} pulls after the move"
        );
    }
    let r = token_get(&target, "alice", "wrong", &[], false).await;
    assert_eq!(r.status(), 401);
    // Anonymous pull was turned on before the move.
    assert_eq!(status_of(plain().get(&manifest_url)).await, 200);

    let ids = |v: &Value| -> Vec<String> {
        v["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| format!("{}/{}", e["correlation_id"], e["operation"]))
                    .collect()
            })
            .unwrap_or_default()
    };
    let audit_after = tapi
        .expect(
            Method::GET,
            "/api/v1/logs/repository?repository=mig/app",
            None,
            200,
        )
        .await;
    let after = ids(&audit_after);
    for e in ids(&audit_before) {
        assert!(after.contains(&e), "audit event {e} lost: {audit_after:#}");
    }
    let logins_after = tapi
        .expect(Method::GET, "/api/v1/logs/login", None, 200)
        .await;
    let after = ids(&logins_after);
    for e in ids(&logins_before) {
        assert!(after.contains(&e), "login event {e} lost");
    }
    // New rows get fresh ids (the sequences moved past the copied ones).
    treg.push_image("mig/new", "v1", &Image::random(1, 500))
        .await;
}
