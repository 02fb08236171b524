//! `GET /v2/<name>/referrers/<digest>` (OCI distribution v1.1).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{MediaType, RepositoryName};

use super::{parse_digest, Query};
use crate::error::ApiResult;
use crate::AppState;

/// The image index listing every manifest whose subject is the digest.
pub(super) async fn list(
    state: &AppState,
    repo: &RepositoryName,
    raw: &str,
    query: &Query,
) -> ApiResult {
    let subject = parse_digest(raw)?;
    let filter = query
        .get("artifactType")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let manifests = state.registry.referrers(repo, &subject, filter).await?;
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_INDEX,
        "manifests": manifests,
    });
    let mut resp: Response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, MediaType::OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            header::HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}
