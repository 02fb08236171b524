//! `berth pull-secret create` against a real `berth serve`: the Secret it
//! prints is parsed with a real YAML parser (serde_yaml_ng), its
//! `.dockerconfigjson` is keyed as kubelet matches it and its credentials
//! pull the image with skopeo; the password expires (test clock). And
//! `berth check-health --pull-secret` on each cause of a failing pull:
//! wrong host keys (`https://` prefix, missing port), an expired password,
//! a disabled token, a scope map without the repository, an image that
//! does not exist, an invalid secret — and a healthy secret.

mod common;

use base64::Engine as _;
use common::cli::CliEnv;
use common::clock::Clock;
use common::kube::{assert_pulls, check_health, finding, has_error, skopeo_pull};
use common::login::*;
use common::skopeo::skopeo_available;
use common::*;
use serde_json::{json, Value};

const DAY: i64 = 86_400;

/// Push `team/app:1.0` as the Owner; its image reference.
async fn push_app(server: &TestServer) -> String {
    server
        .registry()
        .push_image("team/app", "1.0", &Image::random(1, 2048))
        .await
        .expect_status(201);
    format!("{}/team/app:1.0", server.host())
}

/// `berth pull-secret create ARGS` (as the logged-in Owner): the parsed
/// document and stderr.
fn create(env: &CliEnv, args: &[&str]) -> (Value, String) {
    let mut a = vec!["pull-secret", "create"];
    a.extend_from_slice(args);
    let out = env.run(&a, None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "berth {a:?}: {stderr}");
    let doc: Value = if args.contains(&"json") {
        serde_json::from_str(&stdout).expect("JSON Secret")
    } else {
        serde_yaml_ng::from_str(&stdout).unwrap_or_else(|e| panic!("not YAML ({e}): {stdout}"))
    };
    (doc, stderr)
}

/// The Secret's `.dockerconfigjson`, decoded.
fn dockerconfig(secret: &Value) -> Value {
    assert_eq!(secret["apiVersion"], "v1");
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let b64 = secret["data"][".dockerconfigjson"].as_str().expect("data");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("dockerconfigjson is JSON")
}

/// (username, password) of the one entry, checking key and `auth`.
fn only_entry(config: &Value, host: &str) -> (String, String) {
    let auths = config["auths"].as_object().expect("auths");
    assert_eq!(auths.keys().collect::<Vec<_>>(), vec![host], "{config}");
    let e = &auths[host];
    let user = e["username"].as_str().expect("username").to_string();
    let pass = e["password"].as_str().expect("password").to_string();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    assert_eq!(e["auth"], auth);
    (user, pass)
}

/// Write a Secret whose `.dockerconfigjson` holds `auths`.
fn secret_file(dir: &std::path::Path, name: &str, auths: Value) -> String {
    let config = json!({ "auths": auths }).to_string();
    let doc = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config)},
    });
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).expect("yaml")).expect("write");
    path.display().to_string()
}

/// `check-health <host> --pull-secret FILE --image IMAGE`: (passed, report).
fn health(env: &CliEnv, host: &str, file: &str, image: &str) -> (bool, Value) {
    let (code, report) = check_health(env, &[host, "--pull-secret", file, "--image", image]);
    (code == Some(0), report)
}

/// A check-health row: the code, its status and text in its message.
fn expect_row(report: &Value, code: &str, status: &str, text: &str) {
    let f = finding(report, code);
    assert_eq!(f["status"], status, "{code}: {report:#}");
    let msg = f["message"].as_str().unwrap_or("");
    assert!(msg.contains(text), "{code}: {msg:?} lacks {text:?}");
    assert!(
        f["fix"].as_str().is_some_and(|s| !s.is_empty()),
        "{code} has no fix"
    );
}

#[tokio::test]
async fn token_pull_secret_pulls_and_expires() {
    if !skopeo_available() {
        return;
    }
    let clock = Clock::new();
    let server = clock.server().await;
    let image = push_app(&server).await;
    let host = server.host();
    let env = CliEnv::new();
    env.login_owner(&server);
    env.ok(&[
        "token",
        "create",
        "--name",
        "ci-pull",
        "--repository",
        "team/app",
        "content/read",
        "metadata/read",
    ]);
    let (secret, stderr) = create(
        &env,
        &[
            "--name",
            "regcred",
            "--namespace",
            "apps",
            "--token",
            "ci-pull",
            "--yes",
        ],
    );
    assert_eq!(secret["metadata"]["name"], "regcred");
    assert_eq!(secret["metadata"]["namespace"], "apps");
    let annotations = &secret["metadata"]["annotations"];
    assert_eq!(annotations["berth.io/login-server"], host.as_str());
    let expires = annotations["berth.io/expires-at"]
        .as_str()
        .expect("expires-at");
    let at = humantime::parse_rfc3339(expires).expect("RFC 3339");
    let days = at
        .duration_since(std::time::SystemTime::now())
        .expect("future")
        .as_secs() as i64
        / DAY;
    assert!((89..=90).contains(&days), "{expires}");
    assert!(
        stderr.contains("expires at") && stderr.contains(expires),
        "{stderr}"
    );
    let (user, password) = only_entry(&dockerconfig(&secret), &host);
    assert_eq!(user, "ci-pull");
    assert_pulls(env.home(), &image, &user, &password);

    // Healthy, from a file and from stdin.
    let path = env.home().join("regcred.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&secret).expect("yaml")).expect("write");
    let path = path.display().to_string();
    let (ok, report) = health(&env, &host, &path, &image);
    assert!(ok && !has_error(&report), "{report:#}");
    let manifest = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|f| f["name"] == "manifest"))
        .expect("manifest row");
    assert_eq!(manifest["status"], "ok");
    let stdin = serde_json::to_string(&secret).expect("json");
    let out = env.run(
        &[
            "check-health",
            "--pull-secret",
            "-",
            "--image",
            &image,
            "--output",
            "json",
        ],
        Some(&stdin),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // 91 days later the password is refused: skopeo fails, check-health
    // says why.
    clock.at(91 * DAY);
    let out = skopeo_pull(env.home(), &image, &user, &password);
    assert!(!out.status.success(), "an expired password still pulls");
    let (ok, report) = health(&env, &host, &path, &image);
    assert!(!ok);
    expect_row(&report, "PULL_CREDENTIAL_EXPIRED", "error", "expired");
}

#[tokio::test]
async fn service_principal_pull_secret_as_json() {
    if !skopeo_available() {
        return;
    }
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let image = push_app(&server).await;
    let host = server.host();
    let (app_id, _) = api.service_principal("cluster-pull", None).await;
    api.assign(&app_id, "AcrPull", None).await;
    let env = CliEnv::new();
    env.login_owner(&server);
    let (secret, stderr) = create(
        &env,
        &[
            "--name",
            "sp-cred",
            "--service-principal",
            &app_id,
            "--expires-in",
            "30d",
            "--output",
            "json",
        ],
    );
    assert!(secret["metadata"].get("namespace").is_none());
    assert!(stderr.contains("(in 30 days)"), "{stderr}");
    let (user, password) = only_entry(&dockerconfig(&secret), &host);
    assert_eq!(user, app_id);
    assert_pulls(env.home(), &image, &user, &password);
    // The secret was added: the service principal now has two.
    let sp = api
        .expect(
            reqwest::Method::GET,
            &format!("/api/v1/service-principals/{app_id}"),
            None,
            200,
        )
        .await;
    assert_eq!(sp["secrets"].as_array().map(Vec::len), Some(2), "{sp}");

    // Refusals of the command itself.
    for bad in [
        vec!["--name", "Bad_Name", "--service-principal", &app_id],
        vec![
            "--name",
            "ok",
            "--service-principal",
            &app_id,
            "--expires-in",
            "36h",
        ],
        vec!["--name", "ok"],
    ] {
        let mut a = vec!["pull-secret", "create"];
        a.extend(bad.iter().copied());
        let out = env.run(&a, None);
        assert!(!out.status.success(), "{a:?}");
        assert!(out.stdout.is_empty(), "{a:?}");
    }
    // Regenerating a token password needs --yes without a terminal.
    env.ok(&[
        "token",
        "create",
        "--name",
        "ci-pull",
        "--repository",
        "team/app",
        "content/read",
    ]);
    let err = env.fails(&["pull-secret", "create", "--name", "x", "--token", "ci-pull"]);
    assert!(err.contains("--yes"), "{err}");
}

#[tokio::test]
async fn check_health_explains_failing_pull_secrets() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let image = push_app(&server).await;
    let host = server.host();
    let port = host
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .expect("port");
    let env = CliEnv::new();
    let dir = env.home().to_path_buf();
    let good = api
        .repo_token(json!({"name": "good-pull", "repositories": [{"repository": "team/app", "actions": ["content/read"]}]}))
        .await;
    let entry = |user: &str, pass: &str| {
        json!({"username": user, "password": pass,
               "auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))})
    };

    // Healthy.
    let ok_file = secret_file(
        &dir,
        "healthy",
        json!({ host.clone(): entry("good-pull", &good) }),
    );
    let (ok, report) = health(&env, &host, &ok_file, &image);
    assert!(ok && !has_error(&report), "{report:#}");

    // `https://` prefix with the port: kubelet drops the scheme, so it
    // works, with a warning.
    let f = secret_file(
        &dir,
        "scheme",
        json!({ format!("https://{host}/"): entry("good-pull", &good) }),
    );
    let (ok, report) = health(&env, &host, &f, &image);
    assert!(ok, "{report:#}");
    expect_row(&report, "PULL_SECRET_KEY_SCHEME", "warning", "https://");

    // `https://` prefix without the port, and a bare host without it:
    // kubelet matches neither.
    for (name, key) in [
        ("scheme-no-port", "https://127.0.0.1".to_string()),
        ("no-port", "127.0.0.1".to_string()),
    ] {
        let f = secret_file(
            &dir,
            name,
            json!({ key.clone(): entry("good-pull", &good) }),
        );
        let (ok, report) = health(&env, &host, &f, &image);
        assert!(!ok, "{name}");
        expect_row(&report, "PULL_SECRET_KEY_MISMATCH", "error", "port differs");
        expect_row(&report, "PULL_SECRET_KEY_MISMATCH", "error", &port);
    }
    // A key for another repository path.
    let f = secret_file(
        &dir,
        "path",
        json!({ format!("{host}/other"): entry("good-pull", &good) }),
    );
    expect_row(
        &health(&env, &host, &f, &image).1,
        "PULL_SECRET_KEY_MISMATCH",
        "error",
        "prefix",
    );

    // Disabled token.
    let disabled = api
        .repo_token(json!({"name": "off-pull", "repositories": [{"repository": "team/app", "actions": ["content/read"]}]}))
        .await;
    api.expect(
        reqwest::Method::PATCH,
        "/api/v1/tokens/off-pull",
        Some(json!({"status": "disabled"})),
        200,
    )
    .await;
    let f = secret_file(
        &dir,
        "disabled",
        json!({ host.clone(): entry("off-pull", &disabled) }),
    );
    let (ok, report) = health(&env, &host, &f, &image);
    assert!(!ok);
    expect_row(&report, "PULL_CREDENTIAL_DISABLED", "error", "disabled");

    // A scope map without the repository.
    let elsewhere = api
        .repo_token(json!({"name": "other-pull", "repositories": [{"repository": "team/other", "actions": ["content/read"]}]}))
        .await;
    let f = secret_file(
        &dir,
        "scope",
        json!({ host.clone(): entry("other-pull", &elsewhere) }),
    );
    let (ok, report) = health(&env, &host, &f, &image);
    assert!(!ok);
    expect_row(&report, "PULL_PERMISSION_ERROR", "error", "scope map");

    // An image that does not exist (tag and repository).
    let both = api
        .repo_token(json!({"name": "both-pull", "repositories": [
            {"repository": "team/app", "actions": ["content/read"]},
            {"repository": "team/gone", "actions": ["content/read"]}]}))
        .await;
    let f = secret_file(
        &dir,
        "both",
        json!({ host.clone(): entry("both-pull", &both) }),
    );
    for (missing, text) in [
        (format!("{host}/team/app:2.0"), "no manifest"),
        (format!("{host}/team/gone:1.0"), "team/gone"),
    ] {
        let (ok, report) = health(&env, &host, &f, &missing);
        assert!(!ok);
        expect_row(&report, "PULL_IMAGE_NOT_FOUND", "error", text);
    }

    // Expiring within 7 days (the annotation pull-secret create writes).
    env.login_owner(&server);
    let (soon, _) = create(
        &env,
        &[
            "--name",
            "soon",
            "--token",
            "good-pull",
            "--expires-in",
            "3d",
            "--yes",
        ],
    );
    let f = dir.join("soon.yaml");
    std::fs::write(&f, serde_yaml_ng::to_string(&soon).expect("yaml")).expect("write");
    let (ok, report) = health(&env, &host, &f.display().to_string(), &image);
    assert!(ok, "a warning only: {report:#}");
    expect_row(&report, "PULL_CREDENTIAL_EXPIRING", "warning", "expires at");

    // Invalid secrets.
    let opaque = dir.join("opaque.yaml");
    std::fs::write(
        &opaque,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ntype: Opaque\ndata: {}\n",
    )
    .expect("write");
    let (ok, report) = health(&env, &host, &opaque.display().to_string(), &image);
    assert!(!ok);
    expect_row(&report, "PULL_SECRET_INVALID", "error", "Opaque");
    // --image on another registry than the login server.
    let (ok, report) = health(&env, &host, &ok_file, "registry.example.com/team/app:1.0");
    assert!(!ok);
    expect_row(
        &report,
        "PULL_IMAGE_INVALID",
        "error",
        "registry.example.com",
    );
}
