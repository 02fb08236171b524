//! The Docker engine against a real `berth serve`: `docker login`, push,
//! `rmi`, pull and `logout` for every kind of identity berth has, docker's
//! credential helpers routed to `docker-credential-berth`, the refusals
//! docker prints, and containerd's `ctr` pulling what docker pushed.
//!
//! Each test starts its own engine ([`Dockerd`]: vfs storage, no iptables,
//! no bridge, its own data root, exec root and socket, stopped by PID) and
//! its own registry; each docker user has its own `DOCKER_CONFIG`. Every
//! assertion reads what the client printed, not only its exit status.

mod common;

use common::docker::{DockerCli, Dockerd};
use common::login::{json_of, plain, Api, NULL_USER};
use common::*;
use serde_json::json;

/// `docker login` as `user`, asserting docker's success line and that the
/// daemon stored an identity token (docker's refresh token), not the
/// password.
fn login_ok(cli: &DockerCli, server: &TestServer, user: &str, password: &str) {
    let host = server.host();
    cli.login(&host, user, password)
        .ok(&format!("docker login as {user}"), &["Login Succeeded"]);
    let cfg = cli.config();
    let entry = &cfg["auths"][&host];
    assert!(
        entry["identitytoken"]
            .as_str()
            .is_some_and(|t| t.len() > 20),
        "docker stores berth's refresh token as identitytoken: {cfg}"
    );
    assert!(
        !cfg.to_string().contains(password),
        "the password itself is not stored: {cfg}"
    );
}

/// Build, push, `rmi`, pull back and compare image ids; returns the
/// manifest digest docker printed.
fn round_trip(cli: &DockerCli, reference: &str) -> String {
    cli.build(reference);
    let id = cli.image_id(reference);
    let digest = cli.push(reference);
    cli.rmi_and_pull(reference);
    assert_eq!(
        cli.image_id(reference),
        id,
        "pulled image is the pushed one"
    );
    digest
}

/// The manifest berth stores for `repo:tag` has the digest docker printed
/// and two layers.
async fn assert_stored(server: &TestServer, repo: &str, tag: &str, digest: &str) {
    let r = server
        .registry()
        .req(reqwest::Method::GET, &format!("/v2/{repo}/manifests/{tag}"))
        .header("accept", &format!("{DOCKER_MANIFEST}, {OCI_MANIFEST}"))
        .send()
        .await;
    assert_eq!(r.status, 200, "{repo}:{tag}");
    assert_eq!(
        r.header("docker-content-digest").as_deref(),
        Some(digest),
        "{repo}:{tag}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&r.body).expect("manifest JSON");
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(2),
        "{manifest}"
    );
}

#[tokio::test]
async fn owner_login_push_rmi_pull_logout() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let host = server.host();
    let cli = dockerd.cli();
    login_ok(&cli, &server, OWNER_USER, OWNER_PASSWORD);
    let reference = format!("{host}/dk/owner:v1");
    let digest = round_trip(&cli, &reference);
    assert_stored(&server, "dk/owner", "v1", &digest).await;
    cli.run(&["logout", &host], None).ok(
        "docker logout",
        &[&format!("Removing login credentials for {host}")],
    );
    assert!(cli.config()["auths"][&host].is_null(), "{}", cli.config());
    // Logged out: a push is refused, and docker says why.
    cli.run(&["push", &reference], None)
        .fails("push after logout", &["authentication required"]);
}

#[tokio::test]
async fn acrpush_user_round_trip() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let password = api.user("pusher").await;
    api.assign("pusher", "AcrPush", None).await;
    let cli = dockerd.cli();
    login_ok(&cli, &server, "pusher", &password);
    let digest = round_trip(&cli, &format!("{}/dk/pusher:v1", server.host()));
    assert_stored(&server, "dk/pusher", "v1", &digest).await;
}

#[tokio::test]
async fn acrpull_user_pulls_and_push_names_the_missing_role() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let host = server.host();
    let api = Api::owner(&server).await;
    let owner = dockerd.cli();
    login_ok(&owner, &server, OWNER_USER, OWNER_PASSWORD);
    let reference = format!("{host}/dk/shared:v1");
    owner.build(&reference);
    owner.push(&reference);

    let password = api.user("puller").await;
    api.assign("puller", "AcrPull", None).await;
    let cli = dockerd.cli();
    login_ok(&cli, &server, "puller", &password);
    cli.rmi_and_pull(&reference);
    let mine = format!("{host}/dk/puller:v1");
    cli.run(&["tag", &reference, &mine], None)
        .ok("docker tag", &[]);
    cli.run(&["push", &mine], None).fails(
        "AcrPull user pushes",
        &[
            "denied: requested access to the resource is denied",
            "puller may not push to dk/puller: needs AcrPush, Contributor or Owner",
            "(correlation id: ",
        ],
    );
}

#[tokio::test]
async fn service_principal_round_trip() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let (app_id, secret) = api.service_principal("dk-ci", None).await;
    api.assign(&app_id, "AcrPush", None).await;
    let cli = dockerd.cli();
    login_ok(&cli, &server, &app_id, &secret);
    let digest = round_trip(&cli, &format!("{}/dk/sp:v1", server.host()));
    assert_stored(&server, "dk/sp", "v1", &digest).await;
}

#[tokio::test]
async fn repository_token_pulls_and_push_names_its_scope_map() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let host = server.host();
    let api = Api::owner(&server).await;
    let owner = dockerd.cli();
    login_ok(&owner, &server, OWNER_USER, OWNER_PASSWORD);
    let reference = format!("{host}/dk/team/app:v1");
    owner.build(&reference);
    owner.push(&reference);

    let password = api
        .repo_token(json!({"name": "ci-pull", "repositories": [
            {"repository": "dk/team/app", "actions": ["content/read"]}
        ]}))
        .await;
    let cli = dockerd.cli();
    login_ok(&cli, &server, "ci-pull", &password);
    cli.rmi_and_pull(&reference);
    cli.build(&reference);
    cli.run(&["push", &reference], None).fails(
        "pull-only token pushes",
        &[
            "requested access to the resource is denied",
            "token \"ci-pull\" may not push to dk/team/app: its scope map grants content/read",
        ],
    );
    // Outside its scope map: the same kind of message, about the asked-for
    // repository only.
    let other = format!("{host}/dk/elsewhere:v1");
    cli.run(&["tag", &reference, &other], None)
        .ok("docker tag", &[]);
    // (docker first checks whether the layers exist there: a pull.)
    let p = cli.run(&["push", &other], None).fails(
        "token pushes outside its scope map",
        &[
            "token \"ci-pull\" may not",
            "dk/elsewhere: its scope map grants nothing on dk/elsewhere",
        ],
    );
    assert!(!p.text.contains("dk/team/app"), "{}", p.text);
}

#[tokio::test]
async fn admin_account_round_trip() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let password = api.enable_admin().await;
    let cli = dockerd.cli();
    login_ok(&cli, &server, "berth", &password);
    let digest = round_trip(&cli, &format!("{}/dk/admin:v1", server.host()));
    assert_stored(&server, "dk/admin", "v1", &digest).await;
}

#[tokio::test]
async fn expose_token_logs_docker_in_with_the_null_guid() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let host = server.host();
    let cli = dockerd.cli();
    cli.env.login_owner(&server);
    let printed = cli.env.ok(&["login", &host, "--expose-token"]);
    let v: serde_json::Value = serde_json::from_str(&printed).expect("expose-token JSON");
    let token = v["accessToken"].as_str().expect("accessToken").to_string();
    // docker's config was not touched by --expose-token; docker logs in
    // with the null GUID and the refresh token.
    login_ok(&cli, &server, NULL_USER, &token);
    let digest = round_trip(&cli, &format!("{host}/dk/exposed:v1"));
    assert_stored(&server, "dk/exposed", "v1", &digest).await;

    // The refresh token with another username: docker prints the fix.
    let other = dockerd.cli();
    other.login(&host, OWNER_USER, &token).fails(
        "refresh token with the owner's name",
        &[
            "the password is a registry refresh token: use it with the username 00000000-0000-0000-0000-000000000000",
            "(correlation id: ",
        ],
    );
}

#[tokio::test]
async fn credential_helpers_push_and_pull_without_docker_login() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let host = server.host();
    for (label, config) in [
        ("credsStore", json!({"credsStore": "berth"})),
        (
            "credHelpers",
            json!({"credHelpers": {host.clone(): "berth"}}),
        ),
    ] {
        let cli = dockerd.cli();
        cli.env.link_helper();
        cli.env.write_docker_config(&config);
        cli.env.login_owner(&server);
        let reference = format!("{host}/dk/helper-{}:v1", label.to_ascii_lowercase());
        cli.build(&reference);
        let digest = cli.push(&reference);
        cli.rmi_and_pull(&reference);
        assert_stored(
            &server,
            &format!("dk/helper-{}", label.to_ascii_lowercase()),
            "v1",
            &digest,
        )
        .await;
        let cfg = cli.config();
        assert!(
            !cfg.to_string().contains("identitytoken"),
            "{label}: the secret stays in the helper: {cfg}"
        );
    }
}

#[tokio::test]
async fn network_rule_denies_docker_login() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/network-rules",
            Some(json!({"ipAddress": "10.0.0.0/8"})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    api.registry_settings(json!({"defaultAction": "Deny"}))
        .await;
    let cli = dockerd.cli();
    let host = server.host();
    cli.login(&host, OWNER_USER, OWNER_PASSWORD).fails(
        "login from a denied address",
        &[&format!(
            "login attempt to http://{host}/v2/ failed with status: 403 Forbidden"
        )],
    );
}

#[tokio::test]
async fn stale_credentials_pull_anonymously_but_login_names_docker_logout() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let host = server.host();
    let api = Api::owner(&server).await;
    let owner = dockerd.cli();
    login_ok(&owner, &server, OWNER_USER, OWNER_PASSWORD);
    let reference = format!("{host}/dk/public:v1");
    owner.build(&reference);
    owner.push(&reference);

    let password = api.user("stale").await;
    api.assign("stale", "AcrPull", None).await;
    let cli = dockerd.cli();
    login_ok(&cli, &server, "stale", &password);
    // The password is regenerated: the stored identity token is revoked.
    let (status, body) = api
        .call(
            reqwest::Method::PATCH,
            "/api/v1/users/stale",
            Some(json!({"password": "stale-password-new-1"})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    cli.run(&["rmi", &reference], None)
        .ok("docker rmi", &["Untagged: "]);
    cli.run(&["pull", &reference], None)
        .fails("pull with revoked credentials, anonymous pull off", &[]);

    api.registry_settings(json!({"anonymousPullEnabled": true}))
        .await;
    cli.run(&["pull", &reference], None).ok(
        "pull with revoked credentials, anonymous pull on",
        &[&format!("Status: Downloaded newer image for {reference}")],
    );
    cli.login(&host, "stale", &password).fails(
        "login with the old password",
        &["anonymous pull is on", &format!("docker logout {host}")],
    );
    // The failed attempts are still audited.
    let r = plain()
        .get(format!(
            "{}/api/v1/logs/login?operation=token_post",
            server.base_url()
        ))
        .basic_auth(OWNER_USER, Some(OWNER_PASSWORD))
        .send()
        .await
        .expect("login log");
    let page = json_of(r).await;
    let events = page["events"].as_array().cloned().unwrap_or_default();
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "revoked_token" && e["result"] == 200),
        "the anonymous fallback records the refused token: {page}"
    );
}

#[tokio::test]
async fn ctr_pulls_what_docker_pushed_with_user_and_refresh_token() {
    let dockerd = Dockerd::start();
    let server = TestServer::start().await;
    let host = server.host();
    let api = Api::owner(&server).await;
    let cli = dockerd.cli();
    login_ok(&cli, &server, OWNER_USER, OWNER_PASSWORD);
    let reference = format!("{host}/dk/ctr:v1");
    cli.build(&reference);
    let digest = cli.push(&reference);

    let password = api.user("ctr-user").await;
    api.assign("ctr-user", "AcrPull", None).await;
    let user = format!("ctr-user:{password}");
    let out = dockerd.ctr(
        &cli.env,
        "berth-user",
        &[
            "images",
            "pull",
            "--plain-http",
            "--snapshotter",
            "native",
            "--user",
            &user,
            &reference,
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ctr pull --user: {text}");
    assert!(text.contains(&digest), "ctr prints the digest: {text}");

    // With the refresh token `berth login --expose-token` prints, as the
    // null-GUID user's password and as ctr's --refresh.
    cli.env.login_owner(&server);
    let exposed: serde_json::Value =
        serde_json::from_str(&cli.env.ok(&["login", &host, "--expose-token"])).expect("JSON");
    let token = exposed["accessToken"].as_str().expect("accessToken");
    let null_user = format!("{NULL_USER}:{token}");
    for (namespace, auth) in [
        ("berth-null", vec!["--user", null_user.as_str()]),
        ("berth-refresh", vec!["--refresh", token]),
    ] {
        let mut args = vec!["images", "pull", "--plain-http", "--snapshotter", "native"];
        args.extend(auth);
        args.push(&reference);
        let out = dockerd.ctr(&cli.env, namespace, &args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "ctr pull ({namespace}): {text}");
        assert!(text.contains(&digest), "{namespace}: {text}");
        let listed = dockerd.ctr(&cli.env, namespace, &["images", "ls", "-q"]);
        assert!(
            String::from_utf8_lossy(&listed.stdout).contains(&reference),
            "{namespace}: ctr lists the image"
        );
    }

    // Wrong password: ctr fails and prints the registry's refusal.
    let bad = dockerd.ctr(
        &cli.env,
        "berth-bad",
        &[
            "images",
            "pull",
            "--plain-http",
            "--user",
            "ctr-user:wrong-password",
            &reference,
        ],
    );
    assert!(!bad.status.success());
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(
        text.contains("401") || text.contains("unauthorized"),
        "ctr names the refusal: {text}"
    );
}
