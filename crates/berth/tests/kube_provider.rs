//! `berth kubelet-credential-provider` driven exactly as kubelet drives it
//! (a `CredentialProviderConfig` with `args` and `env`, the request JSON
//! on stdin; see common/kube.rs), against a real `berth serve`; the
//! credentials it answers are used by skopeo to pull the image. A service
//! principal (secret file), a workload identity with a projected
//! Kubernetes service-account token (the test OIDC issuer signing
//! `iss`/`sub = system:serviceaccount:<ns>:<name>`/`aud`), and the same
//! token passed by kubelet through `tokenAttributes`. Hosts it is not
//! configured for get an empty `auth`; failures exit non-zero with the
//! reason on stderr and nothing on stdout. `berth check-health
//! --kubelet-provider-config` runs the same config and reports.

mod common;

use common::cli::{CliEnv, TOKEN_USERNAME};
use common::kube::*;
use common::login::*;
use common::oidc::Issuer;
use common::skopeo::skopeo_available;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const SA_NAMESPACE: &str = "apps";
const SA_NAME: &str = "puller";
const SA_AUDIENCE: &str = "berth-registry";

/// Push `team/app:1.0` as the Owner; its image reference.
async fn push_app(server: &TestServer) -> String {
    let image = Image::random(1, 2048);
    server
        .registry()
        .push_image("team/app", "1.0", &image)
        .await
        .expect_status(201);
    format!("{}/team/app:1.0", server.host())
}

/// A Go duration of a provider response in seconds.
fn go_secs(d: &str) -> u64 {
    berth_cli::kube::api::parse_go_duration(d).unwrap_or_else(|| panic!("not a Go duration: {d}"))
}

/// The checks every good answer passes; returns (username, password).
fn check_answer(resp: &Value, host: &str) -> (String, String) {
    assert_eq!(resp["kind"], "CredentialProviderResponse", "{resp}");
    assert_eq!(resp["apiVersion"], "credentialprovider.kubelet.k8s.io/v1");
    assert_eq!(resp["cacheKeyType"], "Registry");
    let auth = resp["auth"].as_object().expect("auth");
    assert_eq!(auth.keys().collect::<Vec<_>>(), vec![host], "{resp}");
    let user = auth[host]["username"]
        .as_str()
        .expect("username")
        .to_string();
    let password = auth[host]["password"]
        .as_str()
        .expect("password")
        .to_string();
    assert_eq!(user, TOKEN_USERNAME);
    // The password is a registry refresh token; the cache time is safely
    // below what is left of its life.
    let exp = berth_cli::renew::jwt_expiry(&password).expect("refresh token exp");
    let left = exp - berth_cli::session::now();
    let cache = go_secs(resp["cacheDuration"].as_str().expect("cacheDuration"));
    assert!(
        cache > 0 && cache + 300 <= left,
        "cache {cache}s, credential {left}s"
    );
    (user, password)
}

#[tokio::test]
async fn service_principal_provider_credentials_pull_with_skopeo() {
    if !skopeo_available() {
        return;
    }
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let image = push_app(&server).await;
    let host = server.host();
    let (app_id, secret) = api.service_principal("node-puller", None).await;
    api.assign(&app_id, "AcrPull", None).await;
    let dir = tempfile::tempdir().expect("dir");
    let secret_file = dir.path().join("sp-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("write secret");
    let config = provider_config(
        &host,
        &[
            ("BERTH_LOGIN_SERVER", &host),
            ("BERTH_CLIENT_ID", &app_id),
            (
                "BERTH_CLIENT_SECRET_FILE",
                &secret_file.display().to_string(),
            ),
        ],
        "",
    );
    let kubelet = Kubelet::new(dir.path(), &config);

    // kubelet asks for the repository without tag; the issue's example
    // with a tag is answered the same.
    for asked in [format!("{host}/team/app"), image.clone()] {
        let run = kubelet.provide(&asked, None);
        let (user, password) = check_answer(&run.response(), &host);
        assert_pulls(dir.path(), &image, &user, &password);
    }

    // Images of other hosts: kubelet does not even ask (matchImages), and
    // the plugin itself answers an empty auth when asked.
    let other_port = format!("127.0.0.1:{}", free_port());
    assert!(kubelet
        .matching(&format!("{other_port}/team/app"))
        .is_empty());
    let provider = &kubelet.matching(&image)[0];
    for other in [
        format!("{other_port}/team/app"),
        "registry.example.com/team/app".to_string(),
        "127.0.0.1/team/app".to_string(),
    ] {
        let resp = kubelet.exec(provider, &other, None).response();
        assert_eq!(resp["auth"], json!({}), "{other}: {resp}");
        assert_eq!(resp["kind"], "CredentialProviderResponse");
    }

    // A wrong secret: exit 1, the reason on stderr, nothing on stdout.
    std::fs::write(&secret_file, "not-the-secret").expect("write");
    let run = kubelet.provide(&image, None);
    assert_eq!(run.output.status.code(), Some(1));
    assert!(run.output.stdout.is_empty(), "half-written stdout");
    assert!(run.stderr().contains("invalid"), "{}", run.stderr());
    std::fs::write(&secret_file, &secret).expect("write");

    // Malformed requests: exit 1, nothing on stdout.
    let env = CliEnv::new();
    for bad in [
        "not json",
        r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v9","kind":"CredentialProviderRequest","image":"x/y"}"#,
        r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":""}"#,
    ] {
        let out = env.run(
            &["kubelet-credential-provider", "--login-server", &host],
            Some(bad),
        );
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(out.stdout.is_empty(), "{bad}");
        assert!(!out.stderr.is_empty(), "{bad}");
    }

    // check-health runs the same config as kubelet and verifies the answer.
    let (code, report) = provider_health(&env, &kubelet, &image);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(!has_error(&report), "{report:#}");

    // Not matched: matchImages without the port.
    let unmatched = Kubelet::new(
        &dir.path().join("unmatched"),
        &provider_config("127.0.0.1", &[("BERTH_LOGIN_SERVER", &host)], ""),
    );
    let report = health(&env, &unmatched, &image);
    let f = finding(&report, "KUBELET_PROVIDER_NOT_MATCHED");
    assert!(f["message"].as_str().unwrap_or("").contains("port"), "{f}");

    // Not configured for this login server: an empty auth.
    let elsewhere = Kubelet::new(
        &dir.path().join("elsewhere"),
        &provider_config(&host, &[("BERTH_LOGIN_SERVER", "registry.example.com")], ""),
    );
    finding(
        &health(&env, &elsewhere, &image),
        "KUBELET_PROVIDER_NO_AUTH",
    );

    // A provider that fails: its stderr is in the finding.
    std::fs::write(&secret_file, "not-the-secret").expect("write");
    let report = health(&env, &kubelet, &image);
    let f = finding(&report, "KUBELET_PROVIDER_EXEC_ERROR");
    assert!(
        f["message"].as_str().unwrap_or("").contains("invalid"),
        "{f}"
    );
}

/// `check-health --kubelet-provider-config` for `kubelet`'s config: a
/// failing report.
fn health(env: &CliEnv, kubelet: &Kubelet, image: &str) -> Value {
    let (code, report) = provider_health(env, kubelet, image);
    assert_eq!(code, Some(1), "{report:#}");
    report
}

fn provider_health(env: &CliEnv, kubelet: &Kubelet, image: &str) -> (Option<i32>, Value) {
    check_health(
        env,
        &[
            "--kubelet-provider-config",
            &kubelet.config_path.display().to_string(),
            "--kubelet-provider-bin-dir",
            &kubelet.bin_dir.display().to_string(),
            "--image",
            image,
        ],
    )
}

// Multi-threaded: the test OIDC issuer (a task of this runtime) must keep
// answering while the test waits for the plugin process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_provider_uses_a_service_account_token() {
    if !skopeo_available() {
        return;
    }
    let subject = format!("system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}");
    let issuer = Issuer::start_for(&subject, SA_AUDIENCE).await;
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let image = push_app(&server).await;
    let host = server.host();
    let created = api
        .expect(
            Method::POST,
            "/api/v1/workload-identities",
            Some(json!({"name": "apps-puller", "issuer": issuer.url, "subject": subject, "audience": SA_AUDIENCE})),
            201,
        )
        .await;
    let client_id = str_field(&created, "clientId");
    api.assign("apps-puller", "AcrPull", None).await;

    // A projected service-account token as kubelet writes it to a file:
    // Kubernetes' claims (iss, sub, aud, and the kubernetes.io block).
    let mut claims = issuer.claims();
    claims["kubernetes.io"] = json!({"namespace": SA_NAMESPACE, "serviceaccount": {"name": SA_NAME, "uid": "2d3a4b5c-0000-4000-8000-000000000001"}});
    let sa_token = issuer.sign("RS256", "rsa1", &claims);
    let dir = tempfile::tempdir().expect("dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &sa_token).expect("write token");
    let kubelet = Kubelet::new(
        dir.path(),
        &provider_config(
            &host,
            &[
                ("BERTH_LOGIN_SERVER", &host),
                ("BERTH_CLIENT_ID", &client_id),
                (
                    "BERTH_SERVICE_ACCOUNT_TOKEN_FILE",
                    &token_file.display().to_string(),
                ),
            ],
            "",
        ),
    );
    let run = kubelet.provide(&format!("{host}/team/app"), None);
    let (user, password) = check_answer(&run.response(), &host);
    assert_pulls(dir.path(), &image, &user, &password);

    // kubelet 1.33+ passes the pod's token itself (tokenAttributes); the
    // client id comes from the service account's annotation.
    let token_dir = dir.path().join("token-attributes");
    let kubelet = Kubelet::new(
        &token_dir,
        &provider_config(
            &host,
            &[("BERTH_LOGIN_SERVER", &host)],
            &format!("    tokenAttributes:\n      serviceAccountTokenAudience: {SA_AUDIENCE}\n      requireServiceAccount: true\n      cacheType: ServiceAccount\n      optionalServiceAccountAnnotationKeys:\n        - berth.io/client-id\n"),
        ),
    );
    let es_token = issuer.sign("ES256", "ec1", &claims);
    let annotations = json!({"berth.io/client-id": client_id});
    let run = kubelet.provide(&image, Some((&es_token, annotations.clone())));
    let (user, password) = check_answer(&run.response(), &host);
    assert_pulls(dir.path(), &image, &user, &password);

    // Another service account's token is refused: exit 1, nothing on stdout.
    let mut other = issuer.claims();
    other["sub"] = json!(format!("system:serviceaccount:{SA_NAMESPACE}:intruder"));
    let run = kubelet.provide(
        &image,
        Some((&issuer.sign("RS256", "rsa1", &other), annotations)),
    );
    assert_eq!(run.output.status.code(), Some(1));
    assert!(run.output.stdout.is_empty());
    assert!(run.stderr().contains("invalid_grant"), "{}", run.stderr());
    // Without any token: a clear error.
    let run = kubelet.provide(&image, None);
    assert_eq!(run.output.status.code(), Some(1));
    assert!(run.output.stdout.is_empty());
    assert!(
        run.stderr().contains("client id") || run.stderr().contains("token"),
        "{}",
        run.stderr()
    );
}
