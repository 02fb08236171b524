//! `/api/v1/scope-maps`: the repository permissions of tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_auth::scope_map::ScopeMap;
use berth_store::identity::ScopeMapInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::ApiState;

/// A scope map with its lint warnings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeMapView {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `repositories/<repo>/<action>` rules.
    pub actions: Vec<String>,
    /// Built-in (`_repositories_*`), read-only.
    pub system: bool,
    /// Valid but probably mistaken rules.
    pub warnings: Vec<String>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Last change, unix milliseconds.
    pub updated_at: i64,
}

/// Lint warnings of a stored rule set.
pub(super) fn lint(name: &str, rules: &[String]) -> Vec<String> {
    ScopeMap::parse(name, rules)
        .map(|m| m.lint().iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

impl From<ScopeMapInfo> for ScopeMapView {
    fn from(m: ScopeMapInfo) -> Self {
        ScopeMapView {
            warnings: lint(&m.name, &m.rules),
            name: m.name,
            description: m.description,
            actions: m.rules,
            system: m.system,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// `POST /api/v1/scope-maps`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateScopeMap {
    /// 5-50 characters of `[a-zA-Z0-9_-]`, not starting `_repositories_`
    /// (the system maps' prefix).
    #[schema(pattern = r"^(?!_repositories_)[a-zA-Z0-9_-]{5,50}$")]
    pub name: String,
    /// Free text, at most 512 characters.
    #[schema(max_length = 512)]
    pub description: Option<String>,
    /// `repositories/<repo>/<action>` rules.
    #[schema(schema_with = rule_list)]
    pub actions: Vec<String>,
}

/// `PUT /api/v1/scope-maps/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplaceScopeMap {
    /// New description (kept when absent), at most 512 characters.
    #[schema(max_length = 512)]
    pub description: Option<String>,
    /// The new rules (replace the old ones).
    #[schema(schema_with = rule_list)]
    pub actions: Vec<String>,
}

/// The grammar of a rule: `repositories/`, then `*` or a repository name
/// (at most 255 characters) optionally followed by `/*`, then `/` and an
/// action.
pub const RULE_PATTERN: &str = r"^repositories/(\*|(?=[a-z0-9._/-]{1,255}(/\*)?/(content|metadata)/[a-z]+$)[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*(/\*)?)/(content/(read|write|delete)|metadata/(read|write))$";

/// `actions` of a scope map: up to [`berth_auth::scope_map::MAX_RULES`]
/// rules in [`RULE_PATTERN`]'s grammar.
fn rule_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(RULE_PATTERN)),
        )
        .max_items(Some(berth_auth::scope_map::MAX_RULES))
        .build()
}

/// System scope maps cannot be changed or deleted: 409.
fn refuse_system(name: &str) -> MgmtResult<()> {
    if ScopeMap::system(name).is_some() {
        return Err(MgmtError::conflict(format!(
            "{name:?} is a system scope map and cannot be changed or deleted"
        )));
    }
    Ok(())
}

/// Validate `rules` before storing them, naming the field on error.
pub(super) fn check_rules(name: &str, rules: &[String]) -> MgmtResult<()> {
    // Counted before duplicates are dropped, as the document's maxItems is.
    if rules.len() > berth_auth::scope_map::MAX_RULES {
        return Err(MgmtError::invalid(
            "actions",
            format!(
                "a scope map may hold at most {} rules",
                berth_auth::scope_map::MAX_RULES
            ),
        ));
    }
    ScopeMap::parse(name, rules).map_err(|e| MgmtError::invalid("actions", e.to_string()))?;
    Ok(())
}

async fn find(state: &ApiState, name: &str) -> MgmtResult<ScopeMapInfo> {
    state
        .auth
        .repo
        .get_scope_map(name)
        .await?
        .ok_or_else(|| MgmtError::not_found(format!("no scope map named {name:?}")))
}

/// Create a scope map.
#[utoipa::path(post, path = "/api/v1/scope-maps", tag = "scope-maps", request_body = CreateScopeMap,
    responses((status = 201, body = ScopeMapView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateScopeMap>,
) -> MgmtResult<(StatusCode, Json<ScopeMapView>)> {
    caller.require(ManagementAction::Write)?;
    berth_auth::scope_map::validate_scope_map_name(&req.name)
        .map_err(|e| MgmtError::invalid("name", e.to_string()))?;
    check_rules(&req.name, &req.actions)?;
    state
        .auth
        .repo
        .create_scope_map(
            &req.name,
            req.description.as_deref().unwrap_or(""),
            &req.actions,
        )
        .await?;
    state.auth.policy_changed().await;
    Ok((
        StatusCode::CREATED,
        Json(find(&state, &req.name).await?.into()),
    ))
}

/// Replace a scope map's rules.
#[utoipa::path(put, path = "/api/v1/scope-maps/{name}", tag = "scope-maps", request_body = ReplaceScopeMap,
    params(("name" = String, Path, description = "scope map name")),
    responses((status = 200, body = ScopeMapView), (status = 404, body = ErrorBody),
        (status = 409, description = "a system scope map", body = ErrorBody)))]
pub async fn replace(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<ReplaceScopeMap>,
) -> MgmtResult<Json<ScopeMapView>> {
    caller.require(ManagementAction::Write)?;
    let old = find(&state, &name).await?;
    refuse_system(&name)?;
    check_rules(&name, &req.actions)?;
    let description = req.description.unwrap_or(old.description);
    state
        .auth
        .repo
        .update_scope_map(&name, &description, &req.actions)
        .await?;
    state.auth.policy_changed().await;
    Ok(Json(find(&state, &name).await?.into()))
}

/// List scope maps (system maps included).
#[utoipa::path(get, path = "/api/v1/scope-maps", tag = "scope-maps",
    responses((status = 200, body = Vec<ScopeMapView>)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> MgmtResult<Json<Vec<ScopeMapView>>> {
    caller.require(ManagementAction::Read)?;
    let all = state.auth.repo.list_scope_maps().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// Show a scope map.
#[utoipa::path(get, path = "/api/v1/scope-maps/{name}", tag = "scope-maps",
    params(("name" = String, Path, description = "scope map name")),
    responses((status = 200, body = ScopeMapView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<Json<ScopeMapView>> {
    caller.require(ManagementAction::Read)?;
    Ok(Json(find(&state, &name).await?.into()))
}

/// Delete a scope map (refused while a token uses it).
#[utoipa::path(delete, path = "/api/v1/scope-maps/{name}", tag = "scope-maps",
    params(("name" = String, Path, description = "scope map name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::Write)?;
    refuse_system(&name)?;
    if !state.auth.repo.delete_scope_map(&name).await? {
        return Err(MgmtError::not_found(format!("no scope map named {name:?}")));
    }
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
