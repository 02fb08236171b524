//! `/api/v1/registry`: registry-wide settings.

use axum::extract::State;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_store::identity::{NetworkAction, RegistryConfig};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::ApiState;

/// Registry settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryView {
    /// Registry name (the admin account's username).
    pub name: String,
    /// The login server (`host[:port]`).
    pub login_server: String,
    /// Anonymous pull of every repository.
    pub anonymous_pull_enabled: bool,
    /// Network default action: `Allow` or `Deny`.
    pub default_action: String,
    /// Access-token lifetime, seconds.
    pub access_token_ttl_seconds: u64,
    /// Refresh-token lifetime, seconds.
    pub refresh_token_ttl_seconds: u64,
    /// Identity (directory) token lifetime, seconds.
    pub identity_token_ttl_seconds: u64,
    /// Whether garbage collection deletes untagged manifests.
    pub retention_enabled: bool,
    /// Days a manifest stays after it lost its last tag (when enabled).
    pub retention_untagged_days: u32,
}

/// `PATCH /api/v1/registry`: only the fields given change. New token
/// lifetimes apply to tokens issued after the next server start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRegistry {
    /// Anonymous pull of every repository.
    pub anonymous_pull_enabled: Option<bool>,
    /// `Allow` or `Deny` (any case).
    #[schema(pattern = "^([Aa][Ll][Ll][Oo][Ww]|[Dd][Ee][Nn][Yy])$")]
    pub default_action: Option<String>,
    /// Access-token lifetime, seconds (60 .. one year).
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 60, maximum = 31622400)]
    pub access_token_ttl_seconds: Option<u64>,
    /// Refresh-token lifetime, seconds.
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 60, maximum = 31622400)]
    pub refresh_token_ttl_seconds: Option<u64>,
    /// Identity-token lifetime, seconds.
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 60, maximum = 31622400)]
    pub identity_token_ttl_seconds: Option<u64>,
    /// Whether garbage collection deletes untagged manifests.
    pub retention_enabled: Option<bool>,
    /// Days a manifest stays after it lost its last tag (0 .. 365).
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 0, maximum = 365)]
    pub retention_untagged_days: Option<u64>,
}

/// Shortest accepted token lifetime, seconds.
const MIN_TTL: u64 = 60;
/// Longest accepted token lifetime: one year (366 days).
const MAX_TTL: u64 = 366 * 86400;

fn view(state: &ApiState, c: RegistryConfig) -> RegistryView {
    RegistryView {
        name: state.auth.settings.registry_name.clone(),
        login_server: state.auth.settings.login_server.clone(),
        anonymous_pull_enabled: c.anonymous_pull,
        default_action: c.default_action.to_string(),
        access_token_ttl_seconds: c.access_token_ttl_secs,
        refresh_token_ttl_seconds: c.refresh_token_ttl_secs,
        identity_token_ttl_seconds: c.identity_token_ttl_secs,
        retention_enabled: c.retention_enabled,
        retention_untagged_days: c.retention_untagged_days,
    }
}

/// Show the settings.
#[utoipa::path(get, path = "/api/v1/registry", tag = "registry",
    responses((status = 200, body = RegistryView)))]
pub async fn show(State(state): State<ApiState>, caller: Caller) -> MgmtResult<Json<RegistryView>> {
    caller.require(ManagementAction::Read)?;
    let c = state.auth.repo.registry_config().await?;
    Ok(Json(view(&state, c)))
}

/// Change settings.
#[utoipa::path(patch, path = "/api/v1/registry", tag = "registry", request_body = UpdateRegistry,
    responses((status = 200, body = RegistryView), (status = 400, body = ErrorBody)))]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<UpdateRegistry>,
) -> MgmtResult<Json<RegistryView>> {
    caller.require(ManagementAction::ChangePolicies)?;
    let mut c = state.auth.repo.registry_config().await?;
    if let Some(v) = req.anonymous_pull_enabled {
        c.anonymous_pull = v;
    }
    if let Some(a) = &req.default_action {
        c.default_action = a
            .parse::<NetworkAction>()
            .map_err(|e| MgmtError::from(e).field("defaultAction"))?;
    }
    let ttls = [
        (
            req.access_token_ttl_seconds,
            &mut c.access_token_ttl_secs,
            "accessTokenTtlSeconds",
        ),
        (
            req.refresh_token_ttl_seconds,
            &mut c.refresh_token_ttl_secs,
            "refreshTokenTtlSeconds",
        ),
        (
            req.identity_token_ttl_seconds,
            &mut c.identity_token_ttl_secs,
            "identityTokenTtlSeconds",
        ),
    ];
    for (new, slot, field) in ttls {
        if let Some(v) = new {
            if !(MIN_TTL..=MAX_TTL).contains(&v) {
                return Err(MgmtError::invalid(
                    field,
                    format!("{field} must be between {MIN_TTL} and {MAX_TTL} seconds"),
                ));
            }
            *slot = v;
        }
    }
    if let Some(v) = req.retention_enabled {
        c.retention_enabled = v;
    }
    if let Some(days) = req.retention_untagged_days {
        let max = berth_store::identity::MAX_RETENTION_DAYS;
        c.retention_untagged_days =
            u32::try_from(days)
                .ok()
                .filter(|d| *d <= max)
                .ok_or_else(|| {
                    MgmtError::invalid(
                        "retentionUntaggedDays",
                        format!("retentionUntaggedDays must be between 0 and {max}"),
                    )
                })?;
    }
    c.validate()?;
    state.auth.repo.update_registry_config(&c).await?;
    // New tokens use the new lifetimes at once (tokens already issued keep theirs).
    state.auth.token_service().set_lifetimes(
        c.access_token_ttl_secs,
        c.refresh_token_ttl_secs,
        c.identity_token_ttl_secs,
    );
    state.auth.policy_changed().await;
    Ok(Json(view(&state, c)))
}
