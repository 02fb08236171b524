//! The login flows over real HTTP: the challenge, the Docker token flow
//! (GET with Basic, POST with a refresh token), directory token →
//! exchange → refresh token with the null-UUID username, the 401/403 split,
//! repository-scoped tokens, revocation, anonymous pull, network rules and
//! tampered tokens.

mod common;

use base64::Engine as _;
use common::login::*;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn challenge_token_flow_and_scope_split() {
    let server = TestServer::start().await;
    let r = plain()
        .get(format!("{}/v2/", server.base_url()))
        .send()
        .await
        .expect("ping");
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("challenge")
        .to_string();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"{}/oauth2/token\",service=\"{}\"",
            server.base_url(),
            server.host()
        )
    );

    // Wrong password and unknown user read the same.
    let bad = json_of(token_get(&server, OWNER_USER, "nope", &[], false).await).await;
    let unknown = json_of(token_get(&server, "nobody-here", "nope", &[], false).await).await;
    // Each refusal carries its own correlation id; apart from it they match.
    let without_id = |v: &Value| {
        let id = v["correlation_id"].as_str().expect("correlation_id");
        v.to_string().replace(id, "")
    };
    assert_eq!(
        without_id(&bad),
        without_id(&unknown),
        "no user enumeration"
    );

    // Push scope → push works.
    let r = token_get(
        &server,
        OWNER_USER,
        OWNER_PASSWORD,
        &["repository:flows/a:pull,push"],
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["expires_in"].as_u64().unwrap_or(0) >= 60);
    assert!(body["issued_at"].is_string());
    let push_token = body["token"].as_str().expect("token").to_string();
    assert_eq!(
        bearer_post_blob(&server, &push_token, "flows/a")
            .await
            .status(),
        201
    );

    // Pull-only token on a push: 401 insufficient_scope, then 403 with the same token.
    let r = token_get(
        &server,
        OWNER_USER,
        OWNER_PASSWORD,
        &["repository:flows/a:pull"],
        false,
    )
    .await;
    let pull_token = json_of(r).await["token"]
        .as_str()
        .expect("token")
        .to_string();
    let first = bearer_post_blob(&server, &pull_token, "flows/a").await;
    assert_eq!(first.status(), 401);
    let c = first.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"repository:flows/a:pull,push\""), "{c}");
    let again = bearer_post_blob(&server, &pull_token, "flows/a").await;
    assert_eq!(again.status(), 403);
    assert!(again.headers().contains_key("www-authenticate"));

    // A refused push leaves no repository behind.
    let r = token_get(
        &server,
        OWNER_USER,
        OWNER_PASSWORD,
        &["repository:flows/ghost:pull"],
        false,
    )
    .await;
    let t = json_of(r).await["token"]
        .as_str()
        .expect("token")
        .to_string();
    let _ = bearer_post_blob(&server, &t, "flows/ghost").await;
    let catalog = json_of(
        server
            .client()
            .get(format!("{}/v2/_catalog", server.base_url()))
            .send()
            .await
            .expect("catalog"),
    )
    .await;
    assert!(
        !catalog["repositories"].to_string().contains("flows/ghost"),
        "{catalog}"
    );

    // A tampered token is refused as invalid_token.
    let mut parts: Vec<String> = push_token.split('.').map(str::to_string).collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&parts[1])
        .expect("payload");
    let tampered = String::from_utf8(payload)
        .expect("utf8")
        .replace("flows/a", "flows/b");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tampered);
    let r = bearer_post_blob(&server, &parts.join("."), "flows/b").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .contains("invalid_token"));
}

#[tokio::test]
async fn refresh_tokens_and_directory_exchange() {
    let server = TestServer::start().await;
    // Docker's flow: offline_token=true returns a refresh token.
    let r = token_get(&server, OWNER_USER, OWNER_PASSWORD, &[], true).await;
    let refresh = json_of(r).await["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    // POST grant_type=refresh_token.
    let r = plain()
        .post(format!("{}/oauth2/token", server.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", &server.host()),
            ("scope", "repository:flows/r:pull,push"),
            ("refresh_token", &refresh),
        ])
        .send()
        .await
        .expect("post token");
    assert_eq!(r.status(), 200);
    let access = json_of(r).await["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    assert_eq!(
        bearer_post_blob(&server, &access, "flows/r").await.status(),
        201
    );
    // Null-UUID username with the refresh token as password.
    let r = token_get(
        &server,
        NULL_USER,
        &refresh,
        &["repository:flows/r:pull"],
        false,
    )
    .await;
    assert_eq!(r.status(), 200);

    // Directory token → exchange → refresh token.
    let directory = owner_api(&server).await;
    let r = plain()
        .post(format!("{}/oauth2/exchange", server.base_url()))
        .form(&[
            ("grant_type", "access_token"),
            ("service", &server.host()),
            ("access_token", &directory),
        ])
        .send()
        .await
        .expect("exchange");
    assert_eq!(r.status(), 200);
    let exchanged = json_of(r).await["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let r = token_get(
        &server,
        NULL_USER,
        &exchanged,
        &["repository:flows/r:pull"],
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    // An access token is not a refresh token.
    let r = token_get(&server, NULL_USER, &access, &[], false).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn repository_token_scope_and_revocation() {
    let server = TestServer::start().await;
    let api = owner_api(&server).await;
    let r = plain()
        .post(format!("{}/api/v1/tokens", server.base_url()))
        .bearer_auth(&api)
        .json(&json!({"name": "ci-pusher", "repositories": [
            {"repository": "team/*", "actions": ["content/read", "content/write"]}
        ]}))
        .send()
        .await
        .expect("create token");
    assert_eq!(r.status(), 201);
    let body = json_of(r).await;
    let password = body["newPasswords"][0]["value"]
        .as_str()
        .expect("password1")
        .to_string();

    let r = token_get(
        &server,
        "ci-pusher",
        &password,
        &[
            "repository:team/app:pull,push",
            "repository:other/app:pull,push",
        ],
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    let scope = body["scope"].as_str().unwrap_or_default();
    assert!(scope.contains("team/app"), "{scope}");
    assert!(!scope.contains("other/app"), "{scope}");
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(
        bearer_post_blob(&server, &token, "team/app").await.status(),
        201
    );
    assert_eq!(
        bearer_post_blob(&server, &token, "other/app")
            .await
            .status(),
        403
    );

    // Disable the token: new tokens stop at once.
    let r = plain()
        .patch(format!("{}/api/v1/tokens/ci-pusher", server.base_url()))
        .bearer_auth(&api)
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .expect("disable");
    assert_eq!(r.status(), 200);
    let r = token_get(
        &server,
        "ci-pusher",
        &password,
        &["repository:team/app:pull"],
        false,
    )
    .await;
    assert_eq!(r.status(), 401);
    // The live access token stops too (this process dropped its caches).
    assert_eq!(
        bearer_post_blob(&server, &token, "team/app").await.status(),
        401
    );
}

#[tokio::test]
async fn anonymous_pull_and_network_rules() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let data = random_bytes(100);
    reg.push_blob("open/app", &data).await;
    let digest = sha256(&data);
    let url = format!("{}/v2/open/app/blobs/{digest}", server.base_url());
    assert_eq!(plain().get(&url).send().await.expect("get").status(), 401);

    let api = owner_api(&server).await;
    let patch = |body: Value| {
        let api = api.clone();
        let url = format!("{}/api/v1/registry", server.base_url());
        async move {
            plain()
                .patch(url)
                .bearer_auth(api)
                .json(&body)
                .send()
                .await
                .expect("patch")
        }
    };
    assert_eq!(
        patch(json!({"anonymousPullEnabled": true})).await.status(),
        200
    );
    let r = plain().get(&url).send().await.expect("anonymous get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").as_ref(), data.as_slice());
    // Anonymous push and catalog stay refused; /v2/ still challenges.
    let r = plain()
        .post(format!("{}/v2/open/app/blobs/uploads/", server.base_url()))
        .send()
        .await
        .expect("anonymous push");
    assert_eq!(r.status(), 401);
    let r = plain()
        .get(format!("{}/v2/_catalog", server.base_url()))
        .send()
        .await
        .expect("catalog");
    assert_eq!(r.status(), 401);
    assert_eq!(
        plain()
            .get(format!("{}/v2/", server.base_url()))
            .send()
            .await
            .expect("ping")
            .status(),
        401
    );
    // Wrong (stale) credentials on a pull get exactly anonymous access
    // (issue 13: ACR would refuse; the failure is still audited); anything
    // beyond a pull with them is still refused.
    let r = plain()
        .get(&url)
        .basic_auth(OWNER_USER, Some("stale"))
        .send()
        .await
        .expect("stale");
    assert_eq!(r.status(), 200);
    let r = plain()
        .post(format!("{}/v2/open/app/blobs/uploads/", server.base_url()))
        .basic_auth(OWNER_USER, Some("stale"))
        .send()
        .await
        .expect("stale push");
    assert_eq!(r.status(), 401);

    // Network rules: deny everyone but 10.0.0.0/8 → 403 naming our IP.
    let r = plain()
        .post(format!("{}/api/v1/network-rules", server.base_url()))
        .bearer_auth(&api)
        .json(&json!({"ipAddress": "10.0.0.0/8"}))
        .send()
        .await
        .expect("add rule");
    assert_eq!(r.status(), 201);
    assert_eq!(patch(json!({"defaultAction": "Deny"})).await.status(), 200);
    let r = server
        .client()
        .get(format!("{}/v2/", server.base_url()))
        .send()
        .await
        .expect("denied");
    assert_eq!(r.status(), 403);
    let body = json_of(r).await;
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1"),
        "{body}"
    );
    // The management API is not behind network rules: the Owner can undo it.
    assert_eq!(patch(json!({"defaultAction": "Allow"})).await.status(), 200);
    let r = server
        .client()
        .get(format!("{}/v2/", server.base_url()))
        .send()
        .await
        .expect("allowed");
    assert_eq!(r.status(), 200);
}
