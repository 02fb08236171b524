//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, paginated with
//! `n`/`last` and a `Link` header.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{ErrorCode, RepositoryName};

use super::Query;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Most entries returned in one page, whatever `n` asks for.
pub const MAX_PAGE: i64 = 10_000;

/// `n` and `last` from the query.
fn page(query: &Query) -> Result<(i64, Option<&str>), ApiError> {
    let n = match query.get("n") {
        None => MAX_PAGE,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::msg(
                    ErrorCode::Unsupported,
                    format!("n must be a non-negative integer, got '{raw}'"),
                )
                .with_status(axum::http::StatusCode::BAD_REQUEST)
            })?
            .min(MAX_PAGE),
    };
    Ok((n, query.get("last").map(String::as_str)))
}

fn respond(body: serde_json::Value, next: Option<String>) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(link) = next.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LINK, link);
    }
    resp
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Tags of a repository.
pub(super) async fn tags(state: &AppState, repo: &RepositoryName, query: &Query) -> ApiResult {
    let (n, last) = page(query)?;
    if n == 0 {
        // Still say whether the repository exists.
        if state.registry.list_tags(repo, None, 0).await?.is_none() {
            return Err(name_unknown(repo));
        }
        return Ok(respond(
            serde_json::json!({"name": repo.as_str(), "tags": []}),
            None,
        ));
    }
    let mut tags = state
        .registry
        .list_tags(repo, last, n + 1)
        .await?
        .ok_or_else(|| name_unknown(repo))?;
    let next = if tags.len() as i64 > n {
        tags.truncate(n as usize);
        tags.last().map(|l| {
            format!(
                "</v2/{repo}/tags/list?n={n}&last={}>; rel=\"next\"",
                encode(l)
            )
        })
    } else {
        None
    };
    Ok(respond(
        serde_json::json!({"name": repo.as_str(), "tags": tags}),
        next,
    ))
}

fn name_unknown(repo: &RepositoryName) -> ApiError {
    ApiError::msg(
        ErrorCode::NameUnknown,
        format!("repository {repo} is not known to this registry"),
    )
    .detail(serde_json::json!({ "name": repo.as_str() }))
}

/// Repository names.
pub(super) async fn catalog(state: &AppState, query: &Query) -> ApiResult {
    let (n, last) = page(query)?;
    if n == 0 {
        return Ok(respond(serde_json::json!({"repositories": []}), None));
    }
    let mut repos = state.registry.catalog(last, n + 1).await?;
    let next = if repos.len() as i64 > n {
        repos.truncate(n as usize);
        repos
            .last()
            .map(|l| format!("</v2/_catalog?n={n}&last={}>; rel=\"next\"", encode(l)))
    } else {
        None
    };
    Ok(respond(serde_json::json!({"repositories": repos}), next))
}
