//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::manifest::MAX_MANIFEST_BYTES;
use berth_core::{ErrorCode, Reference, RepositoryName, Tag};

use crate::audit::RequestAudit;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Why `raw` is neither a valid tag nor a valid digest.
fn invalid_reference_reason(raw: &str, e: &str) -> String {
    if raw.contains(':') {
        format!("'{raw}' is not a valid digest: {e}")
    } else {
        not_a_tag(raw)
    }
}

fn not_a_tag(raw: &str) -> String {
    format!("'{raw}' is not a valid tag: must match `[a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}`")
}

/// The reference of a PUT: an invalid one is a 400 with the spec's code
/// (DIGEST_INVALID for a digest, MANIFEST_INVALID for a tag).
fn parse_push_reference(raw: &str) -> Result<Reference, ApiError> {
    raw.parse::<Reference>().map_err(|e| {
        let code = if raw.contains(':') {
            ErrorCode::DigestInvalid
        } else {
            ErrorCode::ManifestInvalid
        };
        ApiError::msg(code, invalid_reference_reason(raw, &e))
            .detail(serde_json::json!({ "reference": raw }))
    })
}

/// The reference of a GET, HEAD or DELETE: a manifest under a reference
/// that is neither a tag nor a digest cannot exist, so it is not found (404
/// MANIFEST_UNKNOWN, as the conformance suite, distribution and zot have it),
/// and the message says why.
fn parse_lookup_reference(raw: &str) -> Result<Reference, ApiError> {
    raw.parse::<Reference>().map_err(|e| {
        ApiError::msg(
            ErrorCode::ManifestUnknown,
            invalid_reference_reason(raw, &e),
        )
        .detail(serde_json::json!({ "reference": raw }))
    })
}

/// The `tag` query parameters of a manifest PUT (repeatable), each checked
/// against the tag grammar.
fn tag_parameters(query: Option<&str>) -> Result<Vec<Tag>, ApiError> {
    let Some(query) = query.filter(|q| q.contains("tag=")) else {
        return Ok(Vec::new());
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| {
        ApiError::msg(
            ErrorCode::ManifestInvalid,
            format!("unreadable query string: {e}"),
        )
    })?;
    pairs
        .into_iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| {
            v.parse::<Tag>().map_err(|_| {
                ApiError::msg(
                    ErrorCode::ManifestInvalid,
                    format!("tag parameter {}", not_a_tag(&v)),
                )
                .detail(serde_json::json!({ "tag": v }))
            })
        })
        .collect()
}

/// The 404 for a manifest not in `repo`; for a digest that a sparse
/// manifest of `repo` lists, it says that it was never pushed. HEAD has no
/// body, so it skips the lookup.
async fn not_found(
    state: &AppState,
    repo: &RepositoryName,
    reference: &Reference,
    raw: &str,
    head: bool,
) -> ApiError {
    let mut message = format!("manifest {reference} is not in repository {repo}");
    if let (Reference::Digest(d), false) = (reference, head) {
        match state.registry.sparse_referrer_of(repo, d).await {
            Ok(Some(parent)) => {
                message = format!(
                    "manifest {d} was never pushed to repository {repo}: index {parent} lists it \
                     and was accepted as a sparse manifest"
                );
            }
            Ok(None) => {}
            Err(e) => return e.into(),
        }
    }
    ApiError::msg(ErrorCode::ManifestUnknown, message)
        .detail(serde_json::json!({ "reference": raw }))
}

/// Serve a manifest by tag or digest, byte for byte with its media type.
pub(super) async fn get(
    state: &AppState,
    repo: &RepositoryName,
    raw: &str,
    head: bool,
    audit: &RequestAudit,
) -> ApiResult {
    let reference = parse_lookup_reference(raw)?;
    let Some(m) = state.registry.get_manifest(repo, &reference).await? else {
        return Err(not_found(state, repo, &reference, raw, head).await);
    };
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

/// Store a manifest under a tag or its digest, and under the `?tag=`
/// parameters (each answered with an `OCI-Tag` header).
pub(super) async fn put(
    state: &AppState,
    repo: &RepositoryName,
    raw: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    audit: &RequestAudit,
) -> ApiResult {
    let reference = parse_push_reference(raw)?;
    let tags = tag_parameters(query)?;
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
        .put_manifest(
            repo,
            &reference,
            &tags,
            content_type,
            &bytes,
            &state.manifest_validation,
        )
        .await?;
    audit.update_repository(|n| {
        if !tags.is_empty() {
            let mut all: Vec<&str> = n.tag.as_deref().into_iter().collect();
            all.extend(
                tags.iter()
                    .map(Tag::as_str)
                    .filter(|t| n.tag.as_deref() != Some(*t)),
            );
            n.tag = Some(all.join(","));
        }
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
    for tag in &tags {
        resp = resp.header("oci-tag", tag.as_str());
    }
    resp.body(Body::empty())
        .map_err(|e| ApiError::msg(ErrorCode::Internal, e.to_string()))
}

/// Delete a manifest by digest (and its tags), or just a tag.
pub(super) async fn delete(state: &AppState, repo: &RepositoryName, raw: &str) -> ApiResult {
    let reference = parse_lookup_reference(raw)?;
    if state.registry.delete_manifest(repo, &reference).await? {
        Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
    } else {
        Err(ApiError::msg(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} is not in repository {repo}"),
        ))
    }
}
