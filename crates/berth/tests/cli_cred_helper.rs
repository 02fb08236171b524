//! The credential helper driven exactly as docker drives it: the berth
//! binary as `docker-credential-berth VERB` (a symlink on PATH) or
//! `berth credential-helper VERB`, JSON on stdin/stdout. `credsStore:
//! "berth"` and `credHelpers` configs used by oras-py and skopeo; renewal from a service
//! principal's stored secret after its directory token expired; an
//! expired user session refused with a clear message.

mod common;

use std::process::{Command, Output};

use common::cli::CliEnv;
use common::*;
use serde_json::{json, Value};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The helper's `get` answer, asserted successful.
fn get(env: &CliEnv, server_url: &str) -> Value {
    let out = env.helper("get", server_url);
    assert!(out.status.success(), "get failed: {}", stdout(&out));
    serde_json::from_slice(&out.stdout).expect("get prints JSON")
}

/// A refresh token's access token for `scope` via the OAuth2 POST, as
/// docker uses an identity token; the HTTP status.
async fn use_refresh_token(server: &TestServer, refresh: &str) -> u16 {
    let host = server.host();
    let form = [
        ("grant_type", "refresh_token"),
        ("service", host.as_str()),
        ("scope", "repository:helper/x:pull"),
        ("refresh_token", refresh),
    ];
    reqwest::Client::new()
        .post(format!("{}/oauth2/token", server.base_url()))
        .form(&form)
        .send()
        .await
        .expect("token request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn protocol_verbs_through_argv0_and_subcommand() {
    let server = TestServer::start().await;
    let host = server.host();
    let env = CliEnv::new();
    env.write_docker_config(&json!({"credsStore": "berth", "detachKeys": "ctrl-e,e"}));
    env.link_helper();

    // Unknown server: docker's not-found text, exit 1, on stdout.
    let out = env.helper("get", &host);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out).trim(),
        "credentials not found in native keychain"
    );

    env.login_owner(&server);
    let cfg = env.docker_config();
    assert_eq!(
        cfg["auths"][&host],
        json!({}),
        "the secret lives in the helper: {cfg}"
    );
    assert_eq!(cfg["credsStore"], "berth");
    assert_eq!(cfg["detachKeys"], "ctrl-e,e");

    // get: docker may send host, https://host or a URL with a path.
    for url in [
        host.clone(),
        format!("https://{host}"),
        format!("http://{host}/v2/"),
    ] {
        let v = get(&env, &url);
        assert_eq!(v["ServerURL"], json!(url));
        assert_eq!(v["Username"], "<token>");
        let secret = v["Secret"].as_str().expect("Secret");
        assert_eq!(use_refresh_token(&server, secret).await, 200);
    }
    // Clients that pass the helper's answer straight into Basic (oras-py)
    // send the `<token>` username: the token endpoint takes it.
    let v = get(&env, &host);
    let r = reqwest::Client::new()
        .get(format!(
            "{}/oauth2/token?service={host}&scope=repository:helper/x:pull",
            server.base_url()
        ))
        .basic_auth("<token>", v["Secret"].as_str())
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), 200);
    let r = reqwest::Client::new()
        .get(format!("{}/oauth2/token?service={host}", server.base_url()))
        .basic_auth("<token>", Some("not-a-token"))
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), 401);

    // Each get exchanges again: a fresh token each time.
    let a = get(&env, &host)["Secret"].clone();
    let b = get(&env, &host)["Secret"].clone();
    assert_ne!(a, b, "get renews the refresh token");

    // The same through the subcommand.
    let out = env.run(&["credential-helper", "get"], Some(&host));
    assert!(out.status.success(), "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["Username"], "<token>");

    // list and version.
    let out = env.helper("list", "");
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).expect("list JSON");
    assert_eq!(list, json!({ host.clone(): "<token>" }));
    let out = env.helper("version", "");
    assert!(stdout(&out).contains("berth"));

    // store: identity tokens only, never passwords.
    let out = env.helper(
        "store",
        &json!({"ServerURL": "other.example.com", "Username": "alice", "Secret": "pw"}).to_string(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("identity tokens only"),
        "{}",
        stdout(&out)
    );
    let out = env.helper("store", "not json");
    assert_eq!(out.status.code(), Some(1));
    let fresh = get(&env, &host)["Secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let out = env.helper(
        "store",
        &json!({"ServerURL": "127.0.0.9:5000", "Username": "<token>", "Secret": fresh}).to_string(),
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let v = get(&env, "127.0.0.9:5000");
    assert_eq!(v["Secret"], json!(fresh));
    let out = env.helper("bogus", "");
    assert_eq!(out.status.code(), Some(1));

    // erase, then get is not found again.
    let out = env.helper("erase", &host);
    assert!(out.status.success(), "{}", stdout(&out));
    let out = env.helper("get", &host);
    assert_eq!(
        stdout(&out).trim(),
        "credentials not found in native keychain"
    );
    let out = env.helper("erase", &host);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn service_principal_sessions_renew_and_user_sessions_expire() {
    let server = TestServer::start().await;
    let host = server.host();
    let owner = CliEnv::new();
    owner.login_owner(&server);
    let sp = owner.json(&["sp", "create", "--name", "ci-robot"]);
    let app_id = sp["appId"].as_str().expect("appId").to_string();
    let secret = sp["secret"].as_str().expect("secret").to_string();
    owner.json(&[
        "role-assignment",
        "create",
        "--assignee",
        &app_id,
        "--role",
        "Reader",
    ]);

    let ci = CliEnv::new();
    ci.write_docker_config(&json!({"credsStore": "berth"}));
    ci.ok_in(
        &[
            "login",
            &host,
            "--service-principal",
            "-u",
            &app_id,
            "--password-stdin",
        ],
        Some(&secret),
    );
    // A service principal may call the management API with its directory token.
    let regs = ci.json(&["registry", "show"]);
    assert_eq!(regs["loginServer"], json!(host));
    // Pretend 3 hours passed: the stored directory token is expired.
    let mut s = ci.sessions();
    s["sessions"][&host]["directoryTokenExpiresAt"] = json!(1);
    ci.write_sessions(&s);
    let v = get(&ci, &host);
    assert_eq!(
        use_refresh_token(&server, v["Secret"].as_str().expect("secret")).await,
        200
    );
    let s = ci.sessions();
    assert!(
        s["sessions"][&host]["directoryTokenExpiresAt"]
            .as_u64()
            .expect("expiry")
            > 1000,
        "renewed"
    );
    // Management commands renew the same way.
    let mut s = ci.sessions();
    s["sessions"][&host]["directoryTokenExpiresAt"] = json!(1);
    ci.write_sessions(&s);
    ci.json(&["registry", "show"]);

    // A user session whose directory and refresh tokens are stale.
    let user = CliEnv::new();
    user.write_docker_config(&json!({"credsStore": "berth"}));
    user.login_owner(&server);
    let mut s = user.sessions();
    s["sessions"][&host]["directoryTokenExpiresAt"] = json!(1);
    s["sessions"][&host]["refreshToken"] = json!("x.eyJleHAiOjF9.y");
    user.write_sessions(&s);
    let out = user.helper("get", &host);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("expired") && stdout(&out).contains("berth login"),
        "{}",
        stdout(&out)
    );
    let err = user.fails(&["user", "list"]);
    assert!(err.contains("expired"), "{err}");
}

#[tokio::test]
async fn skopeo_and_oras_use_the_helper_through_the_docker_config() {
    let server = TestServer::start().await;
    let host = server.host();
    let env = CliEnv::new();
    env.link_helper();
    // skopeo (containers/image) follows credHelpers, not credsStore.
    env.write_docker_config(&json!({"credHelpers": {host.clone(): "berth"}}));
    env.login_owner(&server);
    assert_eq!(env.docker_config()["auths"][&host], json!({}));

    if on_path("skopeo") {
        let image = Image::random(1, 1024);
        server
            .registry()
            .push_image("helper/src", "v1", &image)
            .await;
        let policy = env.skopeo_policy();
        let authfile = env.docker_config_path().display().to_string();
        env.skopeo(&[
            "--policy",
            &policy,
            "copy",
            "--authfile",
            &authfile,
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{host}/helper/src:v1"),
            &format!("docker://{host}/helper/dst:v1"),
        ]);
        let tags = env.skopeo(&[
            "list-tags",
            "--authfile",
            &authfile,
            "--tls-verify=false",
            &format!("docker://{host}/helper/dst"),
        ]);
        assert!(tags.contains("v1"), "{tags}");
    } else if std::env::var_os("CI").is_some() {
        panic!("skopeo is not on PATH, but CI is set");
    }

    let has_oras = Command::new("python3")
        .args(["-c", "import oras"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_oras {
        if std::env::var_os("CI").is_some() {
            panic!("python3 cannot import oras, but CI is set");
        }
        eprintln!("SKIPPED: oras-py is not installed");
        return;
    }
    // oras-py follows credsStore.
    let mut cfg = env.docker_config();
    cfg.as_object_mut().expect("object").remove("credHelpers");
    cfg["credsStore"] = json!("berth");
    env.write_docker_config(&cfg);
    let work = tempfile::tempdir().expect("workdir");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/oras_docker_config.py"
    );
    let mut cmd = Command::new("python3");
    env.apply(&mut cmd);
    let out = cmd
        .arg(script)
        .arg(&host)
        .arg("helper/oras")
        .arg(work.path())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "oras-py failed\nstdout: {}\nstderr: {}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("script JSON");
    assert_eq!(v["pushed"], v["pulled"]);
    assert_eq!(v["tags"], json!(["v1"]));
}

#[tokio::test]
async fn login_stores_through_an_external_helper() {
    let server = TestServer::start().await;
    let host = server.host();
    let env = CliEnv::new();
    // A fake external helper that records what it is given.
    let helper = env.home().join("bin/docker-credential-fake");
    let record = env.home().join("fake-store.log");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\necho \"$1 $(cat)\" >> {}\n", record.display()),
    )
    .expect("write fake helper");
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    env.write_docker_config(&json!({"credHelpers": {host.clone(): "fake"}}));
    env.login_owner(&server);
    let log = std::fs::read_to_string(&record).expect("helper was called");
    let (verb, payload) = log.trim().split_once(' ').expect("verb and payload");
    assert_eq!(verb, "store");
    let v: Value = serde_json::from_str(payload).expect("store payload JSON");
    assert_eq!(v["ServerURL"], json!(host));
    assert_eq!(v["Username"], "<token>");
    assert_eq!(
        use_refresh_token(&server, v["Secret"].as_str().expect("secret")).await,
        200
    );
    assert_eq!(env.docker_config()["auths"][&host], json!({}));
    env.ok(&["logout", &host]);
    let log = std::fs::read_to_string(&record).expect("log");
    assert!(
        log.lines()
            .any(|l| l.starts_with("erase ") && l.contains(&host)),
        "{log}"
    );
}
