//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (session, monolithic,
//! mount) and `GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<id>`.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{Digest, ErrorCode, RepositoryName};
use berth_store::UploadStatus;

use super::{content_length, parse_digest, range_header, Query};
use crate::access::Granted;
use crate::body::request_stream;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

fn upload_location(repo: &RepositoryName, id: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

fn session_response(status: StatusCode, repo: &RepositoryName, up: &UploadStatus) -> Response {
    (
        status,
        [
            (header::LOCATION, upload_location(repo, &up.id)),
            (header::RANGE, range_header(up.size)),
            (header::CONTENT_LENGTH, "0".to_string()),
            (
                header::HeaderName::from_static("docker-upload-uuid"),
                up.id.clone(),
            ),
        ],
    )
        .into_response()
}

fn created(repo: &RepositoryName, digest: &Digest) -> Response {
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/v2/{repo}/blobs/{digest}")),
            (header::CONTENT_LENGTH, "0".to_string()),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest.to_string(),
            ),
        ],
    )
        .into_response()
}

/// Parse a chunk's `Content-Range` (`<start>-<end>`; a `bytes ` prefix and
/// a `/<total>` suffix are tolerated).
fn parse_content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::msg(
            ErrorCode::BlobUploadInvalid,
            "Content-Range must have the form <start>-<end>",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a = a.trim().parse::<u64>().map_err(|_| bad())?;
    let b = b.trim().parse::<u64>().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// `POST /v2/<name>/blobs/uploads/`. `granted`: whether the caller may
/// pull the mount's `from` repository (`optional`) or, for a mount without
/// `from`, which repositories (`pull_check`).
///
/// A mount that cannot happen — invalid digest or `from`, a source the
/// caller may not read, a blob no readable repository holds — starts an
/// ordinary upload session (202), as the spec asks; the answer is the same
/// whether or not an unreadable repository holds the blob.
pub(super) async fn start(
    state: &AppState,
    repo: &RepositoryName,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
    granted: &Granted,
) -> ApiResult {
    if let Some(raw) = query.get("mount") {
        if let Ok(digest) = raw.parse::<Digest>() {
            let mounted = match query.get("from") {
                Some(from) => match from.parse::<RepositoryName>() {
                    Ok(from) if granted.optional => {
                        state.registry.mount_blob(repo, &from, &digest).await?
                    }
                    _ => false,
                },
                None => match &granted.pull_check {
                    Some(check) => {
                        state
                            .registry
                            .mount_from_readable(repo, &digest, &|name| check.may_pull(name))
                            .await?
                    }
                    None => false,
                },
            };
            if mounted {
                return Ok(created(repo, &digest));
            }
        }
        // Not mountable: fall back to an ordinary upload session.
    } else if let Some(raw) = query.get("digest") {
        let digest = parse_digest(raw)?;
        state
            .registry
            .put_blob(repo, &digest, request_stream(body), content_length(headers))
            .await?;
        return Ok(created(repo, &digest));
    }
    let up = state.registry.start_upload(repo).await?;
    Ok(session_response(StatusCode::ACCEPTED, repo, &up))
}

/// `GET /v2/<name>/blobs/uploads/<id>`.
pub(super) async fn status(state: &AppState, repo: &RepositoryName, id: &str) -> ApiResult {
    let up = state.registry.upload_status(repo, id).await?;
    Ok(session_response(StatusCode::NO_CONTENT, repo, &up))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: append a chunk or stream.
pub(super) async fn patch(
    state: &AppState,
    repo: &RepositoryName,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let range = parse_content_range(headers)?;
    if let Some((start, _)) = range {
        // Refuse an out-of-order chunk before reading it, then drain it so
        // the 416 reaches the client.
        let current = state.registry.upload_status(repo, id).await?;
        if start != current.size {
            crate::body::drain(body).await;
            return Err(with_location(
                berth_store::StoreError::UploadRange { size: current.size }.into(),
                repo,
                id,
            ));
        }
    }
    let up = state
        .registry
        .append_upload(repo, id, range, request_stream(body))
        .await
        .map_err(|e| with_location(e.into(), repo, id))?;
    Ok(session_response(StatusCode::ACCEPTED, repo, &up))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: final chunk and commit.
pub(super) async fn put(
    state: &AppState,
    repo: &RepositoryName,
    id: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let raw = query.get("digest").ok_or_else(|| {
        ApiError::msg(
            ErrorCode::DigestInvalid,
            "the digest query parameter is required",
        )
    })?;
    let digest = parse_digest(raw)?;
    let range = parse_content_range(headers)?;
    state
        .registry
        .finish_upload(repo, id, range, request_stream(body), &digest)
        .await
        .map_err(|e| with_location(e.into(), repo, id))?;
    Ok(created(repo, &digest))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`.
pub(super) async fn cancel(state: &AppState, repo: &RepositoryName, id: &str) -> ApiResult {
    state.registry.cancel_upload(repo, id).await?;
    Ok((StatusCode::NO_CONTENT, [(header::CONTENT_LENGTH, "0")]).into_response())
}

/// A 416 tells the client where to resume: add the session's Location.
fn with_location(e: ApiError, repo: &RepositoryName, id: &str) -> ApiError {
    if e.error.code == ErrorCode::RangeInvalid {
        e.with_header("Location", upload_location(repo, id))
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): any `Content-Range` value is a well-ordered
    /// range or a `BLOB_UPLOAD_INVALID` refusal, never a panic.
    #[test]
    fn fuzz_content_range_headers() {
        berth_core::fuzz::run(
            "content_range",
            &[
                b"0-4",
                b"bytes 0-4/5",
                b"bytes=5-9",
                b"5-4",
                b"-",
                b"0-18446744073709551615",
            ],
            |bytes| {
                let Ok(value) = axum::http::HeaderValue::from_bytes(bytes) else {
                    return;
                };
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_RANGE, value);
                if let Ok(Some((a, b))) = parse_content_range(&headers) {
                    assert!(a <= b, "{bytes:?}");
                }
            },
        );
    }
}
