//! The management REST API (`/api/v1`): every resource's happy path,
//! role-based refusals, the error shape, the OpenAPI document, and a
//! repository token created through the API working on `/v2`.

mod common;

use base64::Engine as _;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A small client for the management API with one set of credentials.
struct Api {
    base: String,
    http: reqwest::Client,
    auth: String,
}

impl Api {
    /// Log in through `POST /directory/token` as a directory user.
    async fn login(server: &TestServer, user: &str, password: &str) -> Api {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{}/directory/token", server.base_url()))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .expect("directory token request");
        assert_eq!(r.status(), 200, "directory login of {user}");
        let body: Value = r.json().await.expect("token json");
        let token = body["access_token"]
            .as_str()
            .expect("access_token in directory answer")
            .to_string();
        Api {
            base: server.base_url(),
            http,
            auth: format!("Bearer {token}"),
        }
    }

    /// The bootstrap Owner.
    async fn owner(server: &TestServer) -> Api {
        Api::login(server, OWNER_USER, OWNER_PASSWORD).await
    }

    /// Basic credentials.
    fn basic(server: &TestServer, user: &str, password: &str) -> Api {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Api {
            base: server.base_url(),
            http: reqwest::Client::new(),
            auth: format!("Basic {b}"),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", &self.auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None).await
    }

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let (s, v) = self.send(method.clone(), path, body).await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {v}");
        v
    }
}

fn error_code(v: &Value) -> &str {
    v["errors"][0]["code"].as_str().unwrap_or("")
}

/// Create a user with `role` and return an API client logged in as them.
async fn user_with_role(server: &TestServer, owner: &Api, name: &str, role: &str) -> Api {
    let pw = "a-long-password-1";
    owner
        .expect(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": name, "password": pw})),
            201,
        )
        .await;
    owner
        .expect(
            Method::POST,
            "/api/v1/role-assignments",
            Some(json!({"assignee": name, "role": role})),
            201,
        )
        .await;
    Api::login(server, name, pw).await
}

#[tokio::test]
async fn users_and_groups() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;

    let created = api
        .expect(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "alice"})),
            201,
        )
        .await;
    let generated = created["password"].as_str().expect("generated password");
    assert!(generated.len() >= 16);
    // The generated password works.
    Api::login(&server, "alice", generated).await;

    let list = api.expect(Method::GET, "/api/v1/users", None, 200).await;
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert!(names.contains(&"alice") && names.contains(&OWNER_USER));
    assert!(!list.to_string().contains("argon2"), "no hashes: {list}");

    let shown = api
        .expect(Method::GET, "/api/v1/users/alice", None, 200)
        .await;
    assert!(shown.get("password").is_none());
    let patched = api
        .expect(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(json!({"enabled": false})),
            200,
        )
        .await;
    assert_eq!(patched["enabled"], false);

    // Duplicate → 409; unknown → 404.
    let dup = api
        .expect(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "alice"})),
            409,
        )
        .await;
    assert_eq!(error_code(&dup), "CONFLICT");
    let missing = api
        .expect(Method::GET, "/api/v1/users/nobody", None, 404)
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");

    // Groups and members.
    let g = api
        .expect(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "devs"})),
            201,
        )
        .await;
    assert_eq!(g["name"], "devs");
    let g = api
        .expect(
            Method::POST,
            "/api/v1/groups/devs/members",
            Some(json!({"user": "alice"})),
            200,
        )
        .await;
    assert_eq!(g["members"].as_array().map(Vec::len), Some(1));
    api.expect(Method::GET, "/api/v1/groups", None, 200).await;
    api.expect(
        Method::DELETE,
        "/api/v1/groups/devs/members/alice",
        None,
        204,
    )
    .await;
    api.expect(Method::DELETE, "/api/v1/groups/devs", None, 204)
        .await;
    api.expect(Method::GET, "/api/v1/groups/devs", None, 404)
        .await;

    api.expect(Method::DELETE, "/api/v1/users/alice", None, 204)
        .await;
    api.expect(Method::GET, "/api/v1/users/alice", None, 404)
        .await;
}

#[tokio::test]
async fn service_principals_admin_registry_and_network_rules() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;

    let sp = api
        .expect(
            Method::POST,
            "/api/v1/service-principals",
            Some(json!({"name": "ci", "expirationInDays": 30})),
            201,
        )
        .await;
    let app_id = sp["appId"].as_str().expect("appId").to_string();
    assert!(sp["secret"].as_str().is_some() && sp["secretId"].as_str().is_some());
    assert!(sp["expiresAt"].as_u64().is_some());
    let shown = api
        .expect(
            Method::GET,
            &format!("/api/v1/service-principals/{app_id}"),
            None,
            200,
        )
        .await;
    assert_eq!(shown["secrets"].as_array().map(Vec::len), Some(1));
    assert!(shown.get("secret").is_none());
    let added = api
        .expect(
            Method::POST,
            &format!("/api/v1/service-principals/{app_id}/credentials"),
            Some(json!({})),
            201,
        )
        .await;
    let sid = added["secretId"].as_str().expect("secretId").to_string();
    api.expect(
        Method::DELETE,
        &format!("/api/v1/service-principals/{app_id}/credentials/{sid}"),
        None,
        204,
    )
    .await;
    api.expect(
        Method::POST,
        &format!("/api/v1/service-principals/{app_id}/credentials/reset"),
        Some(json!({"expirationInDays": 10})),
        200,
    )
    .await;
    let shown = api
        .expect(
            Method::GET,
            &format!("/api/v1/service-principals/{app_id}"),
            None,
            200,
        )
        .await;
    assert_eq!(shown["secrets"].as_array().map(Vec::len), Some(1));
    // A role for the service principal, by app id.
    api.expect(
        Method::POST,
        "/api/v1/role-assignments",
        Some(json!({"assignee": app_id, "role": "AcrPull"})),
        201,
    )
    .await;
    api.expect(
        Method::DELETE,
        &format!("/api/v1/service-principals/{app_id}"),
        None,
        204,
    )
    .await;

    // Admin account.
    let admin = api.expect(Method::GET, "/api/v1/admin", None, 200).await;
    assert_eq!(admin["enabled"], false);
    let enabled = api
        .expect(Method::POST, "/api/v1/admin/enable", Some(json!({})), 200)
        .await;
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["newPasswords"].as_array().map(Vec::len), Some(2));
    let renewed = api
        .expect(
            Method::POST,
            "/api/v1/admin/renew",
            Some(json!({"passwordName": "password2"})),
            200,
        )
        .await;
    assert_eq!(renewed["newPasswords"][0]["name"], "password2");
    let bad = api
        .expect(
            Method::POST,
            "/api/v1/admin/renew",
            Some(json!({"passwordName": "x"})),
            400,
        )
        .await;
    assert_eq!(bad["errors"][0]["field"], "passwordName");
    let again = api.expect(Method::GET, "/api/v1/admin", None, 200).await;
    assert!(again.get("newPasswords").is_none());
    api.expect(Method::POST, "/api/v1/admin/disable", Some(json!({})), 200)
        .await;

    // Registry settings.
    let reg = api.expect(Method::GET, "/api/v1/registry", None, 200).await;
    assert_eq!(reg["anonymousPullEnabled"], false);
    let reg = api
        .expect(
            Method::PATCH,
            "/api/v1/registry",
            Some(json!({"anonymousPullEnabled": true})),
            200,
        )
        .await;
    assert_eq!(reg["anonymousPullEnabled"], true);
    let bad = api
        .expect(
            Method::PATCH,
            "/api/v1/registry",
            Some(json!({"accessTokenTtlSeconds": 5})),
            400,
        )
        .await;
    assert_eq!(bad["errors"][0]["field"], "accessTokenTtlSeconds");

    // Network rules (default action stays Allow, so this client keeps access).
    let rules = api
        .expect(
            Method::POST,
            "/api/v1/network-rules",
            Some(json!({"ipAddress": "10.1.2.3/8"})),
            201,
        )
        .await;
    assert_eq!(rules["ipRules"], json!(["10.0.0.0/8"]));
    assert_eq!(rules["defaultAction"], "Allow");
    api.expect(
        Method::POST,
        "/api/v1/network-rules",
        Some(json!({"ipAddress": "10.0.0.0/8"})),
        409,
    )
    .await;
    api.expect(
        Method::POST,
        "/api/v1/network-rules",
        Some(json!({"ipAddress": "nope"})),
        400,
    )
    .await;
    api.expect(
        Method::DELETE,
        "/api/v1/network-rules/10.0.0.0%2F8",
        None,
        204,
    )
    .await;
    api.expect(
        Method::DELETE,
        "/api/v1/network-rules/10.0.0.0%2F8",
        None,
        404,
    )
    .await;
}

#[tokio::test]
async fn scope_maps_tokens_and_role_assignments() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;

    let maps = api
        .expect(Method::GET, "/api/v1/scope-maps", None, 200)
        .await;
    assert!(maps.to_string().contains("_repositories_pull"));
    let m = api
        .expect(
            Method::POST,
            "/api/v1/scope-maps",
            Some(json!({"name": "writers", "actions": ["repositories/a/content/write"]})),
            201,
        )
        .await;
    assert_eq!(m["warnings"].as_array().map(Vec::len), Some(1), "{m}");
    let m = api
        .expect(
            Method::PUT,
            "/api/v1/scope-maps/writers",
            Some(
                json!({"actions": ["repositories/a/content/read", "repositories/a/content/write"]}),
            ),
            200,
        )
        .await;
    assert_eq!(m["warnings"], json!([]));
    let bad = api
        .expect(
            Method::POST,
            "/api/v1/scope-maps",
            Some(json!({"name": "broken", "actions": ["repositories/a*/content/read"]})),
            400,
        )
        .await;
    assert_eq!(bad["errors"][0]["field"], "actions");

    let t = api
        .expect(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "builder", "scopeMap": "writers"})),
            201,
        )
        .await;
    assert_eq!(t["newPasswords"].as_array().map(Vec::len), Some(2));
    let shown = api
        .expect(Method::GET, "/api/v1/tokens/builder", None, 200)
        .await;
    assert!(shown.get("newPasswords").is_none());
    let t = api
        .expect(
            Method::PATCH,
            "/api/v1/tokens/builder",
            Some(json!({"status": "disabled"})),
            200,
        )
        .await;
    assert_eq!(t["status"], "disabled");
    let g = api
        .expect(
            Method::POST,
            "/api/v1/tokens/builder/credentials/generate",
            Some(json!({"passwordName": "password2", "expirationInDays": 7})),
            200,
        )
        .await;
    assert_eq!(g["newPasswords"][0]["name"], "password2");
    api.expect(Method::GET, "/api/v1/tokens", None, 200).await;
    // A token named after the registry is refused: the name is taken (by
    // the admin account), a 409 like any name in use.
    let reg = api.expect(Method::GET, "/api/v1/registry", None, 200).await;
    let reg_name = reg["name"].as_str().expect("registry name").to_string();
    let bad = api
        .expect(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": reg_name, "scopeMap": "writers"})),
            409,
        )
        .await;
    assert_eq!(bad["errors"][0]["field"], "name");
    // Scope map in use cannot go; after the token is gone it can.
    api.expect(Method::DELETE, "/api/v1/tokens/builder", None, 204)
        .await;
    api.expect(Method::DELETE, "/api/v1/scope-maps/writers", None, 204)
        .await;
    api.expect(Method::GET, "/api/v1/scope-maps/writers", None, 404)
        .await;

    // Role assignments.
    api.expect(
        Method::POST,
        "/api/v1/users",
        Some(json!({"name": "bob"})),
        201,
    )
    .await;
    let ra = api
        .expect(
            Method::POST,
            "/api/v1/role-assignments",
            Some(json!({"assignee": "bob", "role": "AcrPush", "scope": "repositories/team/*"})),
            201,
        )
        .await;
    assert_eq!(ra["scope"], "repositories/team/*");
    let id = ra["id"].as_str().expect("id").to_string();
    let list = api
        .expect(
            Method::GET,
            "/api/v1/role-assignments?assignee=bob",
            None,
            200,
        )
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let bad = api
        .expect(
            Method::POST,
            "/api/v1/role-assignments",
            Some(json!({"assignee": "bob", "role": "Boss"})),
            400,
        )
        .await;
    assert_eq!(bad["errors"][0]["field"], "role");
    api.expect(
        Method::DELETE,
        &format!("/api/v1/role-assignments/{id}"),
        None,
        204,
    )
    .await;
    api.expect(
        Method::DELETE,
        &format!("/api/v1/role-assignments/{id}"),
        None,
        404,
    )
    .await;
}

#[tokio::test]
async fn roles_limit_management_rights() {
    let server = TestServer::start().await;
    let owner = Api::owner(&server).await;

    // Reader: reads, cannot write.
    let reader = user_with_role(&server, &owner, "reader1", "Reader").await;
    reader.expect(Method::GET, "/api/v1/users", None, 200).await;
    let denied = reader
        .expect(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "mallory"})),
            403,
        )
        .await;
    assert_eq!(error_code(&denied), "DENIED");
    assert!(denied.to_string().contains("management write"), "{denied}");

    // Contributor: writes, cannot assign roles.
    let contrib = user_with_role(&server, &owner, "contrib1", "Contributor").await;
    contrib
        .expect(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "carol"})),
            201,
        )
        .await;
    let denied = contrib
        .expect(
            Method::POST,
            "/api/v1/role-assignments",
            Some(json!({"assignee": "carol", "role": "Owner"})),
            403,
        )
        .await;
    assert!(denied.to_string().contains("role assignment"), "{denied}");

    // Basic with a directory user's password works too.
    Api::basic(&server, OWNER_USER, OWNER_PASSWORD)
        .expect(Method::GET, "/api/v1/registry", None, 200)
        .await;

    // The admin account and repository tokens have no management rights.
    let admin = owner
        .expect(Method::POST, "/api/v1/admin/enable", Some(json!({})), 200)
        .await;
    let admin_pw = admin["newPasswords"][0]["value"]
        .as_str()
        .expect("admin password");
    let reg_name = admin["username"].as_str().expect("username");
    let (s, v) = Api::basic(&server, reg_name, admin_pw)
        .get("/api/v1/users")
        .await;
    assert_eq!(s, 403, "{v}");
    let t = owner
        .expect(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "tok-all", "scopeMap": "_repositories_admin"})),
            201,
        )
        .await;
    let tok_pw = t["newPasswords"][0]["value"]
        .as_str()
        .expect("token password");
    let (s, v) = Api::basic(&server, "tok-all", tok_pw)
        .get("/api/v1/users")
        .await;
    assert_eq!(s, 403, "{v}");

    // No or bad credentials: 401 with a challenge naming the directory.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/users", server.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(challenge.contains("/directory/token"), "{challenge}");
    let (s, _) = Api::basic(&server, OWNER_USER, "wrong-password")
        .get("/api/v1/users")
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn malformed_and_unknown_requests() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let r = api
        .http
        .post(format!("{}/api/v1/users", api.base))
        .header("authorization", &api.auth)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json error body");
    assert_eq!(error_code(&v), "INVALID");
    let (s, v) = api.post("/api/v1/users", json!({"name": 5})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = api
        .post("/api/v1/users", json!({"name": "bad name!"}))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errors"][0]["field"], "name");
    let (s, v) = api.get("/api/v1/nothing-here").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(error_code(&v), "NOT_FOUND");
    let (s, _) = api.delete("/api/v1/service-principals/not-a-uuid").await;
    assert_eq!(s, 404);
    let (s, _) = api.delete("/api/v1/role-assignments/not-a-uuid").await;
    assert_eq!(s, 404);
    // Still alive.
    api.expect(Method::GET, "/api/v1/registry", None, 200).await;
}

#[tokio::test]
async fn openapi_document_lists_the_paths() {
    let server = TestServer::start().await;
    let r = reqwest::get(format!("{}/api/v1/openapi.json", server.base_url()))
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.expect("openapi json");
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/api/v1/users",
        "/api/v1/users/{name}",
        "/api/v1/groups/{name}/members",
        "/api/v1/service-principals/{appId}/credentials/reset",
        "/api/v1/admin/renew",
        "/api/v1/tokens/{name}/credentials/generate",
        "/api/v1/scope-maps/{name}",
        "/api/v1/role-assignments",
        "/api/v1/network-rules/{cidr}",
        "/api/v1/registry",
        "/api/v1/repositories/{name}/tags",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
}

#[tokio::test]
async fn repositories_listing_and_deletion() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let reg = server.registry();
    let img = Image::random(1, 64);
    reg.push_image("team/app", "v1", &img).await;
    reg.put_manifest_ok("team/app", "v2", OCI_MANIFEST, &img.manifest)
        .await;

    let repos = api
        .expect(Method::GET, "/api/v1/repositories", None, 200)
        .await;
    assert_eq!(repos, json!(["team/app"]));
    let tags = api
        .expect(Method::GET, "/api/v1/repositories/team/app/tags", None, 200)
        .await;
    assert_eq!(tags.as_array().map(Vec::len), Some(2));
    assert_eq!(tags[0]["digest"], img.digest());
    assert_eq!(tags[0]["size"], img.manifest.len());
    let manifests = api
        .expect(
            Method::GET,
            "/api/v1/repositories/team/app/manifests",
            None,
            200,
        )
        .await;
    assert_eq!(manifests[0]["tags"], json!(["v1", "v2"]));

    api.expect(
        Method::DELETE,
        "/api/v1/repositories/team/app/tags/v1",
        None,
        204,
    )
    .await;
    api.expect(
        Method::DELETE,
        "/api/v1/repositories/team/app/tags/v1",
        None,
        404,
    )
    .await;
    api.expect(
        Method::DELETE,
        &format!("/api/v1/repositories/team/app/manifests/{}", img.digest()),
        None,
        204,
    )
    .await;
    let tags = api
        .expect(Method::GET, "/api/v1/repositories/team/app/tags", None, 200)
        .await;
    assert_eq!(tags, json!([]));
    api.expect(Method::DELETE, "/api/v1/repositories/team/app", None, 204)
        .await;
    api.expect(Method::GET, "/api/v1/repositories/team/app/tags", None, 404)
        .await;
    let repos = api
        .expect(Method::GET, "/api/v1/repositories", None, 200)
        .await;
    assert_eq!(repos, json!([]));
}

/// A repository token created through the API pushes where its scope map
/// allows and nowhere else.
#[tokio::test]
async fn token_from_api_pushes_only_where_allowed() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let t = api
        .expect(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({
                "name": "team-pusher",
                "repositories": [{"repository": "team/*", "actions": ["content/read", "content/write"]}]
            })),
            201,
        )
        .await;
    assert_eq!(t["scopeMap"], "team-pusher-scope-map");
    let password1 = t["newPasswords"][0]["value"].as_str().expect("password1");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("team-pusher:{password1}"));
    let http = reqwest::Client::new();
    let blob = random_bytes(32);
    let digest = sha256(&blob);
    let push = |repo: &str| {
        http.post(format!(
            "{}/v2/{repo}/blobs/uploads/?digest={digest}",
            server.base_url()
        ))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/octet-stream")
        .body(blob.clone())
        .send()
    };
    let ok = push("team/app").await.expect("push");
    assert_eq!(ok.status(), 201, "push to team/app");
    let denied = push("other/app").await.expect("push");
    assert_eq!(denied.status(), 403, "push to other/app");
}

/// Issue 16: the registry always keeps a registry-wide Owner. Removing the
/// last Owner assignment — directly, or by deleting or disabling the user
/// that holds it — is refused with 409 and changes nothing; with a second
/// Owner it works.
#[tokio::test]
async fn the_last_owner_cannot_be_removed() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    let owners = api
        .expect(
            Method::GET,
            &format!("/api/v1/role-assignments?assignee={OWNER_USER}"),
            None,
            200,
        )
        .await;
    let owner_ids: Vec<String> = owners
        .as_array()
        .expect("list")
        .iter()
        .filter(|a| a["role"] == "Owner" && a["scope"] == "registry")
        .map(|a| a["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(owner_ids.len(), 1, "{owners}");
    let path = format!("/api/v1/role-assignments/{}", owner_ids[0]);

    let refused = api.expect(Method::DELETE, &path, None, 409).await;
    assert_eq!(error_code(&refused), "CONFLICT");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("without an Owner")),
        "{refused}"
    );
    let user = format!("/api/v1/users/{OWNER_USER}");
    api.expect(Method::DELETE, &user, None, 409).await;
    api.expect(Method::PATCH, &user, Some(json!({"enabled": false})), 409)
        .await;
    // Still an Owner: role assignments can still be managed.
    api.expect(Method::GET, "/api/v1/role-assignments", None, 200)
        .await;

    // With a second Owner, the first assignment may go.
    let second = user_with_role(&server, &api, "second-owner", "Owner").await;
    api.expect(Method::DELETE, &path, None, 204).await;
    // Now the second Owner holds the last one.
    let (s, _) = second
        .send(Method::DELETE, &format!("/api/v1/users/{OWNER_USER}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let v = second
        .expect(Method::DELETE, "/api/v1/users/second-owner", None, 409)
        .await;
    assert_eq!(error_code(&v), "CONFLICT");
}

/// Issue 16: a 405 carries the API's error shape and an `Allow` header.
#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let server = TestServer::start().await;
    let api = Api::owner(&server).await;
    for (path, allow) in [
        ("/api/v1/repositories/team/app", "DELETE"),
        ("/api/v1/repositories/team/app/tags", "GET,HEAD"),
        ("/api/v1/repositories/team/app/manifests", "GET,HEAD"),
    ] {
        let r = server
            .client()
            .put(format!("{}{path}", server.base_url()))
            .header("authorization", &api.auth)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(
            r.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{path}"
        );
        let v: Value = r.json().await.expect("json");
        assert_eq!(error_code(&v), "METHOD_NOT_ALLOWED", "{path}");
    }
    let r = server
        .client()
        .put(format!("{}/api/v1/users", server.base_url()))
        .header("authorization", &api.auth)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 405);
    let allow = r
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}
