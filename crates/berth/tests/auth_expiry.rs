//! Expiry, revocation and lifetime changes over real HTTP, with the server's
//! clock moved through the test-only `BERTH_TEST_CLOCK_FILE` hook instead
//! of sleeping: access/refresh/directory token lifetimes (+60 s leeway),
//! service-principal secret and repository-token password expiry,
//! disable/regenerate/unassign stopping live tokens within 60 s, token
//! lifetimes changed at runtime, and forged bearer tokens (alg none, HS256
//! keyed with the public key, unknown kid, wrong audience and issuer, not
//! yet valid).

mod common;

use base64::Engine as _;
use common::clock::Clock;
use common::login::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// Access-token lifetime by default (75 minutes).
const ACCESS_TTL: u64 = 4500;
/// Refresh and directory token lifetime by default (3 hours).
const THREE_HOURS: u64 = 10_800;
/// Clock leeway on exp/nbf.
const LEEWAY: u64 = 60;
const DAY: u64 = 86_400;

fn s(v: u64) -> i64 {
    v as i64
}

async fn access_token(server: &TestServer, user: &str, pw: &str, scope: &str) -> String {
    let r = token_get(server, user, pw, &[scope], false).await;
    assert_eq!(r.status(), 200, "token for {user}");
    str_field(&json_of(r).await, "access_token")
}

async fn pull_status(server: &TestServer, token: &str, repo: &str) -> (u16, String) {
    let r = plain()
        .get(format!("{}/v2/{repo}/tags/list", server.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("tags");
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (r.status().as_u16(), challenge)
}

#[tokio::test]
async fn access_refresh_and_directory_tokens_expire_with_leeway() {
    let clock = Clock::new();
    let server = clock.server().await;
    server
        .registry()
        .push_image("exp/app", "v1", &Image::random(1, 64))
        .await;
    let scope = "repository:exp/app:pull";
    let access = access_token(&server, OWNER_USER, OWNER_PASSWORD, scope).await;
    let r = token_get(&server, OWNER_USER, OWNER_PASSWORD, &[], true).await;
    let body = json_of(r).await;
    assert_eq!(body["expires_in"], json!(ACCESS_TTL), "{body}");
    let refresh = str_field(&body, "refresh_token");
    let directory = owner_api(&server).await;

    // Access token: valid up to exp + leeway, refused after.
    clock.at(s(ACCESS_TTL + LEEWAY) - 2);
    assert_eq!(pull_status(&server, &access, "exp/app").await.0, 200);
    clock.at(s(ACCESS_TTL + LEEWAY) + 1);
    let (status, challenge) = pull_status(&server, &access, "exp/app").await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // Refresh and directory tokens last 3 hours.
    clock.at(s(THREE_HOURS) - 10);
    assert_eq!(
        token_refresh(&server, &refresh, &[scope]).await.status(),
        200
    );
    assert_eq!(exchange(&server, &directory).await.status(), 200);
    clock.at(s(THREE_HOURS + LEEWAY) + 1);
    assert_eq!(
        token_refresh(&server, &refresh, &[scope]).await.status(),
        401
    );
    assert_eq!(
        token_get(&server, NULL_USER, &refresh, &[scope], false)
            .await
            .status(),
        401
    );
    assert_eq!(exchange(&server, &directory).await.status(), 401);
    // A fresh login still works at the new time.
    access_token(&server, OWNER_USER, OWNER_PASSWORD, scope).await;
}

#[tokio::test]
async fn secrets_and_token_passwords_expire() {
    let clock = Clock::new();
    let server = clock.server().await;
    let api = Api::owner(&server).await;
    let (app_id, secret) = api.service_principal("expiring-sp", Some(1)).await;
    api.assign(&app_id, "AcrPull", None).await;
    let password = api
        .repo_token(json!({"name": "expiring-token", "scopeMap": "_repositories_pull", "expirationInDays": 1}))
        .await;
    let sp_login = |when: &'static str| {
        let (server, app_id, secret) = (&server, app_id.clone(), secret.clone());
        async move {
            let basic = token_get(server, &app_id, &secret, &[], false)
                .await
                .status();
            let directory = directory_token(
                server,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &app_id),
                    ("client_secret", &secret),
                ],
            )
            .await
            .status();
            (when, basic.as_u16(), directory.as_u16())
        }
    };
    assert_eq!(sp_login("before").await, ("before", 200, 200));
    assert_eq!(
        token_get(&server, "expiring-token", &password, &[], false)
            .await
            .status(),
        200
    );
    clock.at(s(DAY) + 1);
    assert_eq!(sp_login("after").await, ("after", 401, 401));
    assert_eq!(
        token_get(&server, "expiring-token", &password, &[], false)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn disable_regenerate_and_unassign_stop_live_tokens_within_60s() {
    let clock = Clock::new();
    let server = clock.server().await;
    server
        .registry()
        .push_image("rev/app", "v1", &Image::random(1, 64))
        .await;
    let api = Api::owner(&server).await;
    let scope = "repository:rev/app:pull";
    for who in ["rev-disabled", "rev-regen", "rev-unassigned"] {
        let pw = api.user(who).await;
        let id = api.assign(who, "AcrPull", None).await;
        let token = access_token(&server, who, &pw, scope).await;
        assert_eq!(pull_status(&server, &token, "rev/app").await.0, 200);
        let refresh = str_field(
            &json_of(token_get(&server, who, &pw, &[], true).await).await,
            "refresh_token",
        );
        match who {
            "rev-disabled" => {
                api.expect(
                    Method::PATCH,
                    &format!("/api/v1/users/{who}"),
                    Some(json!({"enabled": false})),
                    200,
                )
                .await;
            }
            "rev-regen" => {
                api.expect(
                    Method::PATCH,
                    &format!("/api/v1/users/{who}"),
                    Some(json!({"password": "a-brand-new-password-1"})),
                    200,
                )
                .await;
            }
            _ => {
                api.expect(
                    Method::DELETE,
                    &format!("/api/v1/role-assignments/{id}"),
                    None,
                    204,
                )
                .await;
            }
        }
        // Past the live-cache interval (30 s) and within the promised 60 s.
        clock.at(31);
        let (status, _) = pull_status(&server, &token, "rev/app").await;
        assert!(
            status == 401 || status == 403,
            "{who}: old access token still works ({status})"
        );
        let r = token_refresh(&server, &refresh, &[scope]).await;
        if who == "rev-unassigned" {
            // The identity is fine; it just may not pull any more.
            let body = json_of(r).await;
            assert_eq!(body["scope"], json!(""), "{who}: {body}");
        } else {
            assert_eq!(r.status(), 401, "{who}: old refresh token still works");
        }
        let old = token_get(&server, who, &pw, &[scope], false).await;
        if who == "rev-unassigned" {
            assert_eq!(json_of(old).await["scope"], json!(""));
        } else {
            assert_eq!(old.status(), 401, "{who}: old password still works");
        }
        clock.at(0);
    }
}

#[tokio::test]
async fn token_lifetimes_change_at_runtime() {
    let clock = Clock::new();
    let server = clock.server().await;
    let api = Api::owner(&server).await;
    let v = api
        .registry_settings(json!({"accessTokenTtlSeconds": 120, "refreshTokenTtlSeconds": 600, "identityTokenTtlSeconds": 300}))
        .await;
    assert_eq!(v["accessTokenTtlSeconds"], json!(120));
    let r = token_get(
        &server,
        OWNER_USER,
        OWNER_PASSWORD,
        &["repository:ttl/app:pull"],
        true,
    )
    .await;
    let body = json_of(r).await;
    assert_eq!(body["expires_in"], json!(120), "{body}");
    let access = str_field(&body, "access_token");
    let refresh = str_field(&body, "refresh_token");
    let r = directory_token(
        &server,
        &[
            ("grant_type", "password"),
            ("username", OWNER_USER),
            ("password", OWNER_PASSWORD),
        ],
    )
    .await;
    assert_eq!(json_of(r).await["expires_in"], json!(300));
    clock.at(120 + s(LEEWAY) + 1);
    assert_eq!(pull_status(&server, &access, "ttl/app").await.0, 401);
    assert_eq!(
        token_refresh(&server, &refresh, &["repository:ttl/app:pull"])
            .await
            .status(),
        200
    );
    clock.at(600 + s(LEEWAY) + 1);
    assert_eq!(
        token_refresh(&server, &refresh, &["repository:ttl/app:pull"])
            .await
            .status(),
        401
    );
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

/// HMAC-SHA256 (RFC 2104), to forge an HS256 token.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let ih = Sha256::new()
        .chain_update(&inner)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&outer)
        .chain_update(ih)
        .finalize()
        .to_vec()
}

#[tokio::test]
async fn forged_and_misdated_bearer_tokens_are_refused() {
    let clock = Clock::new();
    let mut server = clock.server().await;
    server
        .registry()
        .push_image("jwt/app", "v1", &Image::random(1, 64))
        .await;
    let good = access_token(
        &server,
        OWNER_USER,
        OWNER_PASSWORD,
        "repository:jwt/app:pull",
    )
    .await;
    assert_eq!(pull_status(&server, &good, "jwt/app").await.0, 200);
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&unb64(parts[0])).expect("header");
    let payload = parts[1];
    let jwks = json_of(
        plain()
            .get(format!("{}/.well-known/jwks.json", server.base_url()))
            .send()
            .await
            .expect("jwks"),
    )
    .await;

    let mut forged: Vec<(&str, String)> = Vec::new();
    // alg none, no signature.
    let none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    forged.push(("alg none", format!("{none}.{payload}.")));
    // HS256 keyed with the public key (JWK JSON and the raw x||y point).
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let hs_h = b64(&serde_json::to_vec(&hs_header).expect("json"));
    let signing_input = format!("{hs_h}.{payload}");
    let jwk = &jwks["keys"][0];
    let jwk_bytes = serde_json::to_vec(jwk).expect("jwk");
    forged.push((
        "HS256 with the JWK",
        format!(
            "{signing_input}.{}",
            b64(&hmac_sha256(&jwk_bytes, signing_input.as_bytes()))
        ),
    ));
    let mut point = vec![4u8];
    point.extend(unb64(jwk["x"].as_str().expect("x")));
    point.extend(unb64(jwk["y"].as_str().expect("y")));
    forged.push((
        "HS256 with the public point",
        format!(
            "{signing_input}.{}",
            b64(&hmac_sha256(&point, signing_input.as_bytes()))
        ),
    ));
    // Unknown kid, the signature otherwise genuine.
    let mut kid_header = header.clone();
    kid_header["kid"] = json!("not-a-known-key");
    forged.push((
        "unknown kid",
        format!(
            "{}.{payload}.{}",
            b64(&serde_json::to_vec(&kid_header).expect("json")),
            parts[2]
        ),
    ));
    // A genuine token of another kind: the directory token's audience is
    // the directory, not the registry.
    forged.push(("wrong audience (directory token)", owner_api(&server).await));
    // A refresh token is not an access token.
    let refresh = str_field(
        &json_of(token_get(&server, OWNER_USER, OWNER_PASSWORD, &[], true).await).await,
        "refresh_token",
    );
    forged.push(("refresh token as access token", refresh));
    for (what, token) in &forged {
        let (status, challenge) = pull_status(&server, token, "jwt/app").await;
        assert_eq!(status, 401, "{what} accepted");
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
    }

    // Not yet valid: the registry's clock behind the token's nbf by more
    // than the leeway (a fresh token, so no verified-token cache entry).
    let fresh = access_token(
        &server,
        OWNER_USER,
        OWNER_PASSWORD,
        "repository:jwt/app:pull",
    )
    .await;
    clock.at(-s(LEEWAY) - 5);
    assert_eq!(pull_status(&server, &fresh, "jwt/app").await.0, 401);
    clock.at(-s(LEEWAY) + 5);
    assert_eq!(pull_status(&server, &fresh, "jwt/app").await.0, 200);

    // Wrong issuer and audience, genuinely signed: the same data directory
    // (so the same signing keys) served under another login server — the
    // harness picks a new port, and the login server defaults to it.
    clock.at(0);
    let old_host = server.host();
    server.restart().await;
    assert_ne!(server.host(), old_host);
    let (status, challenge) = pull_status(&server, &good, "jwt/app").await;
    assert_eq!(status, 401, "a token for {old_host} accepted");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // Only the restarted server's log (the first run logged wrong_audience
    // for the directory token above).
    let log = server.log_tail(20_000);
    let latest = log.rsplit("---- run-").next().unwrap_or_default();
    assert!(
        latest.contains("wrong_issuer") || latest.contains("wrong_audience"),
        "no issuer/audience reason in the audit log:\n{latest}"
    );
}
