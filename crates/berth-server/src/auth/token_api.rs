//! The token service endpoints.
//!
//! * `GET /oauth2/token` — the Docker flow: Basic credentials (or none, for
//!   anonymous pull), `service`, repeated `scope`, `offline_token=true` for a
//!   refresh token.
//! * `POST /oauth2/token` — OAuth2 form: `grant_type=refresh_token|password`.
//! * `POST /oauth2/exchange` — directory (identity) token → refresh token.
//! * `POST /directory/token` — berth's directory: password or
//!   client-credentials grant → identity token (3 hours).
//! * `GET /.well-known/jwks.json` — the verification keys.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_auth::authorize::authorize;
use berth_auth::credential::{load_policy_context, AuthenticateError, Authenticated};
use berth_auth::error::{AuthFailure, DenyReason};
use berth_auth::jwt::{IssuedToken, Permissions};
use berth_auth::principal::Principal;
use berth_auth::scope::{parse_scope_params, Action, ResourceType};
use berth_core::{ErrorCode, OciError};
use serde_json::json;

use super::challenge::{refusal, throttled};
use super::gate::{credentials, internal, run_blocking_ok, Credentials};
use super::network::client_ip;
use super::AuthService;
use crate::audit::RequestAudit;

type Form = Vec<(String, String)>;

/// The connection's peer address, when the server recorded it.
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// Routes of the token service.
pub fn routes(auth: Arc<AuthService>) -> Router {
    Router::new()
        .route("/oauth2/token", get(token_get).post(token_post))
        .route("/oauth2/exchange", post(exchange))
        .route("/directory/token", post(directory_token))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(auth)
}

fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn all<'a>(form: &'a Form, name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn parse_form(body: &Bytes) -> Result<Form, Response> {
    serde_urlencoded::from_bytes::<Form>(body).map_err(|e| {
        bad_request(format!(
            "the body must be application/x-www-form-urlencoded: {e}"
        ))
    })
}

fn bad_request(message: String) -> Response {
    refusal(
        StatusCode::BAD_REQUEST,
        OciError::with_message(ErrorCode::Unsupported, message),
        None,
        None,
    )
}

fn unauthorized(f: &AuthFailure) -> Response {
    refusal(
        StatusCode::UNAUTHORIZED,
        OciError::with_message(ErrorCode::Unauthorized, f.client_message()),
        None,
        None,
    )
}

fn peer_ip(auth: &AuthService, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    client_ip(
        peer.map(|p| p.ip()),
        headers,
        &auth.settings.trusted_proxies,
    )
}

fn rfc3339(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Audit and throttle a failed login, and build its response.
fn login_failed(
    auth: &AuthService,
    audit: &RequestAudit,
    ip: Option<IpAddr>,
    identity: Option<&str>,
    operation: &'static str,
    f: &AuthFailure,
) -> Response {
    auth.limiter.record_failure(ip, identity);
    tracing::info!(target: "berth::audit", operation, reason = f.code(), client_ip = ?ip, identity = ?identity, detail = %f, "login refused");
    audit.login_failed(operation, f);
    unauthorized(f)
}

/// Note a throttled login attempt and build the 429.
fn throttled_login(audit: &RequestAudit, operation: &'static str, wait: u64) -> Response {
    audit.login_failed(
        operation,
        &AuthFailure::Throttled {
            retry_after_secs: wait,
        },
    );
    throttled(wait)
}

/// Issue an access token for `scopes` (plus a refresh token when asked).
async fn issue(
    auth: &AuthService,
    who: &Authenticated,
    scope_fields: Vec<&str>,
    want_refresh: Option<String>,
    operation: &'static str,
    ip: Option<IpAddr>,
    audit: &RequestAudit,
) -> Response {
    audit.principal(&who.principal);
    let parsed = parse_scope_params(scope_fields);
    for (raw, err) in &parsed.rejected {
        tracing::info!(target: "berth::audit", operation, scope = %raw, error = %err, "ignored malformed scope");
    }
    let policy = match auth.cached_policy(&who.principal, who.generation).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let grant = authorize(&who.principal, &policy, &parsed.scopes);
    for (scope, action, reason) in grant.denials() {
        tracing::info!(target: "berth::audit", operation, principal = %who.principal.reference(), scope = %scope, action = action.as_str(), reason = reason.code(), "scope not granted");
    }
    // A token is issued either way; a scope not granted in full is noted
    // with the reason of its first refused action.
    audit.login(
        operation,
        grant.denials().next().map_or("ok", |(_, _, r)| r.code()),
    );
    let tokens = auth.token_service();
    let access = match tokens.issue_access_for(
        &who.principal.subject(),
        grant.access(),
        grant.refused_access(),
        who.principal.reference(),
        who.generation,
    ) {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let mut body = json!({
        "token": access.token,
        "access_token": access.token,
        "expires_in": access.expires_in,
        "issued_at": rfc3339(access.issued_at),
        "scope": grant.scope_string(),
    });
    if let Some(existing) = want_refresh {
        let refresh = if existing.is_empty() {
            match issue_refresh(auth, who) {
                Ok(t) => t.token,
                Err(r) => return r,
            }
        } else {
            existing
        };
        body["refresh_token"] = json!(refresh);
    }
    tracing::info!(target: "berth::audit", operation, principal = %who.principal.reference(), credential = %who.credential, client_ip = ?ip, jti = %access.jti, scope = %grant.scope_string(), "token issued");
    (StatusCode::OK, Json(body)).into_response()
}

fn issue_refresh(auth: &AuthService, who: &Authenticated) -> Result<IssuedToken, Response> {
    auth.token_service()
        .issue_refresh(
            &who.principal.subject(),
            who.principal.reference(),
            who.generation,
            "",
            Permissions::default(),
        )
        .map_err(internal)
}

/// Anonymous caller (no credentials on the token endpoint).
async fn anonymous(auth: &AuthService, audit: &RequestAudit) -> Result<Authenticated, Response> {
    let policy = auth.network_policy().await.map_err(internal)?;
    if !policy.anonymous_pull {
        audit.login_failed("token_get", &AuthFailure::MissingCredentials);
        return Err(unauthorized(&AuthFailure::MissingCredentials));
    }
    Ok(Authenticated {
        principal: Principal::Anonymous,
        credential: "anonymous".into(),
        generation: 0,
    })
}

/// A refused login at the token endpoint: a credential that failed (which
/// may still fall back to anonymous access), or a finished answer
/// (throttled, store failure).
enum Refused {
    /// The presented credential failed.
    Failed(AuthFailure),
    /// Answer with this.
    Done(Response),
}

async fn basic_login(
    auth: &AuthService,
    ip: Option<IpAddr>,
    user: &str,
    password: &str,
    operation: &'static str,
    audit: &RequestAudit,
) -> Result<Authenticated, Refused> {
    audit.username(user);
    if let Some(wait) = auth.limiter.check(ip, Some(user)) {
        return Err(Refused::Done(throttled_login(audit, operation, wait)));
    }
    match auth.authenticate_basic(user, password).await {
        Ok(a) => Ok(a),
        Err(AuthenticateError::Failure(f)) => Err(Refused::Failed(f)),
        Err(AuthenticateError::Store(e)) => Err(Refused::Done(internal(e))),
    }
}

/// Whether every requested scope is a repository pull and there is one.
fn pull_only(scope_fields: &[&str]) -> bool {
    let parsed = parse_scope_params(scope_fields.iter().copied());
    !parsed.scopes.is_empty()
        && parsed.rejected.is_empty()
        && parsed.scopes.iter().all(|s| {
            s.resource_type == ResourceType::Repository
                && s.unknown_actions.is_empty()
                && s.actions.iter().all(|a| a == Action::Pull)
        })
}

/// What a failed credential leads to: with anonymous pull on, a pull-only
/// request goes on with exactly anonymous access (the failure is still
/// audited and throttled: the returned failure is noted again once the
/// token is issued); anything else — a login, a push — is refused, and the
/// message says that logging out would enable anonymous pull.
async fn after_failure(
    auth: &AuthService,
    audit: &RequestAudit,
    ip: Option<IpAddr>,
    identity: Option<&str>,
    operation: &'static str,
    refused: Refused,
    scope_fields: &[&str],
) -> Result<(Authenticated, AuthFailure), Response> {
    let f = match refused {
        Refused::Done(r) => return Err(r),
        Refused::Failed(f) => f,
    };
    let anonymous_pull = match auth.network_policy().await {
        Ok(p) => p.anonymous_pull,
        Err(e) => return Err(internal(e)),
    };
    let credential_failure = !matches!(
        f,
        AuthFailure::Throttled { .. } | AuthFailure::IpDenied { .. }
    );
    if !anonymous_pull || !credential_failure {
        return Err(login_failed(auth, audit, ip, identity, operation, &f));
    }
    auth.limiter.record_failure(ip, identity);
    tracing::info!(target: "berth::audit", operation, reason = f.code(), client_ip = ?ip, identity = ?identity, detail = %f, "login refused; anonymous pull is on");
    audit.login_failed(operation, &f);
    if pull_only(scope_fields) {
        return Ok((
            Authenticated {
                principal: Principal::Anonymous,
                credential: "anonymous".into(),
                generation: 0,
            },
            f,
        ));
    }
    Err(refusal(
        StatusCode::UNAUTHORIZED,
        OciError::with_message(
            ErrorCode::Unauthorized,
            format!(
                "{}; anonymous pull is on for this registry: the stored credentials are refused, \
                 and `docker logout {}` enables anonymous pull (or log in again)",
                f.client_message(),
                auth.settings.login_server
            ),
        ),
        None,
        None,
    ))
}

/// `GET /oauth2/token`.
async fn token_get(
    State(auth): State<Arc<AuthService>>,
    PeerAddr(peer): PeerAddr,
    audit: RequestAudit,
    headers: HeaderMap,
    Query(query): Query<Form>,
) -> Response {
    const OP: &str = "token_get";
    let ip = peer_ip(&auth, peer, &headers);
    if let Err(r) = auth.check_network_audited(ip, &audit, OP).await {
        return r;
    }
    let scopes = all(&query, "scope");
    let mut fell_back = None;
    let who = match credentials(&headers) {
        Credentials::None => anonymous(&auth, &audit).await,
        Credentials::Basic(u, p) => match basic_login(&auth, ip, &u, &p, OP, &audit).await {
            Ok(w) => Ok(w),
            Err(refused) => after_failure(&auth, &audit, ip, Some(&u), OP, refused, &scopes)
                .await
                .map(|(who, f)| {
                    fell_back = Some(f);
                    who
                }),
        },
        Credentials::Bearer(_) | Credentials::Malformed => {
            let f = AuthFailure::MalformedCredentials {
                detail: "use Basic credentials on GET /oauth2/token".into(),
            };
            audit.login_failed(OP, &f);
            Err(unauthorized(&f))
        }
    };
    let who = match who {
        Ok(w) => w,
        Err(r) => return r,
    };
    let offline = field(&query, "offline_token").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        && !matches!(who.principal, Principal::Anonymous);
    let answer = issue(
        &auth,
        &who,
        scopes,
        offline.then(String::new),
        OP,
        ip,
        &audit,
    )
    .await;
    if let Some(f) = fell_back {
        audit.login_failed(OP, &f);
    }
    answer
}

/// `POST /oauth2/token`.
async fn token_post(
    State(auth): State<Arc<AuthService>>,
    PeerAddr(peer): PeerAddr,
    audit: RequestAudit,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const OP: &str = "token_post";
    let ip = peer_ip(&auth, peer, &headers);
    if let Err(r) = auth.check_network_audited(ip, &audit, OP).await {
        return r;
    }
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let grant_type = field(&form, "grant_type").unwrap_or("");
    let scopes = all(&form, "scope");
    let mut fell_back = None;
    let (who, refresh) = match grant_type {
        "refresh_token" => {
            let Some(rt) = field(&form, "refresh_token") else {
                return bad_request(
                    "refresh_token is required for grant_type=refresh_token".into(),
                );
            };
            if let Some(wait) = auth.limiter.check(ip, None) {
                return throttled_login(&audit, OP, wait);
            }
            match auth.authenticate_refresh(rt).await {
                Ok(a) => (a, Some(rt.to_string())),
                Err(AuthenticateError::Failure(f)) => {
                    let refused = Refused::Failed(f);
                    match after_failure(&auth, &audit, ip, None, OP, refused, &scopes).await {
                        Ok((who, f)) => {
                            fell_back = Some(f);
                            (who, None)
                        }
                        Err(r) => return r,
                    }
                }
                Err(AuthenticateError::Store(e)) => return internal(e),
            }
        }
        "password" => {
            let (Some(u), Some(p)) = (field(&form, "username"), field(&form, "password")) else {
                return bad_request(
                    "username and password are required for grant_type=password".into(),
                );
            };
            match basic_login(&auth, ip, u, p, OP, &audit).await {
                Ok(who) => {
                    let offline = field(&form, "access_type") == Some("offline");
                    (who, offline.then(String::new))
                }
                Err(refused) => {
                    match after_failure(&auth, &audit, ip, Some(u), OP, refused, &scopes).await {
                        Ok((who, f)) => {
                            fell_back = Some(f);
                            (who, None)
                        }
                        Err(r) => return r,
                    }
                }
            }
        }
        other => {
            return bad_request(format!(
                "unsupported grant_type '{other}' (use refresh_token or password)"
            ))
        }
    };
    let answer = issue(&auth, &who, scopes, refresh, OP, ip, &audit).await;
    if let Some(f) = fell_back {
        audit.login_failed(OP, &f);
    }
    answer
}

/// `POST /oauth2/exchange`.
async fn exchange(
    State(auth): State<Arc<AuthService>>,
    PeerAddr(peer): PeerAddr,
    audit: RequestAudit,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const OP: &str = "exchange";
    let ip = peer_ip(&auth, peer, &headers);
    if let Err(r) = auth.check_network_audited(ip, &audit, OP).await {
        return r;
    }
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match field(&form, "grant_type") {
        Some("access_token" | "access_token_refresh_token" | "refresh_token") => {}
        other => {
            return bad_request(format!(
                "unsupported grant_type '{}' (use access_token)",
                other.unwrap_or("")
            ))
        }
    }
    let Some(identity_token) = field(&form, "access_token") else {
        return bad_request("access_token (a directory token) is required".into());
    };
    if let Some(wait) = auth.limiter.check(ip, None) {
        return throttled_login(&audit, OP, wait);
    }
    let tokens = auth.token_service();
    let who = match auth
        .authenticator
        .authenticate_identity_token(&auth.repo, &tokens, identity_token)
        .await
    {
        Ok(a) => a,
        Err(AuthenticateError::Failure(f)) => return login_failed(&auth, &audit, ip, None, OP, &f),
        Err(AuthenticateError::Store(e)) => return internal(e),
    };
    let policy = match load_policy_context(&auth.repo, &who.principal).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    audit.principal(&who.principal);
    audit.login(OP, "ok");
    if !policy.has_role_assignment(&who.principal) {
        audit.login(OP, DenyReason::NoRoleAssignment.code());
        audit.denied_by(&DenyReason::NoRoleAssignment);
        tracing::info!(target: "berth::audit", operation = "exchange", reason = "no_role_assignment", principal = %who.principal.reference(), client_ip = ?ip, "exchange refused");
        return refusal(
            StatusCode::UNAUTHORIZED,
            OciError::with_message(
                ErrorCode::Unauthorized,
                "this identity has no role on this registry; ask an Owner for a role assignment",
            ),
            None,
            None,
        );
    }
    let tenant = field(&form, "tenant").unwrap_or("");
    match tokens.issue_refresh(
        &who.principal.subject(),
        who.principal.reference(),
        who.generation,
        tenant,
        Permissions::default(),
    ) {
        Ok(t) => {
            tracing::info!(target: "berth::audit", operation = "exchange", principal = %who.principal.reference(), client_ip = ?ip, jti = %t.jti, "refresh token issued");
            (StatusCode::OK, Json(json!({ "refresh_token": t.token }))).into_response()
        }
        Err(e) => internal(e),
    }
}

/// An OAuth2 error body (the directory endpoint speaks plain OAuth2).
fn oauth_error(status: StatusCode, error: &str, description: String) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// `POST /directory/token`.
async fn directory_token(
    State(auth): State<Arc<AuthService>>,
    PeerAddr(peer): PeerAddr,
    audit: RequestAudit,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const OP: &str = "directory_token";
    let ip = peer_ip(&auth, peer, &headers);
    audit.client_ip(ip);
    let Ok(form) = serde_urlencoded::from_bytes::<Form>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded".into(),
        );
    };
    let tokens = auth.token_service();
    let (identity, result) = match field(&form, "grant_type") {
        Some("password") => {
            let (Some(u), Some(p)) = (field(&form, "username"), field(&form, "password")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required".into(),
                );
            };
            audit.username(u);
            if let Some(wait) = auth.limiter.check(ip, Some(u)) {
                return throttled_login(&audit, OP, wait);
            }
            (
                u.to_string(),
                run_blocking_ok(auth.authenticator.authenticate_password(&auth.repo, u, p)).await,
            )
        }
        Some("client_credentials") if field(&form, "client_assertion").is_some() => {
            match workload_login(&auth, ip, &form).await {
                Ok(pair) => pair,
                Err(r) => return r,
            }
        }
        Some("client_credentials") => {
            let (Some(id), Some(secret)) =
                (field(&form, "client_id"), field(&form, "client_secret"))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id and client_secret are required".into(),
                );
            };
            let Ok(app_id) = uuid::Uuid::parse_str(id) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id must be a service principal's app id (a UUID)".into(),
                );
            };
            audit.username(id);
            if let Some(wait) = auth.limiter.check(ip, Some(id)) {
                return throttled_login(&audit, OP, wait);
            }
            (
                id.to_string(),
                run_blocking_ok(
                    auth.authenticator
                        .authenticate_client_credentials(&auth.repo, app_id, secret),
                )
                .await,
            )
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "unsupported grant_type '{}' (use password or client_credentials)",
                    other.unwrap_or("")
                ),
            )
        }
    };
    let who = match result {
        Ok(a) => a,
        Err(AuthenticateError::Failure(f)) => {
            auth.limiter.record_failure(ip, Some(&identity));
            tracing::info!(target: "berth::audit", operation = "directory_token", reason = f.code(), client_ip = ?ip, identity = %identity, detail = %f, "directory login refused");
            audit.login_failed(OP, &f);
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                f.client_message(),
            );
        }
        Err(AuthenticateError::Store(e)) => return internal(e),
    };
    audit.principal(&who.principal);
    audit.login(OP, "ok");
    let name = match &who.principal {
        Principal::DirectoryUser { name, .. } | Principal::ServicePrincipal { name, .. } => {
            name.clone()
        }
        other => other.subject(),
    };
    match tokens.issue_identity(
        &who.principal.subject(),
        &name,
        who.principal.reference(),
        who.generation,
        "",
    ) {
        Ok(t) => {
            tracing::info!(target: "berth::audit", operation = "directory_token", principal = %who.principal.reference(), client_ip = ?ip, jti = %t.jti, "directory token issued");
            (
                StatusCode::OK,
                Json(json!({ "access_token": t.token, "token_type": "Bearer", "expires_in": t.expires_in })),
            )
                .into_response()
        }
        Err(e) => internal(e),
    }
}

/// `client_assertion_type` of the federated-credential flow (RFC 7523).
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `client_credentials` with a `client_assertion`: a workload identity.
async fn workload_login(
    auth: &AuthService,
    ip: Option<IpAddr>,
    form: &Form,
) -> Result<
    (
        String,
        Result<Authenticated, AuthenticateError<berth_store::StoreError>>,
    ),
    Response,
> {
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d.into());
    if field(form, "client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
        return Err(bad(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let (Some(id), Some(assertion)) = (field(form, "client_id"), field(form, "client_assertion"))
    else {
        return Err(bad("client_id and client_assertion are required"));
    };
    let Ok(client_id) = uuid::Uuid::parse_str(id) else {
        return Err(bad(
            "client_id must be a workload identity's client id (a UUID)",
        ));
    };
    if let Some(wait) = auth.limiter.check(ip, Some(id)) {
        return Err(throttled(wait));
    }
    Ok((
        id.to_string(),
        auth.authenticate_workload(client_id, assertion).await,
    ))
}

/// `GET /.well-known/jwks.json`.
async fn jwks(State(auth): State<Arc<AuthService>>) -> Response {
    Json(auth.token_service().keys().jwks()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): token request bodies (form fields, scopes)
    /// parse or are refused with 400, never a panic.
    #[test]
    fn fuzz_token_request_forms() {
        berth_core::fuzz::run(
            "token_form",
            &[
                b"grant_type=password&service=reg&scope=repository%3Aa%3Apull&username=u&password=p",
                b"grant_type=refresh_token&refresh_token=a.b.c&scope=repository:a:pull+repository:b:push",
                b"a=%zz&b",
                b"&&==",
            ],
            |bytes| {
                if let Ok(form) = parse_form(&Bytes::copy_from_slice(bytes)) {
                    let scopes = all(&form, "scope");
                    let _ = berth_auth::scope::parse_scope_params(scopes.iter().copied());
                    let _ = pull_only(&scopes);
                    let _ = field(&form, "grant_type");
                }
            },
        );
    }
}
