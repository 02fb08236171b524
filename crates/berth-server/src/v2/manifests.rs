//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::manifest::MAX_MANIFEST_BYTES;
use berth_core::{ErrorCode, Reference, RepositoryName};

use crate::audit::RequestAudit;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

fn parse_reference(raw: &str) -> Result<Reference, ApiError> {
    raw.parse::<Reference>().map_err(|e| {
        let code = if raw.contains(':') {
            ErrorCode::DigestInvalid
        } else {
            ErrorCode::ManifestInvalid
        };
        ApiError::msg(code, format!("invalid reference '{raw}': {e}"))
            .detail(serde_json::json!({ "reference": raw }))
    })
}

/// Serve a manifest by tag or digest, byte for byte with its media type.
pub(super) async fn get(
    state: &AppState,
    repo: &RepositoryName,
    raw: &str,
    head: bool,
    audit: &RequestAudit,
) -> ApiResult {
    let reference = parse_reference(raw)?;
    let m = state
        .registry
        .get_manifest(repo, &reference)
        .await?
        .ok_or_else(|| {
            ApiError::msg(
                ErrorCode::ManifestUnknown,
                format!("manifest {reference} is not in repository {repo}"),
            )
            .detail(serde_json::json!({ "reference": raw }))
        })?;
    let len = m.content.len();
    audit.update_repository(|n| {
        n.digest = Some(m.digest.to_string());
        n.media_type = Some(m.media_type.clone());
        n.size = i64::try_from(len).ok();
    });
    let body = if head {
        Body::empty()
    } else {
        Body::from(m.content)
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, m.media_type)
        .header(header::CONTENT_LENGTH, len)
        .header(header::ETAG, format!("\"{}\"", m.digest))
        .header("docker-content-digest", m.digest.to_string())
        .body(body)
        .map_err(|e| ApiError::msg(ErrorCode::Internal, e.to_string()))
}

/// Store a manifest under a tag or its digest.
pub(super) async fn put(
    state: &AppState,
    repo: &RepositoryName,
    raw: &str,
    headers: &HeaderMap,
    body: Body,
    audit: &RequestAudit,
) -> ApiResult {
    let reference = parse_reference(raw)?;
    let too_large = || {
        ApiError::msg(
            ErrorCode::TooLarge,
            format!("manifest is larger than the {MAX_MANIFEST_BYTES}-byte limit"),
        )
    };
    if super::content_length(headers).is_some_and(|l| l > MAX_MANIFEST_BYTES as u64) {
        // Read (and drop) what the client is still sending, as the gate does
        // for its refusals, so it sees the 413 instead of a reset.
        crate::body::drain(body).await;
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
        .await
        .map_err(|_| too_large())?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let out = state
        .registry
        .put_manifest(repo, &reference, content_type, &bytes)
        .await?;
    audit.update_repository(|n| {
        n.digest = Some(out.digest.to_string());
        n.media_type = Some(out.media_type.clone());
        n.artifact_type = out.artifact_type.clone();
        n.size = i64::try_from(bytes.len()).ok();
    });
    let mut resp = Response::builder()
        .status(StatusCode::CREATED)
        .header(
            header::LOCATION,
            format!("/v2/{repo}/manifests/{}", out.digest),
        )
        .header(header::CONTENT_LENGTH, 0)
        .header("docker-content-digest", out.digest.to_string());
    if let Some(subject) = &out.subject {
        resp = resp.header("oci-subject", subject.to_string());
    }
    resp.body(Body::empty())
        .map_err(|e| ApiError::msg(ErrorCode::Internal, e.to_string()))
}

/// Delete a manifest by digest (and its tags), or just a tag.
pub(super) async fn delete(state: &AppState, repo: &RepositoryName, raw: &str) -> ApiResult {
    let reference = parse_reference(raw)?;
    if state.registry.delete_manifest(repo, &reference).await? {
        Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
    } else {
        Err(ApiError::msg(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} is not in repository {repo}"),
        ))
    }
}
