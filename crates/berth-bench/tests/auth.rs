//! The auth paths against a real CNCF distribution registry: htpasswd (Basic)
//! and the Docker token flow with a small token service run by the test
//! (ES256 JWTs with an `x5c` chain, as distribution's token auth expects).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use berth_bench::auth::{base64_encode, Credentials};
use berth_bench::client::{ClientConfig, Registry};
use berth_bench::conn::Session;
use berth_bench::{run_to_report, BenchArgs, Report, Scenario, Status};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
/// bcrypt (cost 5) of PASSWORD, for distribution's htpasswd auth.
const HTPASSWD: &str = "bench:$2a$05$jhAh9mOswAmtEw7SBUwkiOo.IukvQQYPwDmo0xo.rKUYSGRpNpnP2\n";
const SERVICE: &str = "bench-registry";
const ISSUER: &str = "bench-issuer";
const REFRESH: &str = "refresh-token-for-bench";

fn tiny(url: &str, pid: u32) -> BenchArgs {
    BenchArgs {
        username: Some(USER.into()),
        password: Some(PASSWORD.into()),
        blob_size: 2 * 1024 * 1024 + 5,
        chunk_size: 1024 * 1024,
        parallel_blobs: 2,
        parallel_size: 256 * 1024,
        layers: 3,
        layer_min_size: 1024,
        layer_max_size: 64 * 1024,
        images: 2,
        layer_concurrency: 2,
        duration: Duration::from_millis(200),
        requests: Some(30),
        connections: vec![1, 4],
        tags: 120,
        page_size: 50,
        tag_concurrency: 8,
        server_pid: vec![pid],
        ..BenchArgs::defaults(url).expect("defaults")
    }
}

fn assert_clean(report: &Report) {
    assert_eq!(report.total_errors(), 0, "{}", report.to_table());
    for s in &report.scenarios {
        for m in &s.measurements {
            assert!(
                m.requests > 0 && m.requests_per_s > 0.0,
                "{} / {}",
                s.scenario,
                m.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_registry() {
    let Some(bin) = common::binary() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, HTPASSWD).expect("htpasswd");
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: bench\n    path: {}\n",
        htpasswd.display()
    );
    let registry = common::Distribution::start(&bin, &auth).await;
    let report = run_to_report(tiny(&registry.url, registry.pid))
        .await
        .expect("bench runs");
    println!("{}", report.to_table());
    assert_clean(&report);
    assert_eq!(report.auth, "basic");
    let token = report.scenario("token-issuance").expect("token-issuance");
    assert_eq!(token.status, Status::Skipped);
    let get_auth = report
        .scenario("manifest-get-auth")
        .expect("manifest-get-auth");
    assert_eq!(get_auth.status, Status::Ok);
    assert!(get_auth
        .message
        .as_deref()
        .unwrap_or_default()
        .contains("anonymous"));

    // Wrong password: the run reports failures instead of hiding them.
    let mut bad = tiny(&registry.url, registry.pid);
    bad.password = Some("wrong".into());
    bad.scenarios = vec![Scenario::ManifestGet];
    let report = run_to_report(bad).await.expect("bench runs");
    assert!(report.total_errors() > 0, "{}", report.to_table());
}

/// State of the test's token service.
struct TokenService {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    rng: SystemRandom,
    issued: AtomicU64,
    refreshed: AtomicU64,
}

fn b64url(bytes: &[u8]) -> String {
    base64_encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenService {
    fn jwt(&self, subject: &str, scopes: &[String]) -> String {
        let access: Vec<_> = scopes
            .iter()
            .filter_map(|s| {
                let (rest, actions) = s.rsplit_once(':')?;
                let (kind, name) = rest.split_once(':')?;
                Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [base64_encode(&self.cert_der)]});
        let jti = self.issued.fetch_add(1, Ordering::Relaxed);
        let claims = json!({
            "iss": ISSUER, "sub": subject, "aud": SERVICE,
            "exp": now() + 300, "nbf": now() - 10, "iat": now(),
            "jti": jti.to_string(), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("sign");
        format!("{signing_input}.{}", b64url(sig.as_ref()))
    }

    fn answer(&self, subject: &str, scopes: &[String], offline: bool) -> Response {
        let token = self.jwt(subject, scopes);
        let mut body = json!({"token": token, "access_token": token, "expires_in": 300});
        if offline {
            body["refresh_token"] = json!(REFRESH);
        }
        Json(body).into_response()
    }
}

fn pairs(raw: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{raw}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

async fn token_get(
    State(svc): State<Arc<TokenService>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = pairs(&q.unwrap_or_default());
    let expected = format!(
        "Basic {}",
        base64_encode(format!("{USER}:{PASSWORD}").as_bytes())
    );
    let subject = match headers.get("authorization").and_then(|h| h.to_str().ok()) {
        Some(h) if h == expected => USER,
        Some(_) => return StatusCode::UNAUTHORIZED.into_response(),
        None => "",
    };
    let scopes: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    // Anonymous callers get a token without access (pull is not anonymous here).
    let scopes = if subject.is_empty() {
        Vec::new()
    } else {
        scopes
    };
    let offline = q.iter().any(|(k, v)| k == "offline_token" && v == "true");
    svc.answer(subject, &scopes, offline && !subject.is_empty())
}

async fn token_post(State(svc): State<Arc<TokenService>>, body: String) -> Response {
    let form = pairs(&body);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("refresh_token") || get("refresh_token") != Some(REFRESH) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    svc.refreshed.fetch_add(1, Ordering::Relaxed);
    let scopes: Vec<String> = get("scope")
        .map(|s| s.split(' ').map(str::to_owned).collect())
        .unwrap_or_default();
    svc.answer(USER, &scopes, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_registry() {
    let Some(bin) = common::binary() else { return };
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key");
    assert!(!key.public_key().as_ref().is_empty());
    let rc_key = rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen key");
    let cert = rcgen::CertificateParams::new(vec!["bench-token-issuer".to_owned()])
        .expect("params")
        .self_signed(&rc_key)
        .expect("cert");
    let svc = Arc::new(TokenService {
        key,
        cert_der: cert.der().to_vec(),
        rng,
        issued: AtomicU64::new(0),
        refreshed: AtomicU64::new(0),
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let token_port = listener.local_addr().expect("addr").port();
    let app = Router::new()
        .route("/oauth2/token", get(token_get).post(token_post))
        .with_state(svc.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("token.pem");
    std::fs::write(&bundle, cert.pem()).expect("bundle");
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/oauth2/token\n    \
         service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        bundle.display()
    );
    let registry = common::Distribution::start(&bin, &auth).await;
    let report = run_to_report(tiny(&registry.url, registry.pid))
        .await
        .expect("bench runs");
    println!("{}", report.to_table());
    assert_clean(&report);
    assert!(report.auth.starts_with("bearer"), "{}", report.auth);

    let token = report.scenario("token-issuance").expect("token-issuance");
    assert_eq!(token.status, Status::Ok, "{:?}", token.message);
    let names: Vec<&str> = token.measurements.iter().map(|m| m.name.as_str()).collect();
    assert!(names.contains(&"GET basic-credentials"), "{names:?}");
    assert!(names.contains(&"POST refresh_token"), "{names:?}");
    assert!(svc.refreshed.load(Ordering::Relaxed) >= 30);

    let get_auth = report
        .scenario("manifest-get-auth")
        .expect("manifest-get-auth");
    assert_eq!(get_auth.status, Status::Ok);
    assert!(get_auth
        .measurements
        .iter()
        .any(|m| m.name == "bearer by-digest"));
    // distribution's token auth has no anonymous pull: the baseline is explained, not failed.
    assert!(get_auth
        .message
        .as_deref()
        .unwrap_or_default()
        .contains("anonymous"));

    // Without the up-front probe the client learns the challenge from a 401
    // and retries with a token (the reactive path).
    let fresh = Registry::new(
        &registry.url,
        Some(Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
        }),
        ClientConfig { insecure: false },
    )
    .expect("client");
    let absent = format!("sha256:{}", "0".repeat(64));
    assert!(!fresh
        .blob_exists("berth-bench/blobs", &absent)
        .await
        .expect("HEAD after 401"));
    let mut session = Session::new(fresh.with_own_connection().expect("conn"));
    let url = fresh
        .url("v2/berth-bench/manifest/manifests/latest")
        .expect("url");
    let resp = session
        .send(
            "repository:berth-bench/manifest:pull",
            reqwest::Method::GET,
            &url,
            &[(
                reqwest::header::ACCEPT,
                reqwest::header::HeaderValue::from_static(berth_bench::client::MANIFEST_ACCEPT),
            )],
            bytes::Bytes::new(),
        )
        .await
        .expect("GET");
    assert_eq!(resp.status, reqwest::StatusCode::OK);
    server.abort();
}
