//! `GET|HEAD|DELETE /v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{Digest, ErrorCode, RepositoryName};
use berth_store::BlobRead;

use crate::body::file_body;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// A byte range resolved against a blob's size.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No (usable) Range header: send everything.
    Full,
    /// Inclusive first and last byte.
    Part(u64, u64),
    /// Cannot be satisfied.
    Unsatisfiable,
}

/// Interpret a `Range` header for a blob of `size` bytes. Headers berth does
/// not understand (multiple ranges, other units) are ignored, as HTTP allows.
fn parse_range(value: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return RangeRequest::Full;
            };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                    _ => return RangeRequest::Full,
                }
            };
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part(start, end)
            }
        }
        (true, false) => match b.parse::<u64>() {
            Ok(0) => RangeRequest::Unsatisfiable,
            Ok(n) if size > 0 => RangeRequest::Part(size.saturating_sub(n), size - 1),
            Ok(_) => RangeRequest::Unsatisfiable,
            Err(_) => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

/// The digest of a blob GET, HEAD or DELETE: a blob under a reference that
/// is not a digest cannot exist, so it is not found (404 BLOB_UNKNOWN) and
/// the message says why.
fn parse_blob_digest(raw: &str) -> Result<Digest, ApiError> {
    raw.parse().map_err(|e| {
        ApiError::msg(
            ErrorCode::BlobUnknown,
            format!("'{raw}' is not a valid digest: {e}"),
        )
        .detail(serde_json::json!({ "digest": raw }))
    })
}

/// The 404 of a blob GET; for a layer a sparse manifest of `repo` lists,
/// it says that it was never pushed.
async fn not_found(state: &AppState, repo: &RepositoryName, digest: &Digest) -> ApiError {
    let detail = serde_json::json!({ "digest": digest.to_string() });
    match state.registry.sparse_referrer_of(repo, digest).await {
        Ok(Some(manifest)) => ApiError::msg(
            ErrorCode::BlobUnknown,
            format!(
                "blob {digest} was never pushed to repository {repo}: manifest {manifest} \
                 references it and was accepted as a sparse manifest"
            ),
        )
        .detail(detail),
        Ok(None) => ApiError::new(ErrorCode::BlobUnknown).detail(detail),
        Err(e) => e.into(),
    }
}

/// Serve a blob (or a manifest by digest) readable from `repo`.
pub(super) async fn get(
    state: &AppState,
    repo: &RepositoryName,
    raw: &str,
    headers: &HeaderMap,
    head: bool,
    zero_copy: bool,
) -> ApiResult {
    let digest = parse_blob_digest(raw)?;
    let unknown = || {
        ApiError::new(ErrorCode::BlobUnknown)
            .detail(serde_json::json!({ "digest": digest.to_string() }))
    };
    if head {
        let size = state
            .registry
            .stat_blob(repo, &digest)
            .await?
            .ok_or_else(unknown)?;
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_LENGTH, size.to_string()),
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::ACCEPT_RANGES, "bytes".to_string()),
                (header::ETAG, format!("\"{digest}\"")),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    digest.to_string(),
                ),
            ],
        )
            .into_response());
    }
    let Some(blob) = state.registry.read_blob(repo, &digest).await? else {
        return Err(not_found(state, repo, &digest).await);
    };
    if let BlobRead::Object(o) = &blob {
        if state.registry.blob_redirect() {
            // The caller passed the authorization check to get here; the
            // store honours Range on the presigned URL itself.
            let url = o.presigned_url().await?;
            return Ok((
                StatusCode::TEMPORARY_REDIRECT,
                [
                    (header::LOCATION, url.to_string()),
                    (header::CONTENT_LENGTH, "0".to_string()),
                    (
                        header::HeaderName::from_static("docker-content-digest"),
                        digest.to_string(),
                    ),
                ],
            )
                .into_response());
        }
    }
    let size = blob.size();
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, len) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, size),
        RangeRequest::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        RangeRequest::Unsatisfiable => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response())
        }
    };
    let body = match blob {
        BlobRead::File { file, .. } => file_body(file.into_std().await, start, len, zero_copy),
        BlobRead::Bytes(b) => Body::from(b.slice(start as usize..(start + len) as usize)),
        BlobRead::Object(o) => Body::from_stream(o.open(start, len).await?),
    };
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, len)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{digest}\""))
        .header("docker-content-digest", digest.to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    resp.body(body)
        .map_err(|e| ApiError::msg(ErrorCode::Internal, e.to_string()))
}

/// Remove a blob from a repository.
pub(super) async fn delete(state: &AppState, repo: &RepositoryName, raw: &str) -> ApiResult {
    let digest = parse_blob_digest(raw)?;
    if state.registry.delete_blob(repo, &digest).await? {
        Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
    } else {
        Err(ApiError::new(ErrorCode::BlobUnknown)
            .detail(serde_json::json!({ "digest": digest.to_string() })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): any `Range` value against any blob size gives a
    /// range inside the blob, or the whole blob, or 416 — never a panic.
    #[test]
    fn fuzz_range_headers() {
        berth_core::fuzz::run_str(
            "range",
            &[
                "bytes=0-4",
                "bytes=5-",
                "bytes=-3",
                "bytes=0-0,5-9",
                "bytes= 1 - 2 ",
                "items=1-2",
            ],
            |s| {
                for size in [0, 1, 10, u64::MAX] {
                    match parse_range(Some(s), size) {
                        RangeRequest::Part(a, b) => {
                            assert!(a <= b && b < size, "{s:?} on {size}: {a}-{b}")
                        }
                        RangeRequest::Full | RangeRequest::Unsatisfiable => {}
                    }
                }
            },
        );
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Part(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Part(5, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Part(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Part(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Part(0, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Full);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Full);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Unsatisfiable);
    }
}
