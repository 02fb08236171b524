//! Who is calling the management API, and may they do this.
//!
//! `Authorization: Bearer <directory token>` (from `POST /directory/token`)
//! or `Basic` with a directory user's name and password (or a service
//! principal's app id and secret). The admin account and repository tokens
//! authenticate but hold no management rights: [`authorize_management`]
//! refuses them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_auth::authorize::{authorize_management, Decision, ManagementAction, PolicyContext};
use berth_auth::credential::{load_policy_context, AuthenticateError};
use berth_auth::principal::Principal;

use super::error::MgmtError;
use super::ApiState;
use crate::audit::{RepoNote, RequestAudit};
use crate::auth::gate::{credentials, run_blocking_ok, Credentials};

/// An authenticated caller with the policy that applies to them.
pub struct Caller {
    /// Who.
    pub principal: Principal,
    policy: PolicyContext,
    audit: RequestAudit,
}

impl Caller {
    /// A caller authenticated another way (the web portal's session
    /// cookie), so the portal runs the same handlers and checks.
    pub(crate) fn authenticated(
        principal: Principal,
        policy: PolicyContext,
        audit: RequestAudit,
    ) -> Self {
        Caller {
            principal,
            policy,
            audit,
        }
    }

    /// Note the repository operation this management request makes (a
    /// repository audit event attributed to the caller).
    pub fn note_repository(&self, note: RepoNote) {
        self.audit.principal(&self.principal);
        self.audit.repository(note);
    }

    /// Refuse with 403 unless the caller's roles allow `action`.
    pub fn require(&self, action: ManagementAction) -> Result<(), MgmtError> {
        match authorize_management(&self.principal, &self.policy, action) {
            Decision::Allowed(_) => Ok(()),
            Decision::Denied(reason) => {
                tracing::info!(target: "berth::audit", operation = "management", principal = %self.principal.reference(), needed = %action, reason = reason.code(), "management request refused");
                self.audit.principal(&self.principal);
                self.audit.login(OPERATION, reason.code());
                self.audit
                    .explain("asked", serde_json::json!({ "management": action }));
                self.audit.denied_by(&reason);
                Err(MgmtError::denied(berth_auth::refusal::management_denied(
                    &self.principal,
                    action,
                    &reason,
                )))
            }
        }
    }
}

/// The login-event operation of management API requests. Successful
/// management logins are not recorded as login events; failures and
/// refusals are.
const OPERATION: &str = "management";

/// The directory token endpoint, advertised in the 401 challenge.
fn directory_realm(state: &ApiState) -> String {
    let realm = &state.auth.settings.realm;
    match realm.rsplit_once("/oauth2/token") {
        Some((base, _)) => format!("{base}/directory/token"),
        None => format!("{realm}/directory/token"),
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = MgmtError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, MgmtError> {
        let auth = &state.auth;
        let realm = directory_realm(state);
        let audit = parts
            .extensions
            .get::<RequestAudit>()
            .cloned()
            .unwrap_or_else(|| RequestAudit::new(""));
        let tokens = auth.token_service();
        let result = match credentials(&parts.headers) {
            Credentials::Bearer(t) => {
                auth.authenticator
                    .authenticate_identity_token(&auth.repo, &tokens, &t)
                    .await
            }
            Credentials::Basic(u, p) => {
                audit.username(&u);
                run_blocking_ok(
                    auth.authenticator
                        .authenticate_basic(&auth.repo, &tokens, &u, &p),
                )
                .await
            }
            Credentials::None => {
                return Err(MgmtError::unauthorized(
                    "authentication required: send a directory token as Bearer",
                    &realm,
                ))
            }
            Credentials::Malformed => {
                return Err(MgmtError::unauthorized(
                    "the Authorization header is malformed",
                    &realm,
                ))
            }
        };
        let who = match result {
            Ok(a) => a,
            Err(AuthenticateError::Failure(f)) => {
                tracing::info!(target: "berth::audit", operation = "management", reason = f.code(), detail = %f, "management login refused");
                audit.login_failed(OPERATION, &f);
                return Err(MgmtError::unauthorized(f.client_message(), &realm));
            }
            Err(AuthenticateError::Store(e)) => return Err(MgmtError::internal(e)),
        };
        let policy = load_policy_context(&auth.repo, &who.principal)
            .await
            .map_err(MgmtError::internal)?;
        Ok(Caller {
            principal: who.principal,
            policy,
            audit,
        })
    }
}
