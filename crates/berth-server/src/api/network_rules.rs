//! `/api/v1/network-rules`: IP allow rules and the default action.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_store::identity::normalize_network_rule;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::ApiState;

/// The network rule set.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRulesView {
    /// `Allow` (rules not consulted) or `Deny` (only matching clients).
    pub default_action: String,
    /// Allowed addresses and CIDR ranges.
    pub ip_rules: Vec<String>,
}

/// `POST /api/v1/network-rules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddRule {
    /// An IP address or CIDR range.
    #[schema(
        pattern = r"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(/(3[0-2]|[12]?[0-9]))?|(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|:((:[0-9a-fA-F]{1,4}){1,7}|:))(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$"
    )]
    pub ip_address: String,
}

async fn view(state: &ApiState) -> MgmtResult<NetworkRulesView> {
    let config = state.auth.repo.registry_config().await?;
    Ok(NetworkRulesView {
        default_action: config.default_action.to_string(),
        ip_rules: state.auth.repo.network_rules().await?,
    })
}

/// Show the rules.
#[utoipa::path(get, path = "/api/v1/network-rules", tag = "network-rules",
    responses((status = 200, body = NetworkRulesView)))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
) -> MgmtResult<Json<NetworkRulesView>> {
    caller.require(ManagementAction::Read)?;
    Ok(Json(view(&state).await?))
}

/// Add an allow rule.
#[utoipa::path(post, path = "/api/v1/network-rules", tag = "network-rules", request_body = AddRule,
    responses((status = 201, body = NetworkRulesView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<AddRule>,
) -> MgmtResult<(StatusCode, Json<NetworkRulesView>)> {
    caller.require(ManagementAction::ChangePolicies)?;
    if req.ip_address.trim() != req.ip_address {
        return Err(MgmtError::invalid(
            "ipAddress",
            "ipAddress must not have surrounding spaces",
        ));
    }
    normalize_network_rule(&req.ip_address).map_err(|e| MgmtError::from(e).field("ipAddress"))?;
    state.auth.repo.add_network_rule(&req.ip_address).await?;
    state.auth.policy_changed().await;
    Ok((StatusCode::CREATED, Json(view(&state).await?)))
}

/// Remove an allow rule (the CIDR url-encoded: `10.0.0.0%2F8`).
#[utoipa::path(delete, path = "/api/v1/network-rules/{cidr}", tag = "network-rules",
    params(("cidr" = String, Path, description = "address or CIDR, url-encoded")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    Path(cidr): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::ChangePolicies)?;
    let missing = || MgmtError::not_found(format!("no network rule {cidr:?}"));
    let normalized = normalize_network_rule(&cidr).map_err(|_| missing())?;
    if !state.auth.repo.remove_network_rule(&normalized).await? {
        return Err(missing());
    }
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
