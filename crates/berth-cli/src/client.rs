//! HTTP calls to a berth login server: the directory token, the exchange
//! for a registry refresh token, and the `/api/v1` management API with the
//! directory token as Bearer. A refusal is surfaced with the server's own
//! message.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP (loopback registries, or when forced).
    Http,
    /// HTTPS (the default).
    Https,
}

/// How to reach a login server; stored in its session so the credential
/// helper reaches it the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Plain HTTP or HTTPS.
    pub scheme: Scheme,
    /// A PEM file of CA certificates to trust in addition to the usual ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Connection {
    /// HTTPS, except plain HTTP for loopback hosts (like docker's default
    /// insecure registries) or when `plain_http` is set. A CA file always
    /// means HTTPS.
    pub fn decide(host: &str, plain_http: bool, ca_file: Option<PathBuf>) -> Connection {
        let scheme = if ca_file.is_none() && (plain_http || names::is_loopback(host)) {
            Scheme::Http
        } else {
            Scheme::Https
        };
        Connection { scheme, ca_file }
    }
}

/// A directory token and its lifetime.
#[derive(Debug, Deserialize)]
pub struct DirectoryToken {
    /// The token (a JWT).
    pub access_token: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// A client for one login server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    host: String,
}

impl Client {
    /// A client for `host` reached through `conn`.
    pub fn new(host: &str, conn: &Connection) -> anyhow::Result<Client> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &conn.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no PEM certificate", ca.display()))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        let scheme = match conn.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        Ok(Client {
            http: b.build()?,
            base: format!("{scheme}://{host}"),
            host: host.to_string(),
        })
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let resp = req
            .send()
            .await
            .with_context(|| {
                let hint = if self.base.starts_with("http://") {
                    " (plain HTTP: the login server is a loopback address or --plain-http is set; for an HTTPS server on this machine pass --ca-file)"
                } else {
                    ""
                };
                format!("{what}: cannot reach {}{hint}", self.base)
            })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("{what}: reading the answer"))?;
        if status.is_success() {
            return Ok((status, body.to_vec()));
        }
        anyhow::bail!("{what}: {}", server_message(status, &body))
    }

    async fn form(&self, path: &str, form: &[(&str, &str)], what: &str) -> anyhow::Result<Value> {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        let (_, body) = self.send(req, what).await?;
        serde_json::from_slice(&body).with_context(|| format!("{what}: the answer is not JSON"))
    }

    /// `POST /directory/token` with `form`.
    async fn directory(&self, form: &[(&str, &str)]) -> anyhow::Result<DirectoryToken> {
        let v = self.form("/directory/token", form, "login").await?;
        serde_json::from_value(v).context("login: unexpected directory token answer")
    }

    /// `POST /directory/token` with a user's name and password.
    pub async fn directory_password(
        &self,
        user: &str,
        password: &str,
    ) -> anyhow::Result<DirectoryToken> {
        let form = [
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ];
        self.directory(&form).await
    }

    /// `POST /directory/token` with a service principal's app id and secret.
    pub async fn directory_client_credentials(
        &self,
        app_id: &str,
        secret: &str,
    ) -> anyhow::Result<DirectoryToken> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            ("client_secret", secret),
        ];
        self.directory(&form).await
    }

    /// `POST /directory/token` for a workload identity: its client id and
    /// an external OIDC token (e.g. a Kubernetes service-account token) as
    /// the RFC 7523 client assertion.
    pub async fn directory_client_assertion(
        &self,
        client_id: &str,
        assertion: &str,
    ) -> anyhow::Result<DirectoryToken> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ];
        self.directory(&form).await
    }

    /// `POST /oauth2/exchange`: directory token → registry refresh token.
    pub async fn exchange(&self, directory_token: &str) -> anyhow::Result<String> {
        let v = self
            .form(
                "/oauth2/exchange",
                &[
                    ("grant_type", "access_token"),
                    ("service", &self.host),
                    ("access_token", directory_token),
                ],
                "token exchange",
            )
            .await?;
        v.get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .context("token exchange: the answer has no refresh_token")
    }

    /// A management API call with the directory token as Bearer; `None`
    /// for an empty answer (204).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        directory_token: &str,
    ) -> anyhow::Result<Option<Value>> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1/{path}", self.base))
            .bearer_auth(directory_token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let (_, bytes) = self.send(req, "request refused").await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .context("the server's answer is not JSON")
    }
}

/// The server's own words for a refusal: the management / OCI envelope
/// `{"errors":[{code,message,field|detail}]}`, an OAuth2 `{"error",
/// "error_description"}`, or the raw body.
pub fn server_message(status: StatusCode, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(errors) = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
    {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| {
                let code = e.get("code").and_then(Value::as_str).unwrap_or("ERROR");
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                match e.get("field").and_then(Value::as_str) {
                    Some(f) => format!("{code}: {msg} (field: {f})"),
                    None => format!("{code}: {msg}"),
                }
            })
            .collect();
        if !parts.is_empty() {
            return format!("{} {}", status.as_u16(), parts.join("; "));
        }
    }
    if let Some(err) = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
    {
        let desc = parsed
            .as_ref()
            .and_then(|v| v.get("error_description"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return format!("{} {err}: {desc}", status.as_u16());
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("{status}")
    } else {
        format!(
            "{} {}",
            status.as_u16(),
            text.chars().take(500).collect::<String>()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let m = server_message(
            StatusCode::BAD_REQUEST,
            br#"{"errors":[{"code":"INVALID","message":"bad name","field":"name"}]}"#,
        );
        assert_eq!(m, "400 INVALID: bad name (field: name)");
        let m = server_message(
            StatusCode::UNAUTHORIZED,
            br#"{"error":"invalid_grant","error_description":"wrong"}"#,
        );
        assert_eq!(m, "401 invalid_grant: wrong");
        assert_eq!(server_message(StatusCode::BAD_GATEWAY, b"oops"), "502 oops");
    }

    #[test]
    fn scheme_decision() {
        assert_eq!(
            Connection::decide("127.0.0.1:5000", false, None).scheme,
            Scheme::Http
        );
        assert_eq!(
            Connection::decide("r.example.com", false, None).scheme,
            Scheme::Https
        );
        assert_eq!(
            Connection::decide("r.example.com", true, None).scheme,
            Scheme::Http
        );
        let c = Connection::decide("localhost:5000", false, Some("ca.pem".into()));
        assert_eq!(c.scheme, Scheme::Https);
    }
}
