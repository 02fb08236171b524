//! `/api/v1/users`: directory users.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_auth::role::Assignee;
use berth_store::identity::UserInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authn::Caller;
use super::error::{JsonBody, MgmtError, MgmtResult};
use super::role_assignments::keep_an_owner;
use super::{hash_secret, ApiState};

/// A directory user (never its password hash).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// Object id.
    pub id: Uuid,
    /// Sign-in name.
    pub name: String,
    /// Whether the user may log in.
    pub enabled: bool,
    /// Whether a password is set.
    pub has_password: bool,
    /// Ids of the user's groups.
    pub groups: Vec<Uuid>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Last change, unix milliseconds.
    pub updated_at: i64,
}

impl From<UserInfo> for UserView {
    fn from(u: UserInfo) -> Self {
        UserView {
            id: u.id,
            name: u.name,
            enabled: u.enabled,
            has_password: u.has_password,
            groups: u.groups,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUser {
    /// Sign-in name: 1-64 characters of `[A-Za-z0-9._@-]`, not a UUID.
    #[schema(
        pattern = r"^(?![0-9a-fA-F]{32}$)(?![0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)[A-Za-z0-9._@-]{1,64}$"
    )]
    pub name: String,
    /// Password, 8-256 characters; generated (and returned once) when absent.
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
}

/// A created user, with the password when berth generated it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    /// The user.
    #[serde(flatten)]
    pub user: UserView,
    /// The generated password (shown only here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `PATCH /api/v1/users/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUser {
    /// Enable or disable the user.
    pub enabled: Option<bool>,
    /// A new password, 8-256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
}

/// The id of the user called `name`, or 404.
pub(super) async fn user_id(state: &ApiState, name: &str) -> MgmtResult<Uuid> {
    match state.auth.repo.user_by_name(name).await? {
        Some(u) => Ok(u.id),
        None => Err(MgmtError::not_found(format!("no user named {name:?}"))),
    }
}

async fn view(state: &ApiState, id: Uuid) -> MgmtResult<UserView> {
    match state.auth.repo.get_user(id).await? {
        Some(u) => Ok(u.into()),
        None => Err(MgmtError::not_found(format!("no user with id {id}"))),
    }
}

fn check_password(p: &str) -> MgmtResult<()> {
    // Characters, as the document's minLength/maxLength count them.
    if !(8..=256).contains(&p.chars().count()) {
        return Err(MgmtError::invalid(
            "password",
            "password must be 8-256 characters long",
        ));
    }
    Ok(())
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateUser>,
) -> MgmtResult<(StatusCode, Json<CreatedUser>)> {
    caller.require(ManagementAction::Write)?;
    berth_store::identity::validate_user_name(&req.name)
        .map_err(|e| MgmtError::from(e).field("name"))?;
    let generated = req.password.is_none();
    let password = req
        .password
        .unwrap_or_else(berth_auth::password::generate_secret);
    check_password(&password)?;
    let phc = hash_secret(&state, &password).await?;
    let id = state.auth.repo.create_user(&req.name, &phc).await?;
    state.auth.policy_changed().await;
    let user = view(&state, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user,
            password: generated.then_some(password),
        }),
    ))
}

/// List users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<UserView>)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> MgmtResult<Json<Vec<UserView>>> {
    caller.require(ManagementAction::Read)?;
    let users = state.auth.repo.list_users().await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// Show a user.
#[utoipa::path(get, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserView), (status = 404, body = super::error::ErrorBody)))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<Json<UserView>> {
    caller.require(ManagementAction::Read)?;
    let id = user_id(&state, &name).await?;
    Ok(Json(view(&state, id).await?))
}

/// Enable/disable a user or set their password.
#[utoipa::path(patch, path = "/api/v1/users/{name}", tag = "users", request_body = UpdateUser,
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserView), (status = 404, body = super::error::ErrorBody), (status = 409, description = "it holds the last registry-wide Owner role assignment", body = super::error::ErrorBody)))]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateUser>,
) -> MgmtResult<Json<UserView>> {
    caller.require(ManagementAction::Write)?;
    let id = user_id(&state, &name).await?;
    if req.enabled == Some(false) {
        let me = Assignee::User(id);
        keep_an_owner(
            &state,
            |i| i.assignment.assignee == me,
            "disabling this user",
        )
        .await?;
    }
    if let Some(p) = &req.password {
        check_password(p)?;
        let phc = hash_secret(&state, p).await?;
        state.auth.repo.set_user_password(id, &phc).await?;
    }
    if let Some(enabled) = req.enabled {
        state.auth.repo.set_user_enabled(id, enabled).await?;
    }
    state.auth.policy_changed().await;
    Ok(Json(view(&state, id).await?))
}

/// Delete a user.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path, description = "user name")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, description = "it holds the last registry-wide Owner role assignment", body = super::error::ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::Write)?;
    let id = user_id(&state, &name).await?;
    let me = Assignee::User(id);
    keep_an_owner(
        &state,
        |i| i.assignment.assignee == me,
        "deleting this user",
    )
    .await?;
    if !state.auth.repo.delete_user(id).await? {
        return Err(MgmtError::not_found(format!("no user named {name:?}")));
    }
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
