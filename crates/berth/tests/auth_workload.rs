//! Workload identities over real HTTP: the test runs its own OIDC issuer
//! on loopback (discovery document + JWKS with an RSA and a P-256 key),
//! registers a workload identity trusting it, logs in with
//! `POST /directory/token` (`client_credentials` + `client_assertion`),
//! exchanges the directory token for a refresh token and pushes and pulls
//! with the access tokens. Wrong subject, audience, issuer, expired
//! assertions, `alg: none`, HS256 keyed with the public key and unknown
//! keys are refused, each with its own reason in the audit log.

mod common;

use common::login::*;
use common::oidc::{b64, Issuer};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SUBJECT: &str = "repo:team/app:ref:refs/heads/main";
const AUDIENCE: &str = "berth-test";

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
    let issuer = Issuer::start_for(SUBJECT, AUDIENCE).await;
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
