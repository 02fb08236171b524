//! `/api/v1/workload-identities`: identities that log in with a token from
//! a trusted external OIDC issuer (a federated credential) instead of a
//! secret.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_store::identity::{NewWorkloadIdentity, WorkloadIdentityInfo};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::ApiState;

/// A workload identity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentityView {
    /// Client id: the `client_id` of the login.
    pub client_id: Uuid,
    /// Display name.
    pub name: String,
    /// Trusted issuer URL (`iss` must equal it).
    pub issuer: String,
    /// Required `sub`.
    pub subject: String,
    /// Required `aud`.
    pub audience: String,
    /// Whether it may log in.
    pub enabled: bool,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

impl From<WorkloadIdentityInfo> for WorkloadIdentityView {
    fn from(w: WorkloadIdentityInfo) -> Self {
        WorkloadIdentityView {
            client_id: w.client_id,
            name: w.name,
            issuer: w.issuer,
            subject: w.subject,
            audience: w.audience,
            enabled: w.enabled,
            created_at: w.created_at,
        }
    }
}

/// `POST /api/v1/workload-identities`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkloadIdentity {
    /// Display name (unique).
    #[schema(
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    /// Issuer URL: `https://` and a DNS name or IPv4 address (plain
    /// `http://` only on loopback: `localhost`, `127.0.0.0/8`, `[::1]`),
    /// an optional port and path, no query or fragment.
    #[schema(
        pattern = r"^(https://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|http://(localhost|127\.((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){2}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|\[::1\]))(:[0-9]{1,5})?(/[^?#\x00-\x20\x7f-\x9f]*)?$"
    )]
    pub issuer: String,
    /// The `sub` its tokens carry: 1-512 characters, no control characters.
    #[schema(pattern = r"^[^\x00-\x1f\x7f-\x9f]{1,512}$")]
    pub subject: String,
    /// The `aud` its tokens carry: 1-512 characters, no control characters.
    #[schema(pattern = r"^[^\x00-\x1f\x7f-\x9f]{1,512}$")]
    pub audience: String,
}

/// `PATCH /api/v1/workload-identities/{clientId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWorkloadIdentity {
    /// Enable or disable it (disabling stops its tokens within 60 s).
    pub enabled: Option<bool>,
}

async fn find(state: &ApiState, client_id: &str) -> MgmtResult<WorkloadIdentityInfo> {
    let id = Uuid::parse_str(client_id)
        .map_err(|_| MgmtError::not_found(format!("no workload identity {client_id:?}")))?;
    state
        .auth
        .repo
        .get_workload_identity(id)
        .await?
        .ok_or_else(|| MgmtError::not_found(format!("no workload identity {client_id}")))
}

/// Create a workload identity.
#[utoipa::path(post, path = "/api/v1/workload-identities", tag = "workload-identities",
    request_body = CreateWorkloadIdentity,
    responses((status = 201, body = WorkloadIdentityView), (status = 400, body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateWorkloadIdentity>,
) -> MgmtResult<(StatusCode, Json<WorkloadIdentityView>)> {
    caller.require(ManagementAction::Write)?;
    let id = state
        .auth
        .repo
        .create_workload_identity(&NewWorkloadIdentity {
            name: &req.name,
            issuer: &req.issuer,
            subject: &req.subject,
            audience: &req.audience,
        })
        .await?;
    let w = find(&state, &id.to_string()).await?;
    Ok((StatusCode::CREATED, Json(w.into())))
}

/// List workload identities.
#[utoipa::path(get, path = "/api/v1/workload-identities", tag = "workload-identities",
    responses((status = 200, body = Vec<WorkloadIdentityView>)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> MgmtResult<Json<Vec<WorkloadIdentityView>>> {
    caller.require(ManagementAction::Read)?;
    let all = state.auth.repo.list_workload_identities().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Show a workload identity.
#[utoipa::path(get, path = "/api/v1/workload-identities/{clientId}", tag = "workload-identities",
    params(("clientId" = String, Path, description = "client id")),
    responses((status = 200, body = WorkloadIdentityView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> MgmtResult<Json<WorkloadIdentityView>> {
    caller.require(ManagementAction::Read)?;
    Ok(Json(find(&state, &client_id).await?.into()))
}

/// Enable or disable a workload identity.
#[utoipa::path(patch, path = "/api/v1/workload-identities/{clientId}", tag = "workload-identities",
    request_body = UpdateWorkloadIdentity, params(("clientId" = String, Path, description = "client id")),
    responses((status = 200, body = WorkloadIdentityView), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(client_id): Path<String>,
    JsonBody(req): JsonBody<UpdateWorkloadIdentity>,
) -> MgmtResult<Json<WorkloadIdentityView>> {
    caller.require(ManagementAction::Write)?;
    let w = find(&state, &client_id).await?;
    if let Some(enabled) = req.enabled {
        state
            .auth
            .repo
            .set_workload_identity_enabled(w.client_id, enabled)
            .await?;
        state.auth.policy_changed().await;
    }
    Ok(Json(find(&state, &client_id).await?.into()))
}

/// Delete a workload identity and its role assignments.
#[utoipa::path(delete, path = "/api/v1/workload-identities/{clientId}", tag = "workload-identities",
    params(("clientId" = String, Path, description = "client id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "it holds the last registry-wide Owner role assignment", body = ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::Write)?;
    let w = find(&state, &client_id).await?;
    let me = berth_auth::role::Assignee::ServicePrincipal(w.client_id);
    super::role_assignments::keep_an_owner(
        &state,
        |i| i.assignment.assignee == me,
        "deleting this workload identity",
    )
    .await?;
    state
        .auth
        .repo
        .delete_workload_identity(w.client_id)
        .await?;
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    /// The document's issuer pattern is the one the store enforces.
    #[test]
    fn issuer_pattern_is_the_enforced_one() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(crate::api::ApiDoc::openapi()).expect("document");
        let issuer =
            &doc["components"]["schemas"]["CreateWorkloadIdentity"]["properties"]["issuer"];
        assert_eq!(
            issuer["pattern"].as_str(),
            Some(berth_store::identity::ISSUER_PATTERN)
        );
    }
}
