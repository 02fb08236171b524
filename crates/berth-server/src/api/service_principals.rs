//! `/api/v1/service-principals`: application identities and their secrets.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_store::identity::ServicePrincipalInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::{expiry, hash_secret, ApiState, SecretView};

/// Default validity of a client secret: one year.
const DEFAULT_SECRET_DAYS: u64 = 365;

/// A service principal (never its secret hashes).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalView {
    /// App (client) id: the Basic username.
    pub app_id: Uuid,
    /// Display name.
    pub name: String,
    /// Whether it may log in.
    pub enabled: bool,
    /// Its client secrets (ids and expiry only).
    pub secrets: Vec<SecretView>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

impl From<ServicePrincipalInfo> for ServicePrincipalView {
    fn from(s: ServicePrincipalInfo) -> Self {
        ServicePrincipalView {
            app_id: s.app_id,
            name: s.name,
            enabled: s.enabled,
            secrets: s.secrets.into_iter().map(SecretView::from).collect(),
            created_at: s.created_at,
        }
    }
}

/// `POST /api/v1/service-principals`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateServicePrincipal {
    /// Display name.
    #[schema(
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// Secret validity in days (default 365).
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expiration_in_days: Option<u64>,
}

/// Body of the credential endpoints.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSecret {
    /// Secret validity in days (default 365).
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expiration_in_days: Option<u64>,
}

/// A new client secret, shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedSecret {
    /// App id.
    pub app_id: Uuid,
    /// Display name.
    pub name: String,
    /// The secret.
    pub secret: String,
    /// The secret's id (to delete it later).
    pub secret_id: Uuid,
    /// Unix seconds after which the secret no longer works.
    pub expires_at: Option<u64>,
}

async fn find(state: &ApiState, app_id: &str) -> MgmtResult<ServicePrincipalInfo> {
    let id = Uuid::parse_str(app_id)
        .map_err(|_| MgmtError::not_found(format!("no service principal {app_id:?}")))?;
    state
        .auth
        .repo
        .get_service_principal(id)
        .await?
        .ok_or_else(|| MgmtError::not_found(format!("no service principal {app_id}")))
}

async fn issue(
    state: &ApiState,
    sp: &ServicePrincipalInfo,
    days: Option<u64>,
) -> MgmtResult<IssuedSecret> {
    let expires_at = expiry(
        state,
        Some(days.unwrap_or(DEFAULT_SECRET_DAYS)),
        "expirationInDays",
    )?;
    let secret = berth_auth::password::generate_secret();
    let phc = hash_secret(state, &secret).await?;
    let secret_id = state
        .auth
        .repo
        .add_service_principal_secret(sp.app_id, &phc, expires_at)
        .await?;
    state.auth.policy_changed().await;
    Ok(IssuedSecret {
        app_id: sp.app_id,
        name: sp.name.clone(),
        secret,
        secret_id,
        expires_at,
    })
}

/// Create a service principal with one secret.
#[utoipa::path(post, path = "/api/v1/service-principals", tag = "service-principals",
    request_body = CreateServicePrincipal,
    responses((status = 201, body = IssuedSecret), (status = 400, body = ErrorBody), (status = 409, description = "the name is taken", body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateServicePrincipal>,
) -> MgmtResult<(StatusCode, Json<IssuedSecret>)> {
    caller.require(ManagementAction::Write)?;
    expiry(&state, req.expiration_in_days, "expirationInDays")?;
    let app_id = state
        .auth
        .repo
        .create_service_principal(&req.name)
        .await
        .map_err(|e| MgmtError::from(e).field("name"))?;
    let sp = find(&state, &app_id.to_string()).await?;
    let issued = issue(&state, &sp, req.expiration_in_days).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// List service principals.
#[utoipa::path(get, path = "/api/v1/service-principals", tag = "service-principals",
    responses((status = 200, body = Vec<ServicePrincipalView>)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> MgmtResult<Json<Vec<ServicePrincipalView>>> {
    caller.require(ManagementAction::Read)?;
    let all = state.auth.repo.list_service_principals().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Show a service principal.
#[utoipa::path(get, path = "/api/v1/service-principals/{appId}", tag = "service-principals",
    params(("appId" = String, Path, description = "app id")),
    responses((status = 200, body = ServicePrincipalView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> MgmtResult<Json<ServicePrincipalView>> {
    caller.require(ManagementAction::Read)?;
    Ok(Json(find(&state, &app_id).await?.into()))
}

/// Delete a service principal.
#[utoipa::path(delete, path = "/api/v1/service-principals/{appId}", tag = "service-principals",
    params(("appId" = String, Path, description = "app id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "it holds the last registry-wide Owner role assignment", body = ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::Write)?;
    let sp = find(&state, &app_id).await?;
    let me = berth_auth::role::Assignee::ServicePrincipal(sp.app_id);
    super::role_assignments::keep_an_owner(
        &state,
        |i| i.assignment.assignee == me,
        "deleting this service principal",
    )
    .await?;
    state.auth.repo.delete_service_principal(sp.app_id).await?;
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove every secret and issue a new one.
#[utoipa::path(post, path = "/api/v1/service-principals/{appId}/credentials/reset", tag = "service-principals",
    request_body = Option<NewSecret>, params(("appId" = String, Path, description = "app id")),
    responses((status = 200, body = IssuedSecret), (status = 404, body = ErrorBody)))]
pub async fn reset(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    body: Option<JsonBody<NewSecret>>,
) -> MgmtResult<Json<IssuedSecret>> {
    caller.require(ManagementAction::Write)?;
    let req = body.map(|b| b.0).unwrap_or_default();
    let sp = find(&state, &app_id).await?;
    expiry(&state, req.expiration_in_days, "expirationInDays")?;
    state
        .auth
        .repo
        .remove_all_service_principal_secrets(sp.app_id)
        .await?;
    Ok(Json(issue(&state, &sp, req.expiration_in_days).await?))
}

/// Add a secret.
#[utoipa::path(post, path = "/api/v1/service-principals/{appId}/credentials", tag = "service-principals",
    request_body = Option<NewSecret>, params(("appId" = String, Path, description = "app id")),
    responses((status = 201, body = IssuedSecret), (status = 404, body = ErrorBody)))]
pub async fn add_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(app_id): Path<String>,
    body: Option<JsonBody<NewSecret>>,
) -> MgmtResult<(StatusCode, Json<IssuedSecret>)> {
    caller.require(ManagementAction::Write)?;
    let req = body.map(|b| b.0).unwrap_or_default();
    let sp = find(&state, &app_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(issue(&state, &sp, req.expiration_in_days).await?),
    ))
}

/// Delete one secret.
#[utoipa::path(delete, path = "/api/v1/service-principals/{appId}/credentials/{secretId}", tag = "service-principals",
    params(("appId" = String, Path, description = "app id"), ("secretId" = String, Path, description = "secret id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path((app_id, secret_id)): Path<(String, String)>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::Write)?;
    let sp = find(&state, &app_id).await?;
    let missing = || MgmtError::not_found(format!("no secret {secret_id:?} on {app_id}"));
    let sid = Uuid::parse_str(&secret_id).map_err(|_| missing())?;
    if !state
        .auth
        .repo
        .remove_service_principal_secret(sp.app_id, sid)
        .await?
    {
        return Err(missing());
    }
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
