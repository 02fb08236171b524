//! `POST /api/v1/purge`: delete old tags and the manifests they leave
//! untagged, in the manner of `acr purge` (docs/api.md, "Purge").

use axum::extract::State;
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_store::purge::{parse_ago, PurgeFilter, PurgeOptions, PurgeReport};
use serde::Deserialize;
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, JsonBody, MgmtError, MgmtResult};
use super::ApiState;

/// Most filters in one purge.
const MAX_FILTERS: usize = 100;

/// `POST /api/v1/purge`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartPurge {
    /// `<repository-regex>:<tag-regex>`; both expressions must match the
    /// whole name (they are anchored). At least one.
    #[serde(alias = "filter")]
    #[schema(min_items = 1, max_items = 100)]
    pub filters: Vec<String>,
    /// Tags last updated longer ago than this go: `30d`, `2d3h6m`, `12h`, `0`.
    #[schema(pattern = "^[0-9][0-9a-z ]*$")]
    pub ago: String,
    /// Also delete the manifests of the matched repositories that have been
    /// untagged for longer than `ago`.
    #[serde(default)]
    pub untagged: bool,
    /// Of the tags that would go, keep the newest this many per repository.
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 0)]
    pub keep: Option<u64>,
    /// Only report what would be deleted.
    #[serde(default)]
    pub dry_run: bool,
}

/// Delete the tags the filters match that were last updated before `ago`
/// (keeping the newest `keep`), then the manifests left untagged, with the
/// children of deleted indexes and the referrers of deleted manifests.
/// Their blobs are freed by the next garbage collection.
#[utoipa::path(post, path = "/api/v1/purge", tag = "gc", request_body = StartPurge,
    responses((status = 200, body = PurgeReport), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<StartPurge>,
) -> MgmtResult<Json<PurgeReport>> {
    caller.require(ManagementAction::Write)?;
    if req.filters.is_empty() {
        return Err(MgmtError::invalid(
            "filters",
            "give at least one filter '<repository-regex>:<tag-regex>'",
        ));
    }
    if req.filters.len() > MAX_FILTERS {
        return Err(MgmtError::invalid(
            "filters",
            format!("at most {MAX_FILTERS} filters"),
        ));
    }
    let filters = req
        .filters
        .iter()
        .map(|f| f.parse::<PurgeFilter>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MgmtError::invalid("filters", e))?;
    let ago = parse_ago(&req.ago).map_err(|e| MgmtError::invalid("ago", e))?;
    let keep = usize::try_from(req.keep.unwrap_or(0)).unwrap_or(usize::MAX);
    let Some(gc) = state.gc.clone() else {
        return Err(MgmtError::internal("purge is not configured"));
    };
    let identity = crate::audit::identity_of(&caller.principal);
    let options = PurgeOptions {
        filters,
        ago,
        untagged: req.untagged,
        keep,
        dry_run: req.dry_run,
        sink: None,
    };
    // The purge goes on even if the client disconnects.
    let report = tokio::spawn(async move { gc.purge(options, identity).await })
        .await
        .map_err(MgmtError::internal)??;
    Ok(Json(report))
}
