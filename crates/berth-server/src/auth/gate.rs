//! The access gate for `/v2`: who is calling, and may they?
//!
//! Refusals follow the token-auth spec and what real clients need:
//! * no or bad credentials → 401 `UNAUTHORIZED` with the challenge
//!   (`error="invalid_token"` when a presented token is bad);
//! * a valid token that does not cover the request while its identity may do
//!   it → 401 with `error="insufficient_scope"` and the scope, so docker,
//!   containerd and skopeo fetch a new token; if the client comes back with
//!   the same token (oras-py refreshes only after a 403) → 403 `DENIED`
//!   carrying the same challenge;
//! * an identity that may not do the action (Bearer or Basic) → 403 `DENIED`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use berth_auth::authorize::{authorize_action, Decision, PolicyContext};
use berth_auth::credential::{load_policy_context, AuthenticateError};
use berth_auth::error::AuthFailure;
use berth_auth::jwt::AccessClaims;
use berth_auth::principal::{Principal, PrincipalRef};
use berth_auth::scope::{Action, ResourceType};
use futures::future::BoxFuture;
use serde_json::json;

use super::challenge::{
    access_detail, challenge, denied, scopes_of, throttled, unauthorized, ChallengeError,
};
use super::network::client_ip;
use super::AuthService;
use crate::access::{
    AccessGate, Granted, PullCheck, RepoAccess, RepoAction, RequestContext, RequiredAccess,
};
use crate::audit::RequestAudit;

/// Credentials found in the `Authorization` header.
pub enum Credentials {
    /// None sent.
    None,
    /// `Bearer <token>`.
    Bearer(String),
    /// `Basic base64(user:password)`.
    Basic(String, String),
    /// Present but unreadable.
    Malformed,
}

/// Read the `Authorization` header.
pub fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(v) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(v) = v.to_str() else {
        return Credentials::Malformed;
    };
    let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Credentials::Bearer(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((u, p)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Credentials::Basic(u.to_string(), p.to_string());
        }
    }
    Credentials::Malformed
}

/// The (type, name, action) triples a request needs.
pub fn needed(required: &RequiredAccess) -> Vec<(ResourceType, String, Action)> {
    let mut out = Vec::new();
    for r in &required.repositories {
        for a in &r.actions {
            let action = match a {
                RepoAction::Pull => Action::Pull,
                RepoAction::Push => Action::Push,
                RepoAction::Delete => Action::Delete,
            };
            out.push((ResourceType::Repository, r.repository.clone(), action));
        }
    }
    if required.catalog {
        out.push((ResourceType::Registry, "catalog".to_string(), Action::All));
    }
    out
}

impl AccessGate for AuthService {
    fn check<'a>(
        &'a self,
        ctx: &'a RequestContext<'a>,
        required: &'a RequiredAccess,
    ) -> BoxFuture<'a, Result<Granted, Response>> {
        Box::pin(self.check_request(ctx, required))
    }
}

impl AuthService {
    fn challenge_for(&self, required: &RequiredAccess, error: ChallengeError) -> String {
        challenge(
            &self.settings.realm,
            &self.settings.login_server,
            &scopes_of(required),
            error,
        )
    }

    /// [`check_network`](Self::check_network), noting the client address
    /// and, on refusal, an `ip_denied` login attempt of `operation`.
    pub async fn check_network_audited(
        &self,
        ip: Option<IpAddr>,
        audit: &RequestAudit,
        operation: &'static str,
    ) -> Result<(), Response> {
        audit.client_ip(ip);
        let result = self.check_network(ip).await;
        if let Err(r) = &result {
            if r.status() == axum::http::StatusCode::FORBIDDEN {
                audit.login(operation, "ip_denied");
                let ip = ip.map(|i| i.to_string()).unwrap_or_default();
                audit.decided_by(
                    "network_rule",
                    "ip_denied",
                    &format!("client with IP {ip} is not allowed by the network rules (default action Deny)"),
                    json!({ "client_ip": ip, "default_action": "Deny" }),
                );
            }
        }
        result
    }

    /// Refuse clients the network rules do not allow (403 naming the IP).
    pub async fn check_network(&self, ip: Option<IpAddr>) -> Result<(), Response> {
        let policy = self.network_policy().await.map_err(internal)?;
        match ip {
            Some(ip) if !policy.allows(ip) => {
                tracing::info!(target: "berth::audit", reason = "ip_denied", client_ip = %ip, "refused by network rules");
                Err(denied(
                    format!(
                        "client with IP '{ip}' is not allowed access. Add a network rule for it \
                         (berth network-rule add --ip-address {ip}) or set the registry's default \
                         action to Allow"
                    ),
                    json!({ "clientIp": ip.to_string() }),
                    None,
                ))
            }
            _ => Ok(()),
        }
    }

    async fn check_request(
        &self,
        ctx: &RequestContext<'_>,
        required: &RequiredAccess,
    ) -> Result<Granted, Response> {
        let ip = client_ip(ctx.peer, ctx.headers, &self.settings.trusted_proxies);
        let audit = ctx.audit;
        let creds = credentials(ctx.headers);
        let operation = match &creds {
            Credentials::None => "v2_anonymous",
            Credentials::Bearer(_) => "v2_bearer",
            Credentials::Basic(..) => "v2_basic",
            Credentials::Malformed => "v2_malformed",
        };
        audit.explain("asked", asked(required));
        self.check_network_audited(ip, audit, operation).await?;
        match creds {
            Credentials::None => self.anonymous(required).await,
            Credentials::Bearer(token) => self.bearer(&token, required, audit).await,
            Credentials::Basic(user, password) => {
                audit.username(&user);
                self.basic(ip, &user, &password, required, audit).await
            }
            Credentials::Malformed => {
                audit.login_failed(
                    operation,
                    &AuthFailure::MalformedCredentials {
                        detail: "unreadable Authorization header".into(),
                    },
                );
                Err(unauthorized(
                    "malformed Authorization header".into(),
                    access_detail(required),
                    self.challenge_for(required, ChallengeError::None),
                ))
            }
        }
    }

    async fn anonymous(&self, required: &RequiredAccess) -> Result<Granted, Response> {
        if let Some(granted) = self.anonymous_grant(required).await? {
            return Ok(granted);
        }
        Err(unauthorized(
            "authentication required".into(),
            access_detail(required),
            self.challenge_for(required, ChallengeError::None),
        ))
    }

    /// Exactly anonymous access, when anonymous pull is on and the request
    /// only pulls; `None` otherwise.
    async fn anonymous_grant(
        &self,
        required: &RequiredAccess,
    ) -> Result<Option<Granted>, Response> {
        let anonymous_pull = self
            .network_policy()
            .await
            .map_err(internal)?
            .anonymous_pull;
        let only_pull = !required.catalog
            && !required.repositories.is_empty()
            && required
                .repositories
                .iter()
                .all(|r| r.actions.iter().all(|a| *a == RepoAction::Pull));
        Ok((anonymous_pull && only_pull).then(|| Granted {
            optional: required.optional.is_empty(),
            pull_check: None,
        }))
    }

    async fn basic(
        &self,
        ip: Option<IpAddr>,
        user: &str,
        password: &str,
        required: &RequiredAccess,
        audit: &RequestAudit,
    ) -> Result<Granted, Response> {
        const OP: &str = "v2_basic";
        if let Some(wait) = self.limiter.check(ip, Some(user)) {
            audit.login_failed(
                OP,
                &AuthFailure::Throttled {
                    retry_after_secs: wait,
                },
            );
            return Err(throttled(wait));
        }
        let authenticated = match self.authenticate_basic(user, password).await {
            Ok(a) => a,
            Err(AuthenticateError::Failure(f)) => {
                self.limiter.record_failure(ip, Some(user));
                tracing::info!(target: "berth::audit", reason = f.code(), client_ip = ?ip, username = %user, detail = %f, "basic login refused");
                audit.login_failed(OP, &f);
                // Stale credentials must not break anonymous pull: a
                // pull-only request goes on with exactly anonymous access
                // (the failure above is still audited and throttled).
                if let Some(granted) = self.anonymous_grant(required).await? {
                    return Ok(granted);
                }
                return Err(unauthorized(
                    f.client_message(),
                    access_detail(required),
                    self.challenge_for(required, ChallengeError::None),
                ));
            }
            Err(AuthenticateError::Store(e)) => return Err(internal(e)),
        };
        let policy = self
            .cached_policy(&authenticated.principal, authenticated.generation)
            .await
            .map_err(internal)?;
        audit.principal(&authenticated.principal);
        audit.login(OP, "ok");
        self.decide(&authenticated.principal, &policy, required, audit, OP)?;
        let optional =
            optional_allowed(&authenticated.principal, &policy, None, &required.optional);
        let pull_check = required.pull_check.then(|| {
            Arc::new(PolicyPullCheck {
                live: Arc::new((authenticated.principal.clone(), policy)),
                claims: None,
            }) as Arc<dyn PullCheck>
        });
        Ok(Granted {
            optional,
            pull_check,
        })
    }

    /// Every needed action allowed by the live policy, or 403.
    fn decide(
        &self,
        principal: &Principal,
        policy: &PolicyContext,
        required: &RequiredAccess,
        audit: &RequestAudit,
        operation: &'static str,
    ) -> Result<(), Response> {
        for (rt, name, action) in needed(required) {
            let d = authorize_action(principal, policy, rt, &name, action);
            if let Decision::Denied(reason) = &d {
                tracing::info!(target: "berth::audit", reason = reason.code(), principal = %principal.reference(), resource = %name, action = action.as_str(), "access denied");
                note_denial(audit, operation, principal, policy, required, reason);
                return Err(denied(
                    denied_message(principal, policy, rt, &name, action, reason),
                    json!([{ "Type": rt_str(rt), "Name": name, "Action": action.as_str(), "reason": reason.code() }]),
                    None,
                ));
            }
        }
        Ok(())
    }

    async fn bearer(
        &self,
        token: &str,
        required: &RequiredAccess,
        audit: &RequestAudit,
    ) -> Result<Granted, Response> {
        const OP: &str = "v2_bearer";
        let invalid = |f: &AuthFailure| {
            tracing::info!(target: "berth::audit", reason = f.code(), detail = %f, "bearer token refused");
            audit.login_failed(OP, f);
            unauthorized(
                f.client_message(),
                access_detail(required),
                self.challenge_for(required, ChallengeError::InvalidToken),
            )
        };
        let tokens = self.token_service();
        let claims = match self.live.verified(token) {
            Some(c) => c,
            None => {
                let c = Arc::new(tokens.verify_access(token).map_err(|f| invalid(&f))?);
                self.live.remember_verified(token, Arc::clone(&c));
                c
            }
        };
        let now = self.clock.now();
        let leeway = tokens.config().leeway;
        if let Err(f) = berth_auth::jwt::check_times(now, claims.nbf, claims.exp, leeway) {
            return Err(invalid(&f.for_token("access")));
        }
        let live = self
            .live_principal(&claims)
            .await
            .map_err(|f| invalid(&f))?;
        let (principal, policy) = (&live.0, &live.1);
        let mut missing = Vec::new();
        for (rt, name, action) in needed(required) {
            let d = authorize_action(principal, policy, rt, &name, action);
            if let Decision::Denied(reason) = &d {
                // The identity may not do this (any more): no new token helps.
                tracing::info!(target: "berth::audit", reason = reason.code(), principal = %principal.reference(), resource = %name, action = action.as_str(), "access denied");
                note_denial(audit, OP, principal, policy, required, reason);
                return Err(denied(
                    denied_message(principal, policy, rt, &name, action, reason),
                    json!([{ "Type": rt_str(rt), "Name": name, "Action": action.as_str(), "reason": reason.code() }]),
                    Some(self.challenge_for(required, ChallengeError::InsufficientScope)),
                ));
            }
            if !claims.allows(rt, &name, action) {
                missing.push((rt, name, action));
            }
        }
        if missing.is_empty() {
            return Ok(Granted {
                optional: optional_allowed(principal, policy, Some(&*claims), &required.optional),
                pull_check: required.pull_check.then(|| {
                    Arc::new(PolicyPullCheck {
                        live: Arc::clone(&live),
                        claims: Some(Arc::clone(&claims)),
                    }) as Arc<dyn PullCheck>
                }),
            });
        }
        let scope = scopes_of(required).join(" ");
        let challenge = self.challenge_for(required, ChallengeError::InsufficientScope);
        audit.principal(principal);
        audit.explain(
            "granted",
            json!({ "token_access": claims.access, "token_refused": claims.refused }),
        );
        let missing_json: Vec<serde_json::Value> = missing
            .iter()
            .map(|(rt, n, a)| json!({"type": rt_str(*rt), "name": n, "action": a.as_str()}))
            .collect();
        // Asked for and refused when the token was issued, allowed now:
        // role assignments or the scope map changed since.
        let changed = missing
            .iter()
            .find(|(rt, n, a)| claims.refused_at_issue(*rt, n, *a));
        let (reason, message) = match changed {
            Some((_, name, action)) => (
                ACCESS_CHANGED,
                format!(
                    "access changed after this token was issued: {} may now {action} on {name}, \
                     which this token was refused; a new login (or a new token for the scope in \
                     the challenge) picks the change up",
                    berth_auth::refusal::who(principal)
                ),
            ),
            None => (
                "insufficient_scope",
                "the token does not cover this request; request a token for the scope in the challenge"
                    .to_string(),
            ),
        };
        audit.decided_by(
            "token_scope",
            reason,
            if changed.is_some() {
                "the access token was refused this access when issued; role assignments or the scope map changed since, so a new token will carry it"
            } else {
                "the access token does not cover this request; the identity may do it, so a new token for the challenge's scope will"
            },
            json!({ "missing": missing_json }),
        );
        let detail = with_reason(access_detail(required), reason);
        // Replicas on one database share strikes: the client's second try
        // may reach another replica.
        let mut struck = self.live.strike(&claims.jti, &scope);
        if !struck && self.repo.shares_strikes() {
            match self
                .repo
                .strike_token(
                    &claims.jti,
                    &scope,
                    self.live.now(),
                    super::live::STRIKE_TTL,
                )
                .await
            {
                Ok(s) => struck = s,
                Err(e) => tracing::warn!(error = %e, "recording a token strike failed"),
            }
        }
        if struck {
            audit.login(OP, reason);
            return Err(denied(message, detail, Some(challenge)));
        }
        if changed.is_some() {
            audit.login(OP, reason);
        }
        Err(unauthorized(message, detail, challenge))
    }

    /// The policy of a principal that just authenticated (Basic on `/v2`,
    /// or at the token endpoint), from the same live cache bearer tokens
    /// use, so neither a client sending Basic on every request nor token
    /// issuance costs a policy read each time. Policy changes made in this
    /// process clear the cache at once.
    pub(crate) async fn cached_policy(
        &self,
        principal: &Principal,
        generation: u64,
    ) -> Result<PolicyContext, berth_store::StoreError> {
        let key = format!("{}#{generation}", principal.reference());
        if let Some(Ok(cached)) = self.live.principal(&key) {
            if cached.0 == *principal {
                return Ok(cached.1.clone());
            }
        }
        let policy = load_policy_context(&self.repo, principal).await?;
        self.live
            .remember_principal(key, Ok(Arc::new((principal.clone(), policy.clone()))));
        Ok(policy)
    }

    /// The principal a token names, as it is now (cached for
    /// [`super::live::LIVE_TTL`]).
    async fn live_principal(&self, claims: &AccessClaims) -> super::live::LiveEntry {
        let reference = claims.principal.clone().unwrap_or(PrincipalRef::Anonymous);
        let key = format!("{reference}#{}", claims.generation.unwrap_or(0));
        if let Some(entry) = self.live.principal(&key) {
            return entry;
        }
        let entry = self.resolve_live(&reference, claims.generation).await?;
        self.live.remember_principal(key, entry.clone());
        entry
    }

    async fn resolve_live(
        &self,
        reference: &PrincipalRef,
        generation: Option<u64>,
    ) -> Result<super::live::LiveEntry, AuthFailure> {
        let principal = if *reference == PrincipalRef::Anonymous {
            Ok(Principal::Anonymous)
        } else {
            match self
                .authenticator
                .resolve_live(&self.repo, reference, generation.unwrap_or(0))
                .await
            {
                Ok(p) => Ok(p),
                Err(AuthenticateError::Failure(f)) => Err(f),
                Err(AuthenticateError::Store(e)) => {
                    tracing::error!(error = %e, "identity store failure");
                    return Err(AuthFailure::MalformedToken {
                        detail: "identity store unavailable".into(),
                    });
                }
            }
        };
        Ok(match principal {
            Ok(p) => match load_policy_context(&self.repo, &p).await {
                Ok(ctx) => Ok(Arc::new((p, ctx))),
                Err(e) => {
                    tracing::error!(error = %e, "policy store failure");
                    return Err(AuthFailure::MalformedToken {
                        detail: "policy store unavailable".into(),
                    });
                }
            },
            Err(f) => Err(f),
        })
    }
}

/// The audit reason of a token refused access that its identity gained
/// after the token was issued.
pub const ACCESS_CHANGED: &str = "access_changed";

/// `detail` entries (`[{"Type","Name","Action"}]`) with a `reason` each.
fn with_reason(mut detail: serde_json::Value, reason: &str) -> serde_json::Value {
    if let Some(items) = detail.as_array_mut() {
        for item in items {
            item["reason"] = json!(reason);
        }
    }
    detail
}

/// Whether every optional access is allowed by the policy (and, for a
/// bearer token, granted by the token).
fn optional_allowed(
    principal: &Principal,
    policy: &PolicyContext,
    claims: Option<&AccessClaims>,
    optional: &[RepoAccess],
) -> bool {
    let required = RequiredAccess {
        repositories: optional.to_vec(),
        ..RequiredAccess::default()
    };
    needed(&required).into_iter().all(|(rt, name, action)| {
        claims.is_none_or(|c| c.allows(rt, &name, action))
            && authorize_action(principal, policy, rt, &name, action).is_allowed()
    })
}

/// A [`PullCheck`] deciding with the principal and policy the request was
/// decided with, and, for a bearer token, within the token's access.
struct PolicyPullCheck {
    live: Arc<(Principal, PolicyContext)>,
    claims: Option<Arc<AccessClaims>>,
}

impl PullCheck for PolicyPullCheck {
    fn may_pull(&self, repository: &str) -> bool {
        let (rt, action) = (ResourceType::Repository, Action::Pull);
        self.claims
            .as_ref()
            .is_none_or(|c| c.allows(rt, repository, action))
            && authorize_action(&self.live.0, &self.live.1, rt, repository, action).is_allowed()
    }
}

/// What a request asked for, for the explain record.
fn asked(required: &RequiredAccess) -> serde_json::Value {
    serde_json::Value::Array(
        needed(required)
            .into_iter()
            .map(|(rt, name, action)| json!({ "type": rt_str(rt), "name": name, "action": action.as_str() }))
            .collect(),
    )
}

/// Note a policy refusal: the login outcome, who, every needed action's
/// decision (what is granted and by which rule) and the deciding rule.
fn note_denial(
    audit: &RequestAudit,
    operation: &'static str,
    principal: &Principal,
    policy: &PolicyContext,
    required: &RequiredAccess,
    reason: &berth_auth::error::DenyReason,
) {
    audit.principal(principal);
    audit.login(operation, reason.code());
    let granted: Vec<serde_json::Value> = needed(required)
        .into_iter()
        .map(|(rt, name, action)| {
            let d = authorize_action(principal, policy, rt, &name, action);
            json!({ "type": rt_str(rt), "name": name, "action": action.as_str(), "decision": d })
        })
        .collect();
    audit.explain("granted", serde_json::Value::Array(granted));
    audit.denied_by(reason);
}

/// The 403 message: docker's familiar "requested access to the resource is
/// denied", then who may not do what and what is missing (for a
/// repository: [`berth_auth::refusal::repository_denied`]).
fn denied_message(
    principal: &Principal,
    policy: &PolicyContext,
    rt: ResourceType,
    name: &str,
    action: Action,
    reason: &berth_auth::error::DenyReason,
) -> String {
    const BASE: &str = "requested access to the resource is denied";
    match rt {
        ResourceType::Repository => format!(
            "{BASE}: {}",
            berth_auth::refusal::repository_denied(principal, policy, action, name, reason)
        ),
        ResourceType::Registry => BASE.to_string(),
    }
}

fn rt_str(rt: ResourceType) -> &'static str {
    match rt {
        ResourceType::Repository => "repository",
        ResourceType::Registry => "registry",
    }
}

/// A 500 for a storage failure behind the gate.
pub fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "identity layer failure");
    super::challenge::refusal(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        berth_core::OciError::with_message(
            berth_core::ErrorCode::Internal,
            "internal error in the identity layer; see the server log",
        ),
        None,
        None,
    )
}

/// Run a future that may block for a while (argon2 on a credential-cache
/// miss) without stalling the other tasks of this worker thread.
pub async fn run_blocking_ok<F: std::future::Future>(fut: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(fut))
        }
        _ => fut.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): any `Authorization` value is read as Bearer,
    /// Basic or malformed without a panic.
    #[test]
    fn fuzz_authorization_headers() {
        berth_core::fuzz::run(
            "authorization",
            &[
                b"Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig",
                b"Basic YWxpY2U6c2VjcmV0",
                b"basic  YWxpY2U6",
                b"Basic",
                b"Negotiate abc",
            ],
            |bytes| {
                let Ok(value) = axum::http::HeaderValue::from_bytes(bytes) else {
                    return;
                };
                let mut headers = HeaderMap::new();
                headers.insert(axum::http::header::AUTHORIZATION, value);
                if let Credentials::Bearer(t) = credentials(&headers) {
                    assert!(!t.is_empty());
                }
            },
        );
    }
}
