//! `/api/v1/groups`: directory groups and their members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_store::identity::GroupInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::users::user_id;
use super::ApiState;

/// A group.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    /// Object id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Member user ids.
    pub members: Vec<Uuid>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

impl From<GroupInfo> for GroupView {
    fn from(g: GroupInfo) -> Self {
        GroupView {
            id: g.id,
            name: g.name,
            members: g.members,
            created_at: g.created_at,
        }
    }
}

/// `POST /api/v1/groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Group name: 1-128 characters, no control characters or surrounding spaces.
    #[schema(
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
}

/// `POST /api/v1/groups/{name}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user's name.
    pub user: String,
}

/// The group called `name`, or 404.
pub(super) async fn group_by_name(state: &ApiState, name: &str) -> MgmtResult<GroupInfo> {
    state
        .auth
        .repo
        .list_groups()
        .await?
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| MgmtError::not_found(format!("no group named {name:?}")))
}

/// Create a group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = CreateGroup,
    responses((status = 201, body = GroupView), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateGroup>,
) -> MgmtResult<(StatusCode, Json<GroupView>)> {
    caller.require(ManagementAction::Write)?;
    if state
        .auth
        .repo
        .list_groups()
        .await?
        .iter()
        .any(|g| g.name == req.name)
    {
        return Err(
            MgmtError::conflict(format!("a group named {:?} exists", req.name)).field("name"),
        );
    }
    let id = state
        .auth
        .repo
        .create_group(&req.name)
        .await
        .map_err(|e| MgmtError::from(e).field("name"))?;
    let g = state
        .auth
        .repo
        .get_group(id)
        .await?
        .ok_or_else(|| MgmtError::internal("created group vanished"))?;
    Ok((StatusCode::CREATED, Json(g.into())))
}

/// List groups.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, body = Vec<GroupView>)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> MgmtResult<Json<Vec<GroupView>>> {
    caller.require(ManagementAction::Read)?;
    let groups = state.auth.repo.list_groups().await?;
    Ok(Json(groups.into_iter().map(GroupView::from).collect()))
}

/// Show a group.
#[utoipa::path(get, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "group name")),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<Json<GroupView>> {
    caller.require(ManagementAction::Read)?;
    Ok(Json(group_by_name(&state, &name).await?.into()))
}

/// Delete a group.
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "group name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "it holds the last registry-wide Owner role assignment", body = ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::Write)?;
    let g = group_by_name(&state, &name).await?;
    let me = berth_auth::role::Assignee::Group(g.id);
    super::role_assignments::keep_an_owner(
        &state,
        |i| i.assignment.assignee == me,
        "deleting this group",
    )
    .await?;
    state.auth.repo.delete_group(g.id).await?;
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a user to a group.
#[utoipa::path(post, path = "/api/v1/groups/{name}/members", tag = "groups", request_body = AddMember,
    params(("name" = String, Path, description = "group name")),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody)))]
pub async fn add_member(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<AddMember>,
) -> MgmtResult<Json<GroupView>> {
    caller.require(ManagementAction::Write)?;
    let g = group_by_name(&state, &name).await?;
    let user = user_id(&state, &req.user)
        .await
        .map_err(|e| e.field("user"))?;
    state.auth.repo.add_group_member(g.id, user).await?;
    state.auth.policy_changed().await;
    Ok(Json(group_by_name(&state, &name).await?.into()))
}

/// Remove a user from a group.
#[utoipa::path(delete, path = "/api/v1/groups/{name}/members/{user}", tag = "groups",
    params(("name" = String, Path, description = "group name"), ("user" = String, Path, description = "user name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<ApiState>,
    caller: Caller,
    Path((name, user)): Path<(String, String)>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::Write)?;
    let g = group_by_name(&state, &name).await?;
    let user_id = user_id(&state, &user).await?;
    if !state.auth.repo.remove_group_member(g.id, user_id).await? {
        return Err(MgmtError::not_found(format!(
            "{user:?} is not a member of {name:?}"
        )));
    }
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
