//! Replicas: two (or more) `berth serve` processes on one PostgreSQL
//! database and one shared data directory for blobs. Every cross-replica
//! behaviour is its own test: tokens, manifests and tags, each kind of
//! revocation (within 2 s), audit events, concurrent start, kill -9 and
//! rejoin, readiness.

mod common;

use std::time::Duration;

use common::login::{json_of, owner_api, plain, str_field, token_get, Api};
use common::replicas::{within, PgPair};
use common::{Image, TestServer, OWNER_PASSWORD, OWNER_USER};
use reqwest::Method;
use serde_json::{json, Value};

/// Revocations must reach every replica within this.
const REVOCATION_LIMIT: Duration = Duration::from_secs(2);

/// `GET /v2/<repo>/manifests/<reference>` on `server` with `auth`; status.
async fn pull(server: &TestServer, repo: &str, reference: &str, auth: &Auth<'_>) -> u16 {
    let req = plain()
        .get(format!(
            "{}/v2/{repo}/manifests/{reference}",
            server.base_url()
        ))
        .header("Accept", common::OCI_MANIFEST);
    let req = match auth {
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        Auth::None => req,
    };
    req.send().await.expect("pull").status().as_u16()
}

enum Auth<'a> {
    Bearer(&'a str),
    Basic(&'a str, &'a str),
    None,
}

/// An access token from `server`'s token endpoint.
async fn access_token(server: &TestServer, user: &str, password: &str, scope: &str) -> String {
    let r = token_get(server, user, password, &[scope], false).await;
    assert_eq!(r.status(), 200, "token for {user}");
    str_field(&json_of(r).await, "access_token")
}

/// A pair with `rep/app:v1` pushed through A.
async fn pair_with_image() -> PgPair {
    let pair = PgPair::start().await;
    pair.a
        .registry()
        .push_image("rep/app", "v1", &Image::random(1, 256))
        .await;
    pair
}

/// Assert that `refused` holds on B within the limit; log how long it took.
async fn refused_within_limit<F, Fut>(what: &str, refused: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    match within(REVOCATION_LIMIT, refused).await {
        Some(took) => eprintln!("{what}: enforced by replica B after {took:?}"),
        None => panic!("{what}: replica B still allowed it after {REVOCATION_LIMIT:?}"),
    }
}

#[tokio::test]
async fn a_token_issued_by_one_replica_is_accepted_by_the_other() {
    let pair = pair_with_image().await;
    let scope = "repository:rep/app:pull";
    let from_a = access_token(&pair.a, OWNER_USER, OWNER_PASSWORD, scope).await;
    assert_eq!(
        pull(&pair.b, "rep/app", "v1", &Auth::Bearer(&from_a)).await,
        200
    );
    let from_b = access_token(&pair.b, OWNER_USER, OWNER_PASSWORD, scope).await;
    assert_eq!(
        pull(&pair.a, "rep/app", "v1", &Auth::Bearer(&from_b)).await,
        200
    );
    // A management token (directory token) from A works on B's API.
    let api = owner_api(&pair.a).await;
    let r = plain()
        .get(format!("{}/api/v1/users", pair.b.base_url()))
        .bearer_auth(&api)
        .send()
        .await
        .expect("users");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_tag_pushed_through_one_replica_is_served_by_the_other_on_the_next_request() {
    let pair = PgPair::start().await;
    let (a, b) = (pair.a.registry(), pair.b.registry());
    for round in 0..5 {
        let image = Image::random(1, 128);
        a.push_image("rep/moving", "latest", &image).await;
        // One request, no retry: B's manifest cache was emptied by A's write.
        let got = b.get_manifest("rep/moving", "latest").await;
        got.expect_status(200);
        assert_eq!(
            got.must_header("docker-content-digest"),
            image.digest(),
            "round {round}: B served a stale tag"
        );
    }
}

#[tokio::test]
async fn a_manifest_deleted_through_one_replica_is_gone_on_the_other_at_once() {
    let pair = PgPair::start().await;
    let (a, b) = (pair.a.registry(), pair.b.registry());
    let image = Image::random(1, 128);
    a.push_image("rep/gone", "v1", &image).await;
    // B reads both, so both are in its cache.
    b.get_manifest("rep/gone", "v1").await.expect_status(200);
    b.get_manifest("rep/gone", &image.digest())
        .await
        .expect_status(200);
    a.delete(&format!("/v2/rep/gone/manifests/{}", image.digest()))
        .await
        .expect_status(202);
    // Tags are read from the database on every replica: gone at once.
    b.get_manifest("rep/gone", "v1").await.expect_status(404);
    // B's by-digest cache entry goes when A's NOTIFY arrives: well inside
    // the cache's own 1 s lifetime.
    let gone = within(Duration::from_millis(500), || async {
        b.get_manifest("rep/gone", &image.digest()).await.status == 404
    })
    .await;
    eprintln!("deleted manifest gone on B after {gone:?}");
    assert!(
        gone.is_some(),
        "B still serves the deleted manifest by digest"
    );
    // A tag deleted through B is gone on A.
    let image = Image::random(1, 128);
    b.push_image("rep/gone", "v2", &image).await;
    a.get_manifest("rep/gone", "v2").await.expect_status(200);
    b.delete("/v2/rep/gone/manifests/v2")
        .await
        .expect_status(202);
    a.get_manifest("rep/gone", "v2").await.expect_status(404);
}

#[tokio::test]
async fn a_disabled_repository_token_is_refused_by_the_other_replica_within_2s() {
    let pair = pair_with_image().await;
    let owner = Api::owner(&pair.a).await;
    let password = owner
        .repo_token(json!({"name": "ci-puller", "scopeMap": "_repositories_pull"}))
        .await;
    let bearer = access_token(&pair.a, "ci-puller", &password, "repository:rep/app:pull").await;
    // B has the token's principal in its live cache, and its Basic login
    // in its login cache.
    assert_eq!(
        pull(&pair.b, "rep/app", "v1", &Auth::Bearer(&bearer)).await,
        200
    );
    let basic = Auth::Basic("ci-puller", &password);
    assert_eq!(pull(&pair.b, "rep/app", "v1", &basic).await, 200);
    owner
        .expect(
            Method::PATCH,
            "/api/v1/tokens/ci-puller",
            Some(json!({"status": "disabled"})),
            200,
        )
        .await;
    refused_within_limit("disabled token (bearer)", || async {
        pull(&pair.b, "rep/app", "v1", &Auth::Bearer(&bearer)).await != 200
    })
    .await;
    refused_within_limit("disabled token (basic)", || async {
        pull(&pair.b, "rep/app", "v1", &basic).await != 200
    })
    .await;
}

#[tokio::test]
async fn a_removed_role_assignment_is_refused_by_the_other_replica_within_2s() {
    let pair = pair_with_image().await;
    let owner = Api::owner(&pair.a).await;
    let password = owner.user("reader").await;
    let id = owner.assign("reader", "AcrPull", None).await;
    let bearer = access_token(&pair.a, "reader", &password, "repository:rep/app:pull").await;
    assert_eq!(
        pull(&pair.b, "rep/app", "v1", &Auth::Bearer(&bearer)).await,
        200
    );
    owner
        .expect(
            Method::DELETE,
            &format!("/api/v1/role-assignments/{id}"),
            None,
            204,
        )
        .await;
    refused_within_limit("removed role assignment", || async {
        pull(&pair.b, "rep/app", "v1", &Auth::Bearer(&bearer)).await != 200
    })
    .await;
}

#[tokio::test]
async fn a_deleted_service_principal_secret_is_refused_by_the_other_replica_within_2s() {
    let pair = pair_with_image().await;
    let owner = Api::owner(&pair.a).await;
    let (app_id, _first) = owner.service_principal("builder", None).await;
    owner.assign(&app_id, "AcrPull", None).await;
    let issued = owner
        .expect(
            Method::POST,
            &format!("/api/v1/service-principals/{app_id}/credentials"),
            Some(json!({})),
            201,
        )
        .await;
    let secret = str_field(&issued, "secret");
    let secret_id = str_field(&issued, "secretId");
    let basic = Auth::Basic(&app_id, &secret);
    // B verifies the secret once and remembers the login.
    assert_eq!(pull(&pair.b, "rep/app", "v1", &basic).await, 200);
    owner
        .expect(
            Method::DELETE,
            &format!("/api/v1/service-principals/{app_id}/credentials/{secret_id}"),
            None,
            204,
        )
        .await;
    refused_within_limit("deleted service-principal secret", || async {
        pull(&pair.b, "rep/app", "v1", &basic).await != 200
    })
    .await;
}

#[tokio::test]
async fn a_network_rule_change_is_enforced_by_the_other_replica_within_2s() {
    let pair = pair_with_image().await;
    let owner = Api::owner(&pair.a).await;
    owner
        .expect(
            Method::POST,
            "/api/v1/network-rules",
            Some(json!({"ipAddress": "127.0.0.0/8"})),
            201,
        )
        .await;
    owner
        .registry_settings(json!({"defaultAction": "Deny"}))
        .await;
    let basic = Auth::Basic(OWNER_USER, OWNER_PASSWORD);
    assert_eq!(pull(&pair.b, "rep/app", "v1", &basic).await, 200);
    // The only rule that let loopback in goes.
    owner
        .expect(
            Method::DELETE,
            "/api/v1/network-rules/127.0.0.0%2F8",
            None,
            204,
        )
        .await;
    refused_within_limit("removed network rule", || async {
        pull(&pair.b, "rep/app", "v1", &basic).await == 403
    })
    .await;
}

#[tokio::test]
async fn anonymous_pull_turned_off_is_enforced_by_the_other_replica_within_2s() {
    let pair = pair_with_image().await;
    let owner = Api::owner(&pair.a).await;
    assert_eq!(pull(&pair.b, "rep/app", "v1", &Auth::None).await, 401);
    owner
        .registry_settings(json!({"anonymousPullEnabled": true}))
        .await;
    refused_within_limit("anonymous pull turned on", || async {
        pull(&pair.b, "rep/app", "v1", &Auth::None).await == 200
    })
    .await;
    owner
        .registry_settings(json!({"anonymousPullEnabled": false}))
        .await;
    refused_within_limit("anonymous pull turned off", || async {
        pull(&pair.b, "rep/app", "v1", &Auth::None).await == 401
    })
    .await;
}

/// Repository audit events of `repo`, read through `server`.
async fn repository_events(server: &TestServer, api: &str, repo: &str) -> Vec<Value> {
    let r = plain()
        .get(format!(
            "{}/api/v1/logs/repository?repository={repo}",
            server.base_url()
        ))
        .bearer_auth(api)
        .send()
        .await
        .expect("logs");
    assert_eq!(r.status(), 200);
    json_of(r).await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn audit_events_of_both_replicas_are_read_through_either() {
    let pair = PgPair::start().await;
    pair.a
        .registry()
        .push_image("audit/from-a", "v1", &Image::random(1, 64))
        .await;
    pair.b
        .registry()
        .push_image("audit/from-b", "v1", &Image::random(1, 64))
        .await;
    let api = owner_api(&pair.a).await;
    for reader in [&pair.a, &pair.b] {
        for repo in ["audit/from-a", "audit/from-b"] {
            let seen = within(Duration::from_secs(15), || async {
                repository_events(reader, &api, repo)
                    .await
                    .iter()
                    .any(|e| e["operation"] == "push")
            })
            .await;
            assert!(
                seen.is_some(),
                "the push to {repo} is not in the log read through {}",
                reader.base_url()
            );
        }
    }
    // Login events too: B's token issuance is visible through A.
    let r = token_get(&pair.b, OWNER_USER, "wrong-password", &[], false).await;
    assert_eq!(r.status(), 401);
    let seen = within(Duration::from_secs(15), || async {
        let r = plain()
            .get(format!(
                "{}/api/v1/logs/login?failures=true",
                pair.a.base_url()
            ))
            .bearer_auth(&api)
            .send()
            .await
            .expect("login log");
        json_of(r).await["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    })
    .await;
    assert!(seen.is_some(), "B's failed login is not readable through A");
}

#[tokio::test]
async fn replicas_starting_at_the_same_time_run_migrations_once_and_share_one_key() {
    let pg = berth_testpg::PgServer::start();
    let url = pg.create_database();
    let args = ["--login-server", common::replicas::LOGIN_SERVER];
    let first = TestServer::prepare(&args, &[], Some(url.clone()), None);
    let shared = first.shared_data_dir();
    let mut servers = vec![first];
    for _ in 0..2 {
        servers.push(TestServer::prepare(
            &args,
            &[],
            Some(url.clone()),
            Some(shared.clone()),
        ));
    }
    futures::future::join_all(servers.iter_mut().map(|s| s.spawn_and_wait())).await;
    let db = url.rsplit('/').next().unwrap_or_default();
    let n = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../berth-store/migrations/postgres"
    ))
    .expect("migrations dir")
    .count();
    assert_eq!(
        pg.psql(
            db,
            "SELECT count(*) || ' ' || count(DISTINCT version) FROM _sqlx_migrations"
        )
        .trim(),
        format!("{n} {n}"),
        "each migration recorded once"
    );
    assert_eq!(pg.psql(db, "SELECT count(*) FROM signing_keys").trim(), "1");
    assert_eq!(
        pg.psql(db, "SELECT count(*) FROM directory_users").trim(),
        "1",
        "one bootstrap owner"
    );
    // Every replica accepts every other replica's tokens.
    for issuer in &servers {
        let t = access_token(issuer, OWNER_USER, OWNER_PASSWORD, "registry:catalog:*").await;
        for verifier in &servers {
            let r = plain()
                .get(format!("{}/v2/_catalog", verifier.base_url()))
                .bearer_auth(&t)
                .send()
                .await
                .expect("catalog");
            assert_eq!(r.status(), 200);
        }
    }
}

#[tokio::test]
async fn a_replica_killed_with_kill_9_rejoins_when_restarted() {
    let mut pair = pair_with_image().await;
    let scope = "repository:rep/app:pull,push";
    let token_from_a = access_token(&pair.a, OWNER_USER, OWNER_PASSWORD, scope).await;
    pair.a.kill9();
    // B carries on alone: A's token still works, pushes still land.
    assert_eq!(
        pull(&pair.b, "rep/app", "v1", &Auth::Bearer(&token_from_a)).await,
        200
    );
    let image = Image::random(2, 512);
    pair.b.registry().push_image("rep/app", "v2", &image).await;
    // A restarts on the same database and data directory, nothing else.
    pair.a.restart().await;
    let got = pair.a.registry().get_manifest("rep/app", "v2").await;
    got.expect_status(200);
    assert_eq!(got.must_header("docker-content-digest"), image.digest());
    for blob in image.blobs() {
        pair.a
            .registry()
            .get_blob("rep/app", &common::sha256(blob))
            .await
            .expect_status(200);
    }
    assert_eq!(
        pull(&pair.a, "rep/app", "v1", &Auth::Bearer(&token_from_a)).await,
        200
    );
    // And it hears B's writes again.
    let newer = Image::random(1, 64);
    pair.b.registry().push_image("rep/app", "v2", &newer).await;
    let got = pair.a.registry().get_manifest("rep/app", "v2").await;
    assert_eq!(got.must_header("docker-content-digest"), newer.digest());
}

#[tokio::test]
async fn readyz_reports_the_database() {
    let mut pair = PgPair::start().await;
    let ready = |s: &TestServer| {
        let url = format!("{}/readyz", s.base_url());
        async move {
            let r = plain().get(url).send().await.expect("readyz");
            (r.status().as_u16(), json_of(r).await)
        }
    };
    let (status, body) = ready(&pair.b).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    // PostgreSQL goes away: not ready (but still alive).
    drop(std::mem::replace(
        &mut pair.pg,
        berth_testpg::PgServer::start(),
    ));
    let (status, body) = ready(&pair.b).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"], "failed");
    assert_eq!(body["failed"], json!(["database"]));
    let r = plain()
        .get(format!("{}/healthz", pair.b.base_url()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_database_password_is_never_shown() {
    let pair = PgPair::start().await;
    let password = berth_testpg::PASSWORD;
    // Not in the server's logs …
    let logs = pair.a.log_tail(1 << 20) + &pair.b.log_tail(1 << 20);
    assert!(!logs.contains(password), "password in the server log");
    assert!(
        logs.contains(":***@127.0.0.1"),
        "the redacted URL is logged"
    );
    // … nor on its command line …
    for s in [&pair.a, &pair.b] {
        let pid = s.pid().expect("running");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
        assert!(!String::from_utf8_lossy(&cmdline).contains(password));
    }
    // … nor anywhere in /api/v1.
    let owner = Api::owner(&pair.a).await;
    for path in [
        "/api/v1/registry",
        "/api/v1/openapi.json",
        "/api/v1/network-rules",
    ] {
        let v = owner.expect(Method::GET, path, None, 200).await;
        assert!(!v.to_string().contains(password), "password in {path}");
    }
    // A bad URL is refused without echoing its password.
    let out = std::process::Command::new(common::berth_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("BERTH_DATABASE_URL", "mysql://u:hunter2-secret@h/db")
        .output()
        .expect("run berth");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(text.contains("u:***@h"), "{text}");
    // `--help` does not print the variable's value.
    let out = std::process::Command::new(common::berth_bin())
        .args(["serve", "--help"])
        .env("BERTH_DATABASE_URL", pair.url.as_str())
        .output()
        .expect("run berth");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(password));
}
