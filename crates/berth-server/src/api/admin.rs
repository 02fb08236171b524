//! `/api/v1/admin`: the registry's admin account.

use axum::extract::State;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::{hash_secret, ApiState, SecretView};

/// The admin account (never the hashes).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminView {
    /// Whether admin logins work.
    pub enabled: bool,
    /// The username: the registry name.
    pub username: String,
    /// The passwords that are set.
    pub passwords: Vec<SecretView>,
    /// New passwords, only in the response that generated them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new_passwords: Vec<NamedPassword>,
}

/// A freshly generated password.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamedPassword {
    /// `password` or `password2`.
    pub name: String,
    /// The password (shown only here).
    pub value: String,
}

/// `POST /api/v1/admin/renew`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenewAdmin {
    /// `password` or `password2`.
    #[schema(pattern = r"^password2?$")]
    pub password_name: String,
}

async fn view(state: &ApiState, new_passwords: Vec<NamedPassword>) -> MgmtResult<AdminView> {
    let a = state.auth.repo.get_admin().await?;
    Ok(AdminView {
        enabled: a.enabled,
        username: state.auth.settings.registry_name.clone(),
        passwords: a.passwords.into_iter().map(SecretView::from).collect(),
        new_passwords,
    })
}

fn slot_name(which: u8) -> &'static str {
    if which == 1 {
        "password"
    } else {
        "password2"
    }
}

async fn renew_slot(state: &ApiState, which: u8) -> MgmtResult<NamedPassword> {
    let value = berth_auth::password::generate_secret();
    let phc = hash_secret(state, &value).await?;
    state.auth.repo.set_admin_password(which, &phc).await?;
    Ok(NamedPassword {
        name: slot_name(which).into(),
        value,
    })
}

/// Show the admin account.
#[utoipa::path(get, path = "/api/v1/admin", tag = "admin", responses((status = 200, body = AdminView)))]
pub async fn show(State(state): State<ApiState>, caller: Caller) -> MgmtResult<Json<AdminView>> {
    caller.require(ManagementAction::Read)?;
    Ok(Json(view(&state, Vec::new()).await?))
}

/// Enable the admin account; the first time, both passwords are generated
/// and returned.
#[utoipa::path(post, path = "/api/v1/admin/enable", tag = "admin", responses((status = 200, body = AdminView)))]
pub async fn enable(State(state): State<ApiState>, caller: Caller) -> MgmtResult<Json<AdminView>> {
    caller.require(ManagementAction::Write)?;
    let mut fresh = Vec::new();
    if state.auth.repo.get_admin().await?.passwords.is_empty() {
        fresh.push(renew_slot(&state, 1).await?);
        fresh.push(renew_slot(&state, 2).await?);
    }
    state.auth.repo.set_admin_enabled(true).await?;
    state.auth.policy_changed().await;
    Ok(Json(view(&state, fresh).await?))
}

/// Disable the admin account.
#[utoipa::path(post, path = "/api/v1/admin/disable", tag = "admin", responses((status = 200, body = AdminView)))]
pub async fn disable(State(state): State<ApiState>, caller: Caller) -> MgmtResult<Json<AdminView>> {
    caller.require(ManagementAction::Write)?;
    state.auth.repo.set_admin_enabled(false).await?;
    state.auth.policy_changed().await;
    Ok(Json(view(&state, Vec::new()).await?))
}

/// Regenerate one admin password.
#[utoipa::path(post, path = "/api/v1/admin/renew", tag = "admin", request_body = RenewAdmin,
    responses((status = 200, body = AdminView), (status = 400, body = ErrorBody)))]
pub async fn renew(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<RenewAdmin>,
) -> MgmtResult<Json<AdminView>> {
    caller.require(ManagementAction::Write)?;
    let which = match req.password_name.as_str() {
        "password" => 1,
        "password2" => 2,
        _ => {
            return Err(MgmtError::invalid(
                "passwordName",
                "passwordName must be \"password\" or \"password2\"",
            ))
        }
    };
    let fresh = renew_slot(&state, which).await?;
    state.auth.policy_changed().await;
    Ok(Json(view(&state, vec![fresh]).await?))
}
