//! Workload identities over real HTTP: the test runs its own OIDC issuer
//! on loopback (discovery document + JWKS with an RSA and a P-256 key),
//! registers a workload identity trusting it, logs in with
//! `POST /directory/token` (`client_credentials` + `client_assertion`),
//! exchanges the directory token for a refresh token and pushes and pulls
//! with the access tokens. Wrong subject, audience, issuer, expired
//! assertions, `alg: none`, HS256 keyed with the public key and unknown
//! keys are refused, each with its own reason in the audit log.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::login::*;
use common::*;
use reqwest::Method;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SUBJECT: &str = "repo:team/app:ref:refs/heads/main";
const AUDIENCE: &str = "berth-test";

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// A tiny OIDC issuer: serves its discovery document and JWKS, signs tokens.
struct Issuer {
    url: String,
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Issuer {
    async fn start() -> Arc<Issuer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let rng = SystemRandom::new();
        // A fixed 2048-bit test key (PKCS#1 DER); ring cannot generate RSA keys.
        let rsa = RsaKeyPair::from_der(include_bytes!("fixtures/oidc-test-rsa.der"))
            .expect("rsa test key");
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("ec key");
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("ec key");
        let issuer = Arc::new(Issuer { url, rsa, ec, rng });
        let serving = issuer.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let me = serving.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body) = match path.as_str() {
                        "/.well-known/openid-configuration" => (
                            "200 OK",
                            json!({"issuer": me.url, "jwks_uri": format!("{}/jwks", me.url)}),
                        ),
                        "/jwks" => ("200 OK", me.jwks()),
                        _ => ("404 Not Found", json!({})),
                    };
                    let body = body.to_string();
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        issuer
    }

    fn jwks(&self) -> Value {
        let rsa = PublicKeyComponents::<Vec<u8>>::from(self.rsa.public());
        let p = self.ec.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": b64(&rsa.n), "e": b64(&rsa.e)},
            {"kty": "EC", "kid": "ec1", "use": "sig", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])},
        ]})
    }

    fn claims(&self) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        json!({"iss": self.url, "sub": SUBJECT, "aud": AUDIENCE, "iat": now, "nbf": now,
               "exp": now + 300, "jti": random_suffix()})
    }

    /// Sign `claims` with the key for `alg` (RS256 or ES256) under `kid`.
    fn sign(&self, alg: &str, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = if alg == "RS256" {
            let mut sig = vec![0u8; self.rsa.public().modulus_len()];
            self.rsa
                .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
                .expect("rsa sign");
            sig
        } else {
            self.ec
                .sign(&self.rng, input.as_bytes())
                .expect("ec sign")
                .as_ref()
                .to_vec()
        };
        format!("{input}.{}", b64(&sig))
    }
}

async fn workload_login(
    server: &TestServer,
    client_id: &str,
    assertion: &str,
) -> reqwest::Response {
    directory_token(
        server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn workload_identity_logs_in_with_a_trusted_oidc_token() {
    let issuer = Issuer::start().await;
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let created = api
        .expect(
            Method::POST,
            "/api/v1/workload-identities",
            Some(json!({"name": "ci-workload", "issuer": issuer.url, "subject": SUBJECT, "audience": AUDIENCE})),
            201,
        )
        .await;
    let client_id = str_field(&created, "clientId");
    assert_eq!(created["enabled"], json!(true));
    // Plain http is refused for issuers that are not on loopback.
    api.expect(
        Method::POST,
        "/api/v1/workload-identities",
        Some(json!({"name": "bad", "issuer": "http://issuer.example.com", "subject": "s", "audience": "a"})),
        400,
    )
    .await;
    api.assign("ci-workload", "AcrPush", None).await;
    // Readers may look but not create; Contributors may create.
    for (role, want) in [("Reader", 403), ("Contributor", 201)] {
        let user = format!("wl-{}", role.to_ascii_lowercase());
        let pw = api.user(&user).await;
        api.assign(&user, role, None).await;
        let token = user_directory_token(&server, &user, &pw).await;
        let r = plain()
            .post(format!("{}/api/v1/workload-identities", server.base_url()))
            .bearer_auth(&token)
            .json(&json!({"name": format!("by-{user}"), "issuer": issuer.url, "subject": "s", "audience": "a"}))
            .send()
            .await
            .expect("create as {role}");
        assert_eq!(r.status(), want, "{role}");
    }

    // RS256 and ES256 assertions both log in.
    let r = workload_login(
        &server,
        &client_id,
        &issuer.sign("RS256", "rsa1", &issuer.claims()),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", server.log_tail(2000));
    let directory = str_field(&json_of(r).await, "access_token");
    let r = workload_login(
        &server,
        &client_id,
        &issuer.sign("ES256", "ec1", &issuer.claims()),
    )
    .await;
    assert_eq!(r.status(), 200);

    // Directory token → refresh token → access token → push and pull.
    let r = exchange(&server, &directory).await;
    assert_eq!(r.status(), 200);
    let refresh = str_field(&json_of(r).await, "refresh_token");
    let r = token_refresh(&server, &refresh, &["repository:wl/app:pull,push"]).await;
    let access = str_field(&json_of(r).await, "access_token");
    assert_eq!(
        bearer_post_blob(&server, &access, "wl/app").await.status(),
        201
    );
    let r = plain()
        .get(format!("{}/v2/wl/app/tags/list", server.base_url()))
        .bearer_auth(&access)
        .send()
        .await
        .expect("tags");
    assert_eq!(r.status(), 200);
    // The null-UUID username with the refresh token works too.
    assert_eq!(
        token_get(
            &server,
            NULL_USER,
            &refresh,
            &["repository:wl/app:pull"],
            false
        )
        .await
        .status(),
        200
    );

    // Refusals, each with its precise reason in the audit log.
    let with = |k: &str, v: Value| {
        let mut c = issuer.claims();
        c[k] = v;
        c
    };
    let public_jwk = issuer.jwks()["keys"][0].to_string();
    let hs_input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "kid": "rsa1", "typ": "JWT"})
            .to_string()
            .as_bytes()),
        b64(issuer.claims().to_string().as_bytes())
    );
    let hs_sig = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_jwk.as_bytes()),
        hs_input.as_bytes(),
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "workload_subject_mismatch",
            issuer.sign("RS256", "rsa1", &with("sub", json!("repo:other"))),
        ),
        (
            "workload_audience_mismatch",
            issuer.sign("RS256", "rsa1", &with("aud", json!("someone-else"))),
        ),
        (
            "workload_issuer_untrusted",
            issuer.sign(
                "RS256",
                "rsa1",
                &with("iss", json!("https://evil.example.com")),
            ),
        ),
        (
            "workload_token_expired",
            issuer.sign("RS256", "rsa1", &with("exp", json!(1_000_000))),
        ),
        (
            "workload_key_unknown",
            issuer.sign("RS256", "rsa9", &issuer.claims()),
        ),
        (
            "workload_algorithm_refused",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                b64(issuer.claims().to_string().as_bytes())
            ),
        ),
        (
            "workload_algorithm_refused",
            format!("{hs_input}.{}", b64(hs_sig.as_ref())),
        ),
        (
            "workload_algorithm_refused",
            issuer.sign("ES256", "rsa1", &issuer.claims()),
        ),
    ];
    let count = |reason: &str| server.log_tail(1_000_000).matches(reason).count();
    for (reason, assertion) in &cases {
        let before = count(reason);
        let r = workload_login(&server, &client_id, assertion).await;
        assert_eq!(r.status(), 401, "{reason}");
        let body = json_of(r).await;
        assert_eq!(body["error"], json!("invalid_grant"), "{reason}: {body}");
        assert!(count(reason) > before, "{reason} not in the audit log");
    }
    // An unknown client id reads like any refusal.
    let r = workload_login(
        &server,
        &uuid_like(),
        &issuer.sign("RS256", "rsa1", &issuer.claims()),
    )
    .await;
    assert_eq!(r.status(), 401);
    // A wrong assertion type is a malformed request.
    let r = directory_token(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_assertion_type", "urn:something-else"),
            ("client_assertion", "x"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);

    // Management: list, show, disable (login stops), delete.
    let list = api
        .expect(Method::GET, "/api/v1/workload-identities", None, 200)
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    let path = format!("/api/v1/workload-identities/{client_id}");
    api.expect(Method::GET, &path, None, 200).await;
    let v = api
        .expect(Method::PATCH, &path, Some(json!({"enabled": false})), 200)
        .await;
    assert_eq!(v["enabled"], json!(false));
    let r = workload_login(
        &server,
        &client_id,
        &issuer.sign("RS256", "rsa1", &issuer.claims()),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        token_refresh(&server, &refresh, &["repository:wl/app:pull"])
            .await
            .status(),
        401,
        "tokens of a disabled workload identity stop"
    );
    api.expect(Method::DELETE, &path, None, 204).await;
    api.expect(Method::GET, &path, None, 404).await;
    let openapi = api
        .expect(Method::GET, "/api/v1/openapi.json", None, 200)
        .await;
    assert!(openapi["paths"]["/api/v1/workload-identities"].is_object());
}

fn uuid_like() -> String {
    "6f1c2a9e-0000-4000-8000-000000000001".into()
}
