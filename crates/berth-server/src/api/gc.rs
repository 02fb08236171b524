//! `/api/v1/gc`: run a garbage collection and read the status of running
//! and past ones (Owner only; docs/api.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_store::gc::{GcRun, GcStart};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, MgmtError, MgmtResult};
use super::ApiState;

/// `POST /api/v1/gc`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartGc {
    /// Only report what would be deleted.
    #[serde(default)]
    pub dry_run: bool,
}

/// `GET /api/v1/gc`: the running collection (if any) and the latest ones.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcStatus {
    /// The collection running now on any replica, with its progress.
    pub running: Option<GcRun>,
    /// The latest collections, newest first (at most 10).
    pub recent: Vec<GcRun>,
    /// The grace period of this replica, seconds (`--gc-grace`).
    pub grace_seconds: u64,
}

/// Garbage collection is an Owner's operation (the action only Owner holds).
const OWNER: ManagementAction = ManagementAction::ManageRoleAssignments;

/// Run a collection now and answer with what it deleted (or, with
/// `dryRun`, would delete). 409 `GC_RUNNING` while another runs.
#[utoipa::path(post, path = "/api/v1/gc", tag = "gc", request_body = Option<StartGc>,
    responses((status = 200, body = GcRun), (status = 409, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> MgmtResult<Response> {
    caller.require(OWNER)?;
    let req: StartGc = if body.iter().all(u8::is_ascii_whitespace) {
        StartGc::default()
    } else {
        match serde_json::from_slice(&body)
            .map_err(|e| MgmtError::invalid("body", format!("invalid request body: {e}")))?
        {
            // `null` is no body, as on the other optional bodies.
            serde_json::Value::Null => StartGc::default(),
            value => super::error::from_json_object(value)?,
        }
    };
    let Some(gc) = state.gc.clone() else {
        return Err(MgmtError::internal("garbage collection is not configured"));
    };
    let who = caller.principal.reference().to_string();
    let identity = crate::audit::identity_of(&caller.principal);
    // The collection goes on even if the client disconnects.
    let run = tokio::spawn(async move { gc.run(req.dry_run, &who, identity).await })
        .await
        .map_err(MgmtError::internal)??;
    match run {
        GcStart::Ran(r) => Ok((StatusCode::OK, Json(*r)).into_response()),
        GcStart::Busy(running) => {
            let mut e = MgmtError::conflict(match &running {
                Some(r) => format!(
                    "garbage collection {} is already running on {} (phase {})",
                    r.id, r.replica, r.phase
                ),
                None => "another garbage collection is already running".to_string(),
            });
            e.item.code = "GC_RUNNING".to_string();
            Err(e)
        }
    }
}

/// The running collection and the latest ones.
#[utoipa::path(get, path = "/api/v1/gc", tag = "gc",
    responses((status = 200, body = GcStatus), (status = 403, body = ErrorBody)))]
pub async fn status(State(state): State<ApiState>, caller: Caller) -> MgmtResult<Json<GcStatus>> {
    caller.require(OWNER)?;
    let c = state.registry.collector();
    Ok(Json(GcStatus {
        running: c.running().await?,
        recent: c.recent(10).await?,
        grace_seconds: state.gc.as_ref().map(|g| g.grace().as_secs()).unwrap_or(0),
    }))
}

/// One collection by id.
#[utoipa::path(get, path = "/api/v1/gc/{id}", tag = "gc",
    params(("id" = String, Path, description = "collection id")),
    responses((status = 200, body = GcRun), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> MgmtResult<Json<GcRun>> {
    caller.require(OWNER)?;
    state
        .registry
        .collector()
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| MgmtError::not_found(format!("no garbage collection {id:?}")))
}
