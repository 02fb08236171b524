//! Login helpers shared by the auth tests: the token endpoints driven the
//! way clients drive them, and a small management-API client.

use reqwest::{Method, Response};
use serde_json::Value;

use super::{TestServer, OWNER_PASSWORD, OWNER_USER};

/// The Basic username that carries a refresh token as its password.
pub const NULL_USER: &str = "00000000-0000-0000-0000-000000000000";

/// A client with no default credentials.
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

/// A response body as JSON.
pub async fn json_of(r: Response) -> Value {
    r.json::<Value>().await.expect("json body")
}

/// A string field of a JSON body, or a panic naming the body.
pub fn str_field(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no '{key}' in {v}"))
        .to_string()
}

/// The Docker flow: `GET /oauth2/token` with Basic credentials.
pub async fn token_get(
    server: &TestServer,
    user: &str,
    password: &str,
    scopes: &[&str],
    offline: bool,
) -> Response {
    let mut q: Vec<(&str, String)> = vec![("service", server.host())];
    for s in scopes {
        q.push(("scope", s.to_string()));
    }
    if offline {
        q.push(("offline_token", "true".into()));
    }
    plain()
        .get(format!("{}/oauth2/token", server.base_url()))
        .basic_auth(user, Some(password))
        .query(&q)
        .send()
        .await
        .expect("token request")
}

/// `GET /oauth2/token` without credentials (anonymous).
pub async fn token_get_anonymous(server: &TestServer, scopes: &[&str]) -> Response {
    let mut q: Vec<(&str, String)> = vec![("service", server.host())];
    for s in scopes {
        q.push(("scope", s.to_string()));
    }
    plain()
        .get(format!("{}/oauth2/token", server.base_url()))
        .query(&q)
        .send()
        .await
        .expect("token request")
}

/// `POST /oauth2/token` with `grant_type=refresh_token`.
pub async fn token_refresh(server: &TestServer, refresh: &str, scopes: &[&str]) -> Response {
    let host = server.host();
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "refresh_token"),
        ("service", &host),
        ("refresh_token", refresh),
    ];
    for s in scopes {
        form.push(("scope", s));
    }
    plain()
        .post(format!("{}/oauth2/token", server.base_url()))
        .form(&form)
        .send()
        .await
        .expect("token post")
}

/// `POST /directory/token` with a form.
pub async fn directory_token(server: &TestServer, form: &[(&str, &str)]) -> Response {
    plain()
        .post(format!("{}/directory/token", server.base_url()))
        .form(form)
        .send()
        .await
        .expect("directory token")
}

/// A directory user's directory token (password grant); panics unless 200.
pub async fn user_directory_token(server: &TestServer, user: &str, password: &str) -> String {
    let r = directory_token(
        server,
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(r.status(), 200, "directory token for {user}");
    str_field(&json_of(r).await, "access_token")
}

/// `POST /oauth2/exchange` of an identity token for a refresh token.
pub async fn exchange(server: &TestServer, identity_token: &str) -> Response {
    plain()
        .post(format!("{}/oauth2/exchange", server.base_url()))
        .form(&[
            ("grant_type", "access_token"),
            ("service", &server.host()),
            ("access_token", identity_token),
        ])
        .send()
        .await
        .expect("exchange")
}

/// The bootstrap Owner's directory token, for the management API.
pub async fn owner_api(server: &TestServer) -> String {
    user_directory_token(server, OWNER_USER, OWNER_PASSWORD).await
}

/// A monolithic blob upload with a bearer token.
pub async fn bearer_post_blob(server: &TestServer, token: &str, repo: &str) -> Response {
    let data = super::random_bytes(64);
    plain()
        .post(format!(
            "{}/v2/{repo}/blobs/uploads/?digest={}",
            server.base_url(),
            super::sha256(&data)
        ))
        .bearer_auth(token)
        .body(data)
        .send()
        .await
        .expect("push")
}

/// The management API as the bootstrap Owner.
pub struct Api {
    base: String,
    token: String,
}

impl Api {
    /// Log in as the Owner.
    pub async fn owner(server: &TestServer) -> Api {
        Api {
            base: server.base_url(),
            token: owner_api(server).await,
        }
    }

    /// Send `method path` with an optional JSON body; (status, JSON or Null).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = plain()
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("management API call");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Like [`Api::call`], asserting the status.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let (status, v) = self.call(method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path} → {v}");
        v
    }

    /// Create a directory user; returns its password.
    pub async fn user(&self, name: &str) -> String {
        let password = format!("pw-{name}-{}", super::random_suffix());
        self.expect(
            Method::POST,
            "/api/v1/users",
            Some(serde_json::json!({"name": name, "password": password})),
            201,
        )
        .await;
        password
    }

    /// Create a service principal; returns (app id, secret).
    pub async fn service_principal(&self, name: &str, days: Option<u64>) -> (String, String) {
        let mut body = serde_json::json!({ "name": name });
        if let Some(d) = days {
            body["expirationInDays"] = d.into();
        }
        let v = self
            .expect(Method::POST, "/api/v1/service-principals", Some(body), 201)
            .await;
        (str_field(&v, "appId"), str_field(&v, "secret"))
    }

    /// Assign `role` to `assignee` (registry-wide when `scope` is None);
    /// returns the assignment id.
    pub async fn assign(&self, assignee: &str, role: &str, scope: Option<&str>) -> String {
        let mut body = serde_json::json!({ "assignee": assignee, "role": role });
        if let Some(s) = scope {
            body["scope"] = s.into();
        }
        let v = self
            .expect(Method::POST, "/api/v1/role-assignments", Some(body), 201)
            .await;
        str_field(&v, "id")
    }

    /// Create a repository-scoped token from a JSON body; returns password1.
    pub async fn repo_token(&self, body: Value) -> String {
        let v = self
            .expect(Method::POST, "/api/v1/tokens", Some(body), 201)
            .await;
        v["newPasswords"][0]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no password1 in {v}"))
            .to_string()
    }

    /// Enable the admin account; returns its first password.
    pub async fn enable_admin(&self) -> String {
        let v = self
            .expect(Method::POST, "/api/v1/admin/enable", None, 200)
            .await;
        v["newPasswords"][0]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no admin password in {v}"))
            .to_string()
    }

    /// `PATCH /api/v1/registry`.
    pub async fn registry_settings(&self, body: Value) -> Value {
        self.expect(Method::PATCH, "/api/v1/registry", Some(body), 200)
            .await
    }
}
