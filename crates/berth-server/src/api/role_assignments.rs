//! `/api/v1/role-assignments`: who holds which built-in role. Owner only
//! for changes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_auth::role::{Assignee, Role, RoleScope};
use berth_store::identity::RoleAssignmentInfo;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::groups::group_by_name;
use super::ApiState;

/// A role assignment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentView {
    /// Assignment id.
    pub id: Uuid,
    /// `user`, `group` or `service_principal`.
    pub assignee_kind: String,
    /// Object id of the assignee.
    pub assignee_id: Uuid,
    /// Assignee's name, when it still exists.
    pub assignee_name: Option<String>,
    /// Role (`Owner`, `Contributor`, `Reader`, `AcrPush`, ...).
    pub role: String,
    /// `registry` or `repositories/<prefix>/*`.
    pub scope: String,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

/// `POST /api/v1/role-assignments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRoleAssignment {
    /// A user name, a group name or a service principal's app id.
    pub assignee: String,
    /// The role.
    #[schema(pattern = "^(Owner|Contributor|Reader|AcrPush|AcrPull|AcrDelete|AcrImageSigner)$")]
    pub role: String,
    /// `registry`, `repositories/<prefix>/*` or `repositories/<name>` (a
    /// repository name of at most 255 characters); whole registry when absent.
    #[schema(
        pattern = r"^(registry|repositories/(?=[a-z0-9._/-]{1,255}(/\*)?$)[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*(/\*)?)$"
    )]
    pub scope: Option<String>,
}

/// Filter of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A user name, group name or app id.
    pub assignee: Option<String>,
}

/// Refuse (409) a change after which no registry-wide Owner role
/// assignment would be left: `losing` says which assignments the change
/// takes away; `what` names the change for the message. Without an Owner
/// nobody could manage role assignments any more.
pub(super) async fn keep_an_owner(
    state: &ApiState,
    losing: impl Fn(&RoleAssignmentInfo) -> bool,
    what: &str,
) -> MgmtResult<()> {
    let owners: Vec<RoleAssignmentInfo> = state
        .auth
        .repo
        .list_role_assignments(None)
        .await?
        .into_iter()
        .filter(|i| i.assignment.role == Role::Owner && i.assignment.scope == RoleScope::Registry)
        .collect();
    if !owners.is_empty() && owners.iter().all(&losing) {
        return Err(MgmtError::conflict(format!(
            "{what} would leave the registry without an Owner: assign Owner (registry-wide) to another user first"
        )));
    }
    Ok(())
}

/// Resolve a user name, group name or app id.
async fn resolve_assignee(state: &ApiState, name: &str) -> MgmtResult<Assignee> {
    let repo = &state.auth.repo;
    if let Ok(id) = Uuid::parse_str(name) {
        if repo.get_service_principal(id).await?.is_some()
            || repo.get_workload_identity(id).await?.is_some()
        {
            return Ok(Assignee::ServicePrincipal(id));
        }
    }
    // A workload identity is assigned like a service principal, by client id.
    if let Some(w) = repo.workload_identity_by_name(name).await? {
        return Ok(Assignee::ServicePrincipal(w.client_id));
    }
    if let Some(u) = repo.user_by_name(name).await? {
        return Ok(Assignee::User(u.id));
    }
    if let Ok(g) = group_by_name(state, name).await {
        return Ok(Assignee::Group(g.id));
    }
    Err(MgmtError::not_found(format!(
        "no user, group, service principal or workload identity {name:?}"
    ))
    .field("assignee"))
}

async fn assignee_name(state: &ApiState, a: &Assignee) -> MgmtResult<Option<String>> {
    let repo = &state.auth.repo;
    Ok(match a {
        Assignee::User(id) => repo.get_user(*id).await?.map(|u| u.name),
        Assignee::Group(id) => repo.get_group(*id).await?.map(|g| g.name),
        Assignee::ServicePrincipal(id) => match repo.get_service_principal(*id).await? {
            Some(s) => Some(s.name),
            None => repo.get_workload_identity(*id).await?.map(|w| w.name),
        },
    })
}

async fn view(state: &ApiState, info: RoleAssignmentInfo) -> MgmtResult<RoleAssignmentView> {
    let a = &info.assignment;
    let (kind, id) = match a.assignee {
        Assignee::User(id) => ("user", id),
        Assignee::Group(id) => ("group", id),
        Assignee::ServicePrincipal(id) => ("service_principal", id),
    };
    Ok(RoleAssignmentView {
        id: info.id,
        assignee_kind: kind.into(),
        assignee_id: id,
        assignee_name: assignee_name(state, &a.assignee).await?,
        role: a.role.to_string(),
        scope: a.scope.to_string(),
        created_at: info.created_at,
    })
}

/// Assign a role.
#[utoipa::path(post, path = "/api/v1/role-assignments", tag = "role-assignments",
    request_body = CreateRoleAssignment,
    responses((status = 201, body = RoleAssignmentView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "no such assignee", body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateRoleAssignment>,
) -> MgmtResult<(StatusCode, Json<RoleAssignmentView>)> {
    caller.require(ManagementAction::ManageRoleAssignments)?;
    let role: Role = req
        .role
        .parse()
        .map_err(|e: berth_auth::role::UnknownRole| MgmtError::invalid("role", e.to_string()))?;
    let scope: RoleScope = match &req.scope {
        None => RoleScope::Registry,
        Some(s) => s.parse().map_err(|e: berth_auth::role::InvalidRoleScope| {
            MgmtError::invalid("scope", e.to_string())
        })?,
    };
    let assignee = resolve_assignee(&state, &req.assignee).await?;
    let id = state
        .auth
        .repo
        .create_role_assignment(&assignee, role, &scope)
        .await?;
    state.auth.policy_changed().await;
    let info = state
        .auth
        .repo
        .get_role_assignment(id)
        .await?
        .ok_or_else(|| MgmtError::internal("created role assignment vanished"))?;
    Ok((StatusCode::CREATED, Json(view(&state, info).await?)))
}

/// List role assignments.
#[utoipa::path(get, path = "/api/v1/role-assignments", tag = "role-assignments", params(ListQuery),
    responses((status = 200, body = Vec<RoleAssignmentView>)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> MgmtResult<Json<Vec<RoleAssignmentView>>> {
    caller.require(ManagementAction::Read)?;
    // A filter naming nobody matches nothing.
    let filter = match &q.assignee {
        Some(name) => match resolve_assignee(&state, name).await {
            Ok(a) => Some(a),
            Err(e) if e.status == StatusCode::NOT_FOUND => return Ok(Json(Vec::new())),
            Err(e) => return Err(e),
        },
        None => None,
    };
    let all = state
        .auth
        .repo
        .list_role_assignments(filter.as_ref())
        .await?;
    let mut out = Vec::with_capacity(all.len());
    for info in all {
        out.push(view(&state, info).await?);
    }
    Ok(Json(out))
}

/// Delete a role assignment.
#[utoipa::path(delete, path = "/api/v1/role-assignments/{id}", tag = "role-assignments",
    params(("id" = String, Path, description = "assignment id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the last registry-wide Owner role assignment", body = ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> MgmtResult<StatusCode> {
    caller.require(ManagementAction::ManageRoleAssignments)?;
    let missing = || MgmtError::not_found(format!("no role assignment {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| missing())?;
    keep_an_owner(
        &state,
        |i| i.id == uuid,
        "deleting the last registry-wide Owner role assignment",
    )
    .await?;
    if !state.auth.repo.delete_role_assignment(uuid).await? {
        return Err(missing());
    }
    state.auth.policy_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
