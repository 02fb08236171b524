//! Token service throughput: the Basic-credential grant and the refresh grant.

use std::sync::Arc;

use anyhow::{ensure, Context as _};
use bytes::Bytes;
use futures::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};

use super::{sweep, Ctx, Outcome};
use crate::auth::{base64_encode, form_encode, repository_scope, TokenResponse};
use crate::client::Probe;
use crate::conn::Session;
use crate::load::{Op, Operation};

/// One token request, checked for a usable bearer token in the answer.
struct TokenRequest {
    method: Method,
    url: Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    authorization: Option<HeaderValue>,
    body: Bytes,
}

impl Operation for TokenRequest {
    fn run<'a>(&'a self, s: &'a mut Session, _n: u64) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            let resp = s
                .send_once(
                    self.method.clone(),
                    &self.url,
                    &self.headers,
                    self.authorization.as_ref(),
                    self.body.clone(),
                )
                .await?
                .expect(StatusCode::OK, "token request")?;
            let token: TokenResponse =
                serde_json::from_slice(&resp.body).context("token response is not JSON")?;
            ensure!(token.bearer().is_some(), "token response without a token");
            Ok(0)
        })
    }
}

/// `token-issuance`.
pub(super) async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "token-issuance";
    match &ctx.probe {
        Probe::Open => return Ok(Outcome::Skipped("registry does not challenge".into())),
        Probe::Basic => {
            return Ok(Outcome::Skipped(
                "registry uses Basic auth: no token service to measure".into(),
            ))
        }
        Probe::Bearer { .. } => {}
    }
    let auth = ctx.registry.auth();
    let endpoint = auth
        .token_endpoint()
        .context("Bearer challenge seen but no token endpoint recorded")?;
    let scope = repository_scope(&ctx.repo("manifest"), "pull");
    let creds = auth.credentials().cloned();

    let mut url = endpoint.realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = &endpoint.service {
            q.append_pair("service", s);
        }
        q.append_pair("scope", &scope);
    }
    let basic = match &creds {
        Some(c) => Some(
            HeaderValue::from_str(&format!(
                "Basic {}",
                base64_encode(format!("{}:{}", c.username, c.password).as_bytes())
            ))
            .context("credentials are not a valid header value")?,
        ),
        None => None,
    };
    let grant = if creds.is_some() {
        "basic-credentials"
    } else {
        "anonymous"
    };
    let op: Op = Arc::new(TokenRequest {
        method: Method::GET,
        url,
        headers: Vec::new(),
        authorization: basic,
        body: Bytes::new(),
    });
    let mut all = sweep(ctx, label, &format!("GET {grant}"), "token", op).await?;

    let note = match &creds {
        None => Some("refresh grant not measured: no --username/--password".to_owned()),
        Some(c) => {
            let first = endpoint
                .fetch(ctx.registry.http(), Some(c), &[scope.as_str()], true)
                .await
                .context("GET token with offline_token=true")?;
            match first.refresh_token {
                None => Some(
                    "refresh grant not measured: no refresh_token for offline_token=true"
                        .to_owned(),
                ),
                Some(refresh) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", "berth-bench"),
                        ("scope", scope.as_str()),
                    ];
                    if let Some(s) = &endpoint.service {
                        form.push(("service", s));
                    }
                    let body = form
                        .iter()
                        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                        .collect::<Vec<_>>()
                        .join("&");
                    let op: Op = Arc::new(TokenRequest {
                        method: Method::POST,
                        url: endpoint.realm.clone(),
                        headers: vec![(
                            CONTENT_TYPE,
                            HeaderValue::from_static("application/x-www-form-urlencoded"),
                        )],
                        authorization: None,
                        body: Bytes::from(body),
                    });
                    all.extend(sweep(ctx, label, "POST refresh_token", "token", op).await?);
                    None
                }
            }
        }
    };
    Ok(Outcome::Measured {
        measurements: all,
        note,
    })
}
