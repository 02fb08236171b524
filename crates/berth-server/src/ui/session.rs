//! Signing in to the portal, its sessions and CSRF tokens.
//!
//! * Sign-in takes a directory user's name and password, or a service
//!   principal's app id and client secret, and verifies them exactly like a
//!   Basic login ([`AuthService::authenticate_basic`]), with the same
//!   failed-login throttling; every attempt is a login audit event of
//!   operation `portal`.
//! * A session is a random 256-bit token in the `berth_session` cookie
//!   (`HttpOnly`, `SameSite=Strict`, `Path=/ui`, `Secure` under TLS). The
//!   database keeps its SHA-256, the principal, the credential generation
//!   at sign-in and the session's CSRF token. It ends after
//!   [`SESSION_TTL_MS`], after [`IDLE_TTL_MS`] without a request, at
//!   sign-out, or when the identity is disabled, deleted or its credential
//!   regenerated.
//! * Every form carries the session's CSRF token (the sign-in form a
//!   pre-session one from the `berth_login_csrf` cookie); a POST without
//!   the right one is refused with 403.
//! * Without a session the viewer is anonymous: what anonymous pull allows.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine;
use berth_auth::authorize::{
    authorize_action, authorize_management, Decision, ManagementAction, PolicyContext,
};
use berth_auth::credential::{load_policy_context, AuthenticateError};
use berth_auth::error::AuthFailure;
use berth_auth::principal::{Principal, PrincipalRef};
use berth_auth::scope::{Action, ResourceType};
use berth_store::portal::PortalSession;
use maud::html;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::layout::{self, Page};
use super::UiState;
use crate::api::authn::Caller;
use crate::audit::RequestAudit;
use crate::auth::token_api::PeerAddr;

/// The session cookie.
pub const SESSION_COOKIE: &str = "berth_session";
/// The sign-in form's CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "berth_login_csrf";
/// A session ends this long after sign-in (8 hours).
pub const SESSION_TTL_MS: i64 = 8 * 3600 * 1000;
/// A session ends after this long without a request (30 minutes).
pub const IDLE_TTL_MS: i64 = 30 * 60 * 1000;
/// Activity is written back at most this often (1 minute).
const TOUCH_EVERY_MS: i64 = 60 * 1000;
/// The login-event operation of portal sign-ins.
pub const OPERATION: &str = "portal";

/// Who a page is rendered for: the signed-in principal, or anonymous.
pub struct Viewer {
    /// Who (`Principal::Anonymous` without a session).
    pub principal: Principal,
    /// Their roles, scope map and the registry settings.
    pub policy: PolicyContext,
    /// The session, when signed in.
    pub session: Option<PortalSession>,
    /// This request's audit draft.
    pub audit: RequestAudit,
}

impl Viewer {
    /// Whether signed in.
    pub fn signed_in(&self) -> bool {
        self.session.is_some()
    }

    /// The CSRF token forms must carry (empty when anonymous).
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf.as_str())
    }

    /// Whether the management API would allow `action`.
    pub fn may(&self, action: ManagementAction) -> bool {
        authorize_management(&self.principal, &self.policy, action).is_allowed()
    }

    /// The decision for `action` on `repository`.
    pub fn decide(&self, repository: &str, action: Action) -> Decision {
        authorize_action(
            &self.principal,
            &self.policy,
            ResourceType::Repository,
            repository,
            action,
        )
    }

    /// May the viewer see `repository` (pull it, or read the registry's
    /// configuration through the management API)?
    pub fn may_view(&self, repository: &str) -> bool {
        self.may(ManagementAction::Read) || self.decide(repository, Action::Pull).is_allowed()
    }

    /// May the viewer list every repository (the catalog)?
    pub fn may_list(&self) -> bool {
        self.may(ManagementAction::Read)
            || authorize_action(
                &self.principal,
                &self.policy,
                ResourceType::Registry,
                berth_auth::scope::CATALOG,
                Action::All,
            )
            .is_allowed()
    }

    /// May the viewer delete tags and manifests of `repository`: the
    /// management API's write right, or the `delete` action there.
    pub fn may_delete(&self, repository: &str) -> bool {
        self.may(ManagementAction::Write) || self.decide(repository, Action::Delete).is_allowed()
    }

    /// Whether anonymous visitors see anything at all.
    pub fn anonymous_pull(&self) -> bool {
        self.policy.settings.anonymous_pull
    }

    /// The management API caller for this viewer, so the portal runs the
    /// API's own handlers with their checks.
    pub fn caller(&self) -> Caller {
        Caller::authenticated(
            self.principal.clone(),
            self.policy.clone(),
            self.audit.clone(),
        )
    }

    /// A display name for the navigation bar.
    pub fn display_name(&self) -> String {
        match &self.principal {
            Principal::DirectoryUser { name, .. } => name.clone(),
            Principal::ServicePrincipal { name, .. } => format!("{name} (service principal)"),
            Principal::Anonymous => "anonymous".into(),
            other => other.reference().to_string(),
        }
    }

    /// Refuse a POST whose `csrf` field is not this session's token.
    pub fn check_csrf(&self, presented: &str) -> Result<(), Response> {
        match &self.session {
            Some(s) if constant_eq(s.csrf.as_bytes(), presented.as_bytes()) => Ok(()),
            Some(_) => Err(layout::error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form did not carry this session's CSRF token. Reload the page and try again.",
            )),
            None => Err(Redirect::to("/ui/login").into_response()),
        }
    }

    /// Refuse unless signed in (and, when anonymous pull is off, unless
    /// signed in for anything at all).
    pub fn require_signed_in(&self) -> Result<(), Response> {
        if self.signed_in() {
            Ok(())
        } else {
            Err(Redirect::to("/ui/login").into_response())
        }
    }
}

/// Compare without an early exit.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 256 random bits, URL-safe base64.
fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The stored id of a cookie token.
fn session_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(state: &UiState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.secure { "; Secure" } else { "" };
    let v = format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn now_ms(state: &UiState) -> i64 {
    i64::try_from(state.api.auth.clock.now())
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// The live session of the request's cookie, with its principal.
async fn live_session(
    state: &UiState,
    headers: &HeaderMap,
) -> Result<Option<(PortalSession, Principal)>, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id = session_id(token);
    let Some(s) = state.portal.session(&id).await.map_err(internal)? else {
        return Ok(None);
    };
    let now = now_ms(state);
    if s.expires_at <= now || s.last_seen_at + IDLE_TTL_MS <= now {
        let _ = state.portal.delete_session(&id).await;
        return Ok(None);
    }
    let Ok(r) = s.principal.parse::<PrincipalRef>() else {
        return Ok(None);
    };
    let auth = &state.api.auth;
    let principal = match auth
        .authenticator
        .resolve_live(&auth.repo, &r, s.generation)
        .await
    {
        Ok(p) => p,
        Err(AuthenticateError::Failure(f)) => {
            tracing::info!(target: "berth::audit", operation = OPERATION, principal = %r, reason = f.code(), "portal session ended");
            let _ = state.portal.delete_session(&id).await;
            return Ok(None);
        }
        Err(AuthenticateError::Store(e)) => return Err(internal(e)),
    };
    if now - s.last_seen_at >= TOUCH_EVERY_MS {
        state
            .portal
            .touch_session(&id, now)
            .await
            .map_err(internal)?;
    }
    Ok(Some((s, principal)))
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "portal failure");
    layout::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "berth could not complete this page; the server log has the details.",
    )
}

impl FromRequestParts<UiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, Response> {
        let audit = parts
            .extensions
            .get::<RequestAudit>()
            .cloned()
            .unwrap_or_else(|| RequestAudit::new(""));
        let (session, principal) = match live_session(state, &parts.headers).await? {
            Some((s, p)) => (Some(s), p),
            None => (None, Principal::Anonymous),
        };
        let policy = load_policy_context(&state.api.auth.repo, &principal)
            .await
            .map_err(internal)?;
        Ok(Viewer {
            principal,
            policy,
            session,
            audit,
        })
    }
}

/// The client address, as the gate computes it.
fn client_ip(
    state: &UiState,
    parts_peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    crate::auth::network::client_ip(
        parts_peer.map(|p| p.ip()),
        headers,
        &state.api.auth.settings.trusted_proxies,
    )
}

/// `GET /ui/login`: the sign-in form.
pub async fn login_page(State(state): State<UiState>, viewer: Viewer) -> Response {
    if viewer.signed_in() {
        return Redirect::to("/ui/repositories").into_response();
    }
    sign_in_form(&state, &viewer, None, StatusCode::OK)
}

fn sign_in_form(
    state: &UiState,
    viewer: &Viewer,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = random_token();
    let body = html! {
        section.signin {
            h1 { "Sign in to " (state.api.auth.settings.login_server) }
            @if let Some(e) = error {
                p.alert.bad role="alert" { (e) }
            }
            form method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "User name or service principal app id" }
                input #username type="text" name="username" autocomplete="username" required autofocus;
                label for="password" { "Password or client secret" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            @if viewer.anonymous_pull() {
                p.muted { "Anonymous pull is on: you may also "
                    a href="/ui/repositories" { "look up a repository" } " without signing in." }
            }
        }
    };
    let mut resp = layout::render(viewer, Page::SignIn, "Sign in", body);
    *resp.status_mut() = status;
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, 3600),
    );
    resp
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignIn {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/login`: verify the credentials and start a session.
pub async fn login_submit(
    State(state): State<UiState>,
    viewer: Viewer,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !constant_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The sign-in form did not carry its CSRF token. Reload the page and try again.",
        );
    }
    let auth = &state.api.auth;
    let audit = &viewer.audit;
    let ip = client_ip(&state, peer, &headers);
    audit.client_ip(ip);
    audit.username(&form.username);
    let refuse = |f: &AuthFailure| {
        tracing::info!(target: "berth::audit", operation = OPERATION, reason = f.code(), detail = %f, "portal sign-in refused");
        audit.login_failed(OPERATION, f);
        f.client_message()
    };
    if let Some(wait) = auth.limiter.check(ip, Some(&form.username)) {
        let msg = refuse(&AuthFailure::Throttled {
            retry_after_secs: wait,
        });
        return sign_in_form(&state, &viewer, Some(&msg), StatusCode::TOO_MANY_REQUESTS);
    }
    let who = match auth
        .authenticate_basic(&form.username, &form.password)
        .await
    {
        Ok(w) => w,
        Err(AuthenticateError::Failure(f)) => {
            auth.limiter.record_failure(ip, Some(&form.username));
            let msg = refuse(&f);
            return sign_in_form(&state, &viewer, Some(&msg), StatusCode::UNAUTHORIZED);
        }
        Err(AuthenticateError::Store(e)) => return internal(e),
    };
    audit.principal(&who.principal);
    if !matches!(
        who.principal,
        Principal::DirectoryUser { .. } | Principal::ServicePrincipal { .. }
    ) {
        audit.login(OPERATION, "portal_identity_kind");
        audit.decided_by(
            "credential",
            "portal_identity_kind",
            "the portal signs in directory users and service principals only",
            serde_json::json!({ "principal_kind": who.principal.kind().code() }),
        );
        return sign_in_form(
            &state,
            &viewer,
            Some("The portal signs in directory users and service principals; the admin account and repository tokens cannot sign in here."),
            StatusCode::FORBIDDEN,
        );
    }
    audit.login(OPERATION, "ok");
    let token = random_token();
    let now = now_ms(&state);
    let session = PortalSession {
        id: session_id(&token),
        principal: who.principal.reference().to_string(),
        generation: who.generation,
        csrf: random_token(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + SESSION_TTL_MS,
    };
    if let Err(e) = state.portal.create_session(&session).await {
        return internal(e);
    }
    if let Err(e) = state.portal.purge_sessions(now, now - IDLE_TTL_MS).await {
        tracing::warn!(error = %e, "purging expired portal sessions");
    }
    let mut resp = Redirect::to("/ui/repositories").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, SESSION_TTL_MS / 1000),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
    );
    resp
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: end the session.
pub async fn logout(
    State(state): State<UiState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = viewer.check_csrf(&form.csrf) {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.portal.delete_session(&session_id(token)).await {
            return internal(e);
        }
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_tokens() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; berth_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "missing"), None);
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token());
        assert_eq!(session_id("x").len(), 64);
        assert!(constant_eq(b"abc", b"abc"));
        assert!(!constant_eq(b"abc", b"abd"));
        assert!(!constant_eq(b"abc", b"ab"));
    }
}
