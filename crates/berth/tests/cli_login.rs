//! `berth login` / `logout` end to end against a spawned server: the
//! config.json it writes (and what it keeps), skopeo pushing and pulling
//! with it, `--expose-token` as a skopeo password, name checks before any
//! network call, refusals with the server's message.

mod common;

use base64::Engine as _;
use common::cli::{mode, CliEnv, TOKEN_USERNAME};
use common::*;
use serde_json::{json, Value};

fn skopeo_available() -> bool {
    if on_path("skopeo") {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("skopeo is not on PATH, but CI is set: CI must install skopeo");
    }
    eprintln!("SKIPPED: skopeo is not on PATH; skopeo parts of cli_login did not run");
    false
}

/// Copy `src` → `dst` inside the registry with `authfile`, then inspect
/// the copy: a pull and a push done with those credentials alone.
fn skopeo_round_trip(env: &CliEnv, server: &TestServer, authfile: &str, src: &str, dst: &str) {
    let policy = env.skopeo_policy();
    let host = server.host();
    env.skopeo(&[
        "--policy",
        &policy,
        "copy",
        "--authfile",
        authfile,
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{host}/{src}"),
        &format!("docker://{host}/{dst}"),
    ]);
    let raw = env.skopeo(&[
        "inspect",
        "--authfile",
        authfile,
        "--tls-verify=false",
        "--raw",
        &format!("docker://{host}/{dst}"),
    ]);
    let v: Value = serde_json::from_str(&raw).expect("manifest JSON");
    assert_eq!(v["schemaVersion"], 2);
}

#[tokio::test]
async fn login_writes_docker_config_that_skopeo_uses_and_logout_removes_it() {
    let server = TestServer::start().await;
    let host = server.host();
    let env = CliEnv::new();
    // An existing config with unrelated content that must survive.
    env.write_docker_config(&json!({
        "auths": {"other.example.com": {"auth": "b3RoZXI6c2VjcmV0"}},
        "psFormat": "table {{.ID}}",
        "proxies": {"default": {"httpProxy": "http://proxy.example:3128"}}
    }));

    let out = env.login_owner(&server);
    assert!(out.contains("Login Succeeded"), "{out}");
    let cfg = env.docker_config();
    let entry = &cfg["auths"][&host];
    let expected_auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_USERNAME}:"));
    assert_eq!(entry["auth"], json!(expected_auth));
    let refresh = entry["identitytoken"].as_str().expect("identitytoken");
    assert_eq!(refresh.split('.').count(), 3, "a JWT: {refresh}");
    assert_eq!(cfg["psFormat"], "table {{.ID}}");
    assert_eq!(
        cfg["proxies"]["default"]["httpProxy"],
        "http://proxy.example:3128"
    );
    assert_eq!(
        cfg["auths"]["other.example.com"]["auth"],
        "b3RoZXI6c2VjcmV0"
    );
    assert_eq!(mode(&env.docker_config_path()), 0o600);
    assert_eq!(mode(&env.sessions_path()), 0o600);
    let sessions = std::fs::read_to_string(env.sessions_path()).expect("sessions");
    assert!(
        !sessions.contains(OWNER_PASSWORD),
        "the password must not be stored"
    );

    // The identity token works as docker uses it: refresh grant.
    let form = [
        ("grant_type", "refresh_token"),
        ("service", host.as_str()),
        ("scope", "repository:cli/a:pull"),
        ("refresh_token", refresh),
    ];
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/token", server.base_url()))
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);

    if skopeo_available() {
        let image = Image::random(2, 2048);
        server.registry().push_image("cli/a", "v1", &image).await;
        let authfile = env.docker_config_path().display().to_string();
        skopeo_round_trip(&env, &server, &authfile, "cli/a:v1", "cli/b:v1");
    }

    let out = env.ok(&["logout", &host]);
    assert!(out.contains("Removed"), "{out}");
    let cfg = env.docker_config();
    assert!(cfg["auths"].get(&host).is_none(), "{cfg}");
    assert_eq!(cfg["psFormat"], "table {{.ID}}");
    assert_eq!(
        cfg["auths"]["other.example.com"]["auth"],
        "b3RoZXI6c2VjcmV0"
    );
    assert!(env.sessions()["sessions"].get(&host).is_none());
    let out = env.ok(&["logout", &host]);
    assert!(out.contains("Not logged in"), "{out}");
}

#[tokio::test]
async fn expose_token_is_a_password_for_the_null_uuid() {
    let server = TestServer::start().await;
    let host = server.host();
    let env = CliEnv::new();
    // No session yet and no terminal: a clear refusal.
    let err = env.fails(&["login", &host, "--expose-token"]);
    assert!(err.contains("berth login"), "{err}");
    // Refused combinations (usage error, status 2).
    let out = env.run(&["login", &host, "--expose-token", "-u", "x"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["login", &host, "--expose-token", "--password", "x"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));

    env.login_owner(&server);
    let before = env.docker_config();
    let out = env.run(&["login", &host, "--expose-token"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["loginServer"], json!(host));
    let token = v["accessToken"].as_str().expect("accessToken").to_string();
    let hint = String::from_utf8_lossy(&out.stderr);
    assert!(hint.contains(TOKEN_USERNAME), "{hint}");
    assert_eq!(
        env.docker_config(),
        before,
        "--expose-token leaves docker's config alone"
    );

    // Basic with the null UUID and the token works on the token endpoint.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/oauth2/token?service={host}&scope=repository:x/y:pull",
            server.base_url()
        ))
        .basic_auth(TOKEN_USERNAME, Some(&token))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);

    if skopeo_available() {
        let image = Image::random(1, 1024);
        server
            .registry()
            .push_image("exposed/src", "v1", &image)
            .await;
        let other = CliEnv::new();
        let authfile = other.home().join("auth.json").display().to_string();
        other.skopeo(&[
            "login",
            "--authfile",
            &authfile,
            "--tls-verify=false",
            "--username",
            TOKEN_USERNAME,
            "--password",
            &token,
            &host,
        ]);
        skopeo_round_trip(
            &other,
            &server,
            &authfile,
            "exposed/src:v1",
            "exposed/dst:v1",
        );
    }
}

#[tokio::test]
async fn login_refusals_carry_the_servers_message() {
    let server = TestServer::start().await;
    let host = server.host();
    let env = CliEnv::new();
    let err = env.fails(&["login", &host, "-u", OWNER_USER, "-p", "wrong-password"]);
    assert!(
        err.contains("401") && err.contains("invalid_grant"),
        "{err}"
    );
    assert!(
        !env.docker_config_path().exists(),
        "nothing written on failure"
    );
    // A user without any role cannot exchange: the server says why.
    env.login_owner(&server);
    env.ok(&[
        "user",
        "create",
        "--name",
        "norole",
        "--password",
        "norole-password-1",
    ]);
    let other = CliEnv::new();
    let err = other.fails(&["login", &host, "-u", "norole", "-p", "norole-password-1"]);
    assert!(err.contains("no role on this registry"), "{err}");
    // No credentials and no terminal.
    let err = other.fails(&["login", &host]);
    assert!(err.contains("--username"), "{err}");
    let err = other.fails(&["login", &host, "-u", "x"]);
    assert!(err.contains("--password-stdin"), "{err}");
}

#[test]
fn name_checks_happen_before_any_network_call() {
    let env = CliEnv::new();
    // Unresolvable names: a network call would fail differently.
    let err = env.fails(&["login", "MyRegistry.invalid", "-u", "a", "-p", "b"]);
    assert!(
        err.contains("must be lowercase: use 'myregistry.invalid'"),
        "{err}"
    );
    let err = env.fails(&["login", "myregistry", "-u", "a", "-p", "b"]);
    assert!(err.contains("full login server"), "{err}");
    let err = env.fails(&[
        "login",
        "https://myregistry.invalid/v2/",
        "-u",
        "a",
        "-p",
        "b",
    ]);
    assert!(
        err.contains("must not include a scheme: use 'myregistry.invalid'"),
        "{err}"
    );
    let err = env.fails(&["login", "myregistry.invalid/team", "-u", "a", "-p", "b"]);
    assert!(
        err.contains("must not include a path: use 'myregistry.invalid'"),
        "{err}"
    );
    let err = env.fails(&["logout", "MyRegistry.invalid"]);
    assert!(err.contains("must be lowercase"), "{err}");
    let err = env.fails(&["user", "list", "-r", "Bad.Invalid"]);
    assert!(err.contains("must be lowercase"), "{err}");
    // No registry at all.
    let err = env.fails(&["user", "list"]);
    assert!(err.contains("-r/--registry"), "{err}");
    assert!(!env.docker_config_path().exists());
}

#[test]
fn damaged_docker_config_is_not_overwritten() {
    let env = CliEnv::new();
    std::fs::create_dir_all(env.docker_dir()).expect("mkdir");
    std::fs::write(env.docker_config_path(), b"{not json").expect("write");
    // logout reads docker's config without any network call.
    let err = env.fails(&["logout", "127.0.0.1:1"]);
    assert!(err.contains("not valid JSON"), "{err}");
    assert_eq!(
        std::fs::read(env.docker_config_path()).expect("read"),
        b"{not json"
    );
}

#[test]
fn completion_scripts() {
    let env = CliEnv::new();
    let out = env.ok(&["completion", "bash"]);
    assert!(out.contains("berth") && out.contains("scope-map"), "{out}");
    let out = env.ok(&["completion", "zsh"]);
    assert!(out.contains("#compdef berth"));
}
