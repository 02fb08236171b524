//! The `WWW-Authenticate` challenge and the 401/403/429 refusals, in the
//! distribution spec's error envelope.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{ErrorCode, OciError};

use crate::access::RequiredAccess;

/// What the challenge adds after realm and service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeError {
    /// No `error=`: credentials are simply needed.
    None,
    /// `error="invalid_token"`: the presented token is bad.
    InvalidToken,
    /// `error="insufficient_scope"`: the token does not cover the request.
    InsufficientScope,
}

/// The scopes a request needs, in the token grammar, e.g.
/// `repository:a/b:pull,push` and `registry:catalog:*`.
pub fn scopes_of(required: &RequiredAccess) -> Vec<String> {
    let mut out: Vec<String> = required
        .repositories
        .iter()
        .map(|r| {
            let actions: Vec<&str> = r.actions.iter().map(|a| a.as_str()).collect();
            format!("repository:{}:{}", r.repository, actions.join(","))
        })
        .collect();
    if required.catalog {
        out.push("registry:catalog:*".to_string());
    }
    out
}

/// `Bearer realm="…",service="…"[,scope="…"][,error="…"]` (no spaces after
/// commas: clients split on them).
pub fn challenge(realm: &str, service: &str, scopes: &[String], error: ChallengeError) -> String {
    let mut v = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
    if !scopes.is_empty() {
        v.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
    }
    match error {
        ChallengeError::None => {}
        ChallengeError::InvalidToken => v.push_str(",error=\"invalid_token\""),
        ChallengeError::InsufficientScope => v.push_str(",error=\"insufficient_scope\""),
    }
    v
}

/// The `detail` of a 401: the access the request needs, in the form
/// docker prints (`[{"Type","Name","Action"}]`).
pub fn access_detail(required: &RequiredAccess) -> serde_json::Value {
    let mut d = Vec::new();
    for r in &required.repositories {
        for a in &r.actions {
            d.push(serde_json::json!({"Type": "repository", "Name": r.repository, "Action": a.as_str()}));
        }
    }
    if required.catalog {
        d.push(serde_json::json!({"Type": "registry", "Name": "catalog", "Action": "*"}));
    }
    serde_json::Value::Array(d)
}

/// A refusal response: status, OCI error, optional challenge header.
pub fn refusal(
    status: StatusCode,
    error: OciError,
    www_authenticate: Option<String>,
    retry_after: Option<u64>,
) -> Response {
    let mut resp = (status, error.to_body().to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(c) = www_authenticate.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::WWW_AUTHENTICATE, c);
    }
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// 401 UNAUTHORIZED with a challenge.
pub fn unauthorized(message: String, detail: serde_json::Value, challenge: String) -> Response {
    refusal(
        StatusCode::UNAUTHORIZED,
        OciError::with_message(ErrorCode::Unauthorized, message).detail(detail),
        Some(challenge),
        None,
    )
}

/// 403 DENIED, optionally with a challenge (clients that refresh their
/// token only after a 403 read the scope from it).
pub fn denied(message: String, detail: serde_json::Value, challenge: Option<String>) -> Response {
    refusal(
        StatusCode::FORBIDDEN,
        OciError::with_message(ErrorCode::Denied, message).detail(detail),
        challenge,
        None,
    )
}

/// 429 TOOMANYREQUESTS with `Retry-After`.
pub fn throttled(retry_after: u64) -> Response {
    refusal(
        StatusCode::TOO_MANY_REQUESTS,
        OciError::with_message(
            ErrorCode::TooManyRequests,
            format!("too many failed logins from this client; retry in {retry_after} s"),
        ),
        None,
        Some(retry_after),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{RepoAccess, RepoAction};

    #[test]
    fn challenge_has_no_spaces_after_commas() {
        let req = RequiredAccess {
            repositories: vec![RepoAccess {
                repository: "a/b".into(),
                actions: vec![RepoAction::Pull, RepoAction::Push],
            }],
            ..RequiredAccess::default()
        };
        let c = challenge(
            "https://r.example/oauth2/token",
            "r.example",
            &scopes_of(&req),
            ChallengeError::InsufficientScope,
        );
        assert_eq!(
            c,
            "Bearer realm=\"https://r.example/oauth2/token\",service=\"r.example\",scope=\"repository:a/b:pull,push\",error=\"insufficient_scope\""
        );
        assert_eq!(access_detail(&req)[1]["Action"], "push");
    }
}
