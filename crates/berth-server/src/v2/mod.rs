//! The OCI distribution API (`/v2/...`).
//!
//! One dispatcher parses the path (names contain slashes, so axum's router
//! cannot), validates the repository name, asks the access gate, and calls
//! the endpoint's handler.

mod blobs;
mod listing;
mod manifests;
mod referrers;
mod uploads;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_core::route::{parse_v2_path, V2Route};
use berth_core::{ErrorCode, RepositoryName};

use crate::access::{required_access, RequestContext};
use crate::audit::{RepoNote, RequestAudit};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Query parameters of a request.
pub(crate) type Query = HashMap<String, String>;

/// The `Range` header value for an upload holding `size` bytes
/// (`0-<last byte>`; `0-0` while empty, as distribution sends it).
pub fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// Percent-decode a path segment (some clients encode the `:` of digests).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Handle any request under `/v2`.
pub async fn dispatch(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let audit = req
        .extensions()
        .get::<RequestAudit>()
        .cloned()
        .unwrap_or_else(|| RequestAudit::new(""));
    let (parts, body) = req.into_parts();
    let zero_copy = parts.extensions.get::<crate::body::ZeroCopy>().is_some();
    let has_body = request_has_body(&parts.headers);
    let mut resp = match route_request(
        state,
        parts.method,
        parts.uri,
        parts.headers,
        Connection { peer, zero_copy },
        body,
        &audit,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    // A refusal may be sent before the request body was read; the
    // connection cannot be reused then, so say so (RFC 9112 §9.6) instead of
    // letting pooling clients find a dead connection on their next request.
    if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

fn request_has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || content_length(headers).is_some_and(|l| l > 0)
}

/// What the connection layer said about a request's connection.
struct Connection {
    /// The client's address.
    peer: Option<std::net::IpAddr>,
    /// Whether blob bodies may go out with `sendfile` ([`crate::body::ZeroCopy`]).
    zero_copy: bool,
}

async fn route_request(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    conn: Connection,
    body: Body,
    audit: &RequestAudit,
) -> ApiResult {
    let Connection { peer, zero_copy } = conn;
    let path = uri.path();
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let route = parse_v2_path(rest).ok_or_else(|| {
        ApiError::msg(ErrorCode::NameUnknown, "no such endpoint or repository")
            .with_status(StatusCode::NOT_FOUND)
    })?;
    let query: Query = axum::extract::Query::<Query>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let repo = match route.repository() {
        Some(name) => Some(name.parse::<RepositoryName>().map_err(|e| {
            ApiError::msg(
                ErrorCode::NameInvalid,
                format!("invalid repository name '{name}': {e}"),
            )
            .detail(serde_json::json!({ "name": name }))
        })?),
        None => None,
    };
    let mount_from = match (&route, &method) {
        (V2Route::UploadStart { .. }, &Method::POST) if query.contains_key("mount") => query
            .get("from")
            .filter(|f| f.parse::<RepositoryName>().is_ok())
            .map(String::as_str),
        _ => None,
    };
    let mount_any = matches!(
        (&route, &method),
        (V2Route::UploadStart { .. }, &Method::POST)
    ) && query.contains_key("mount")
        && !query.contains_key("from");
    let required = required_access(&method, &route, mount_from, mount_any);
    let ctx = RequestContext {
        method: &method,
        headers: &headers,
        peer,
        audit,
    };
    let note = repo_note(&method, &route, repo.as_ref());
    let granted = match state.gate.check(&ctx, &required).await {
        Ok(g) => g,
        Err(refusal) => {
            // A 403 is a refused repository operation; a 401 is the
            // challenge handshake every client goes through, not recorded.
            if let (Some(n), StatusCode::FORBIDDEN) = (note, refusal.status()) {
                audit.repository(n);
            }
            crate::body::drain(body).await;
            return Ok(refusal);
        }
    };
    if let Some(n) = note {
        audit.repository(n);
    }

    let head = method == Method::HEAD;
    match (route, repo) {
        (V2Route::Base, _) => match method {
            Method::GET | Method::HEAD => {
                Ok((StatusCode::OK, [("content-type", "application/json")], "{}").into_response())
            }
            _ => Err(unsupported()),
        },
        (V2Route::Catalog, _) => match method {
            Method::GET | Method::HEAD => listing::catalog(&state, &query).await,
            _ => Err(unsupported()),
        },
        (V2Route::TagsList { .. }, Some(repo)) => match method {
            Method::GET | Method::HEAD => listing::tags(&state, &repo, &query).await,
            _ => Err(unsupported()),
        },
        (V2Route::Manifest { reference, .. }, Some(repo)) => {
            let reference = decode(reference);
            match method {
                Method::GET | Method::HEAD => {
                    manifests::get(&state, &repo, &reference, head, audit).await
                }
                Method::PUT => {
                    manifests::put(
                        &state,
                        &repo,
                        &reference,
                        uri.query(),
                        &headers,
                        body,
                        audit,
                    )
                    .await
                }
                Method::DELETE => manifests::delete(&state, &repo, &reference).await,
                _ => Err(unsupported()),
            }
        }
        (V2Route::Blob { digest, .. }, Some(repo)) => {
            let digest = decode(digest);
            match method {
                Method::GET | Method::HEAD => {
                    blobs::get(&state, &repo, &digest, &headers, head, zero_copy).await
                }
                Method::DELETE => blobs::delete(&state, &repo, &digest).await,
                _ => Err(unsupported()),
            }
        }
        (V2Route::UploadStart { .. }, Some(repo)) => match method {
            Method::POST => uploads::start(&state, &repo, &query, &headers, body, &granted).await,
            _ => Err(unsupported()),
        },
        (V2Route::Upload { id, .. }, Some(repo)) => {
            let id = decode(id);
            match method {
                Method::GET | Method::HEAD => uploads::status(&state, &repo, &id).await,
                Method::PATCH => uploads::patch(&state, &repo, &id, &headers, body).await,
                Method::PUT => uploads::put(&state, &repo, &id, &query, &headers, body).await,
                Method::DELETE => uploads::cancel(&state, &repo, &id).await,
                _ => Err(unsupported()),
            }
        }
        (V2Route::Referrers { digest, .. }, Some(repo)) => match method {
            Method::GET | Method::HEAD => {
                referrers::list(&state, &repo, &decode(digest), &query).await
            }
            _ => Err(unsupported()),
        },
        _ => Err(ApiError::new(ErrorCode::Internal)),
    }
}

/// The repository event a request makes, if any: manifest GET (pull),
/// PUT (push) and DELETE (untag by tag, delete_manifest by digest). HEAD
/// and blob requests are not recorded (see docs/api.md).
fn repo_note(
    method: &Method,
    route: &V2Route<'_>,
    repo: Option<&RepositoryName>,
) -> Option<RepoNote> {
    let (V2Route::Manifest { reference, .. }, Some(repo)) = (route, repo) else {
        return None;
    };
    let reference = decode(reference);
    let is_tag = !reference.contains(':');
    let operation = match *method {
        Method::GET => "pull",
        Method::PUT => "push",
        Method::DELETE if is_tag => "untag",
        Method::DELETE => "delete_manifest",
        _ => return None,
    };
    Some(RepoNote {
        repository: repo.to_string(),
        operation,
        tag: is_tag.then(|| reference.clone()),
        digest: (!is_tag).then_some(reference),
        ..RepoNote::default()
    })
}

fn unsupported() -> ApiError {
    ApiError::msg(
        ErrorCode::Unsupported,
        "method not allowed on this endpoint",
    )
    .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Parse a digest from a URL or query, answering DIGEST_INVALID.
pub(crate) fn parse_digest(raw: &str) -> Result<berth_core::Digest, ApiError> {
    raw.parse().map_err(|e| {
        ApiError::msg(
            ErrorCode::DigestInvalid,
            format!("invalid digest '{raw}': {e}"),
        )
    })
}

/// Parse an optional `Content-Length` header.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}
