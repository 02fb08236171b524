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

/// Largest `keep`.
const MAX_KEEP: u64 = 1_000_000;

/// `POST /api/v1/purge`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartPurge {
    /// `<repository-regex>:<tag-regex>` in the filter grammar
    /// (docs/api.md, "Purge"); both expressions must match the whole name.
    /// 1 to 100 filters.
    #[schema(schema_with = filters_schema)]
    pub filters: Vec<String>,
    /// Tags last updated longer ago than this go: `30d`, `2d3h6m`, `12h`, `0`.
    #[schema(schema_with = ago_schema)]
    pub ago: String,
    /// Also delete the manifests of the matched repositories that have been
    /// untagged for longer than `ago`.
    #[serde(default)]
    pub untagged: bool,
    /// Of the tags that would go, keep the newest this many per repository.
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub keep: Option<u64>,
    /// Only report what would be deleted.
    #[serde(default)]
    pub dry_run: bool,
}

fn filters_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(berth_store::purge::FILTER_PATTERN))
                .max_length(Some(berth_store::purge::MAX_FILTER_LEN)),
        )
        .min_items(Some(1))
        .max_items(Some(MAX_FILTERS))
        .description(Some(
            "`<repository-regex>:<tag-regex>` in the filter grammar (docs/api.md, \"Purge\"); \
             both expressions must match the whole name. 1 to 100 filters.",
        ))
        .build()
}

fn ago_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(berth_store::purge::AGO_PATTERN))
        .max_length(Some(berth_store::purge::MAX_AGO_LEN))
        .description(Some(
            "Tags last updated longer ago than this go: `30d`, `2d3h6m`, `12h`, `0`.",
        ))
        .build()
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
    let keep = req.keep.unwrap_or(0);
    if keep > MAX_KEEP {
        return Err(MgmtError::invalid(
            "keep",
            format!("keep must be between 0 and {MAX_KEEP}"),
        ));
    }
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
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

#[cfg(test)]
mod tests {
    /// The document's grammars are the ones the handler enforces.
    #[test]
    fn document_patterns_are_the_enforced_ones() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(crate::api::ApiDoc::openapi()).expect("document");
        let s = &doc["components"]["schemas"]["StartPurge"]["properties"];
        assert_eq!(
            s["filters"]["items"]["pattern"].as_str(),
            Some(berth_store::purge::FILTER_PATTERN),
            "{s}"
        );
        assert_eq!(
            s["ago"]["pattern"].as_str(),
            Some(berth_store::purge::AGO_PATTERN),
            "{s}"
        );
        assert_eq!(s["filters"]["maxItems"], super::MAX_FILTERS, "{s}");
        assert_eq!(
            s["ago"]["maxLength"],
            berth_store::purge::MAX_AGO_LEN,
            "{s}"
        );
    }
}
