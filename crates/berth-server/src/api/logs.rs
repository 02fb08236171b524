//! `/api/v1/logs/...`: the audit events (issue 5), Reader role or above.
//!
//! * `GET /api/v1/logs/login`: login events.
//! * `GET /api/v1/logs/repository`: repository events.
//! * `GET /api/v1/logs/explain/{correlation_id}`: why a request was refused.
//!
//! Lists are newest first, `limit` per page (default 100, at most 1000),
//! with an opaque `cursor` for the next page: `{"events":[...],"next":...}`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::Json;
use base64::Engine;
use berth_auth::authorize::ManagementAction;
use berth_store::audit::{
    AuditStore, ExplainRecord, LoginEvent, LoginQuery, RepositoryEvent, RepositoryQuery,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::authn::Caller;
use super::error::{ErrorBody, MgmtError, MgmtResult};
use super::ApiState;

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page.
pub const MAX_LIMIT: i64 = 1000;

/// A page of login events.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginPage {
    /// Events, newest first.
    pub events: Vec<LoginEvent>,
    /// Cursor of the next page; `null` on the last.
    pub next: Option<String>,
}

/// A page of repository events.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepositoryPage {
    /// Events, newest first.
    pub events: Vec<RepositoryEvent>,
    /// Cursor of the next page; `null` on the last.
    pub next: Option<String>,
}

type Params = HashMap<String, String>;

/// The filters both lists share.
struct Common {
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    identity: Option<String>,
    operation: Option<String>,
    result: Option<u16>,
    failures: bool,
    before_id: Option<i64>,
    limit: i64,
}

fn reject_unknown(params: &Params, known: &[&str]) -> MgmtResult<()> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(MgmtError::invalid(
            k,
            format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn text(params: &Params, name: &str) -> Option<String> {
    params.get(name).filter(|v| !v.is_empty()).cloned()
}

/// A time filter: RFC 3339 (`2026-11-27T08:00:00Z`) or an age relative
/// to now (`90s`, `15m`, `1h`, `7d`).
pub fn parse_time(raw: &str, now: SystemTime) -> Option<i64> {
    let t = match humantime::parse_rfc3339_weak(raw) {
        Ok(t) => t,
        Err(_) => now.checked_sub(humantime::parse_duration(raw).ok()?)?,
    };
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(d.as_millis()).ok()
}

fn time(params: &Params, name: &str) -> MgmtResult<Option<i64>> {
    match text(params, name) {
        None => Ok(None),
        Some(raw) => parse_time(&raw, SystemTime::now()).map(Some).ok_or_else(|| {
            MgmtError::invalid(
                name,
                format!("{name} must be an RFC 3339 time (2026-01-31T08:00:00Z) or an age like 1h, 30m, 7d; got {raw:?}"),
            )
        }),
    }
}

fn encode_cursor(id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("id:{id}"))
}

fn decode_cursor(raw: &str) -> MgmtResult<i64> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("id:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| MgmtError::invalid("cursor", "cursor is not one this server handed out"))
}

fn common(params: &Params) -> MgmtResult<Common> {
    let result = match text(params, "result") {
        None => None,
        Some(r) => Some(
            r.parse::<u16>()
                .ok()
                .filter(|s| (100..600).contains(s))
                .ok_or_else(|| {
                    MgmtError::invalid("result", "result must be an HTTP status, e.g. 401")
                })?,
        ),
    };
    let failures = match text(params, "failures").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => {
            return Err(MgmtError::invalid(
                "failures",
                "failures must be true or false",
            ))
        }
    };
    let limit = match text(params, "limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                MgmtError::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}"))
            })?,
    };
    let before_id = match text(params, "cursor") {
        None => None,
        Some(c) => Some(decode_cursor(&c)?),
    };
    Ok(Common {
        since_ms: time(params, "since")?,
        until_ms: time(params, "until")?,
        identity: text(params, "identity"),
        operation: text(params, "operation"),
        result,
        failures,
        before_id,
        limit,
    })
}

/// Trim the one extra row fetched and make the next cursor.
fn page<T>(mut rows: Vec<(i64, T)>, limit: i64) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more {
        rows.last().map(|(id, _)| encode_cursor(*id))
    } else {
        None
    };
    (rows.into_iter().map(|(_, e)| e).collect(), next)
}

fn store(state: &ApiState) -> AuditStore {
    AuditStore::new(state.registry.meta())
}

/// Login events, newest first.
#[utoipa::path(get, path = "/api/v1/logs/login", tag = "logs",
    params(
        ("since" = Option<String>, Query, description = "RFC 3339 time or age (1h, 30m, 7d)"),
        ("until" = Option<String>, Query, description = "RFC 3339 time or age"),
        ("identity" = Option<String>, Query, description = "identity name or id, or the username tried"),
        ("ip" = Option<String>, Query, description = "client IP"),
        ("result" = Option<u16>, Query, minimum = 100, maximum = 599, description = "HTTP status"),
        ("failures" = Option<bool>, Query, description = "only results >= 400"),
        ("operation" = Option<String>, Query, description = "token_get, token_post, exchange, directory_token, v2_basic, v2_bearer, v2_anonymous, v2_malformed, management"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "page size, 1-1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "the previous page's next"),
    ),
    responses((status = 200, body = LoginPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn login(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<Params>,
) -> MgmtResult<Json<LoginPage>> {
    caller.require(ManagementAction::Read)?;
    reject_unknown(
        &params,
        &[
            "since",
            "until",
            "identity",
            "ip",
            "result",
            "failures",
            "operation",
            "limit",
            "cursor",
        ],
    )?;
    let c = common(&params)?;
    let ip = match text(&params, "ip") {
        None => None,
        Some(ip) => Some(
            ip.parse::<std::net::IpAddr>()
                .map(|i| crate::auth::network::canonical(i).to_string())
                .map_err(|_| MgmtError::invalid("ip", format!("{ip:?} is not an IP address")))?,
        ),
    };
    let q = LoginQuery {
        since_ms: c.since_ms,
        until_ms: c.until_ms,
        identity: c.identity,
        ip,
        result: c.result,
        failures: c.failures,
        operation: c.operation,
        before_id: c.before_id,
        limit: c.limit + 1,
    };
    let (events, next) = page(store(&state).login_events(&q).await?, c.limit);
    Ok(Json(LoginPage { events, next }))
}

/// Repository events, newest first.
#[utoipa::path(get, path = "/api/v1/logs/repository", tag = "logs",
    params(
        ("since" = Option<String>, Query, description = "RFC 3339 time or age (1h, 30m, 7d)"),
        ("until" = Option<String>, Query, description = "RFC 3339 time or age"),
        ("identity" = Option<String>, Query, description = "identity name or id"),
        ("repository" = Option<String>, Query, description = "repository name"),
        ("operation" = Option<String>, Query, description = "push, pull, untag, delete_manifest, delete_repository, delete for both deletions, gc_unlink_blob, gc_delete_blob"),
        ("result" = Option<u16>, Query, minimum = 100, maximum = 599, description = "HTTP status"),
        ("failures" = Option<bool>, Query, description = "only results >= 400"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "page size, 1-1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "the previous page's next"),
    ),
    responses((status = 200, body = RepositoryPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn repository(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<Params>,
) -> MgmtResult<Json<RepositoryPage>> {
    caller.require(ManagementAction::Read)?;
    reject_unknown(
        &params,
        &[
            "since",
            "until",
            "identity",
            "repository",
            "result",
            "failures",
            "operation",
            "limit",
            "cursor",
        ],
    )?;
    let c = common(&params)?;
    let q = RepositoryQuery {
        since_ms: c.since_ms,
        until_ms: c.until_ms,
        identity: c.identity,
        repository: text(&params, "repository"),
        operation: c.operation,
        result: c.result,
        failures: c.failures,
        before_id: c.before_id,
        limit: c.limit + 1,
    };
    let (events, next) = page(store(&state).repository_events(&q).await?, c.limit);
    Ok(Json(RepositoryPage { events, next }))
}

/// How long an explain lookup that misses waits for the audit writer.
const EXPLAIN_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The full reason of a refused request, by its `X-Correlation-Id`.
#[utoipa::path(get, path = "/api/v1/logs/explain/{correlation_id}", tag = "logs",
    params(("correlation_id" = String, Path, description = "the refused response's X-Correlation-Id")),
    responses((status = 200, body = ExplainRecord), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn explain(
    State(state): State<ApiState>,
    caller: Caller,
    recorder: Option<axum::Extension<crate::audit::Recorder>>,
    Path(correlation_id): Path<String>,
) -> MgmtResult<Json<ExplainRecord>> {
    caller.require(ManagementAction::Read)?;
    if let Some(r) = store(&state).explain(&correlation_id).await? {
        return Ok(Json(r));
    }
    // A refusal from a moment ago may still be in the writer's batch:
    // wait for what was recorded before this request, then look again.
    let flushed = match recorder {
        Some(axum::Extension(rec)) => rec.flush(EXPLAIN_FLUSH_WAIT).await,
        None => false,
    };
    let again = if flushed {
        store(&state).explain(&correlation_id).await?
    } else {
        None
    };
    match again {
        Some(r) => Ok(Json(r)),
        None => Err(MgmtError::not_found(format!(
            "no refusal recorded with correlation id {correlation_id:?} (only 401/403 responses \
             have one; records older than the retention period are pruned)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_cursors() {
        let now = UNIX_EPOCH + Duration::from_secs(7200);
        assert_eq!(parse_time("1h", now), Some(3_600_000));
        assert_eq!(parse_time("1970-01-01T00:00:10Z", now), Some(10_000));
        assert_eq!(parse_time("yesterday", now), None);
        assert_eq!(decode_cursor(&encode_cursor(42)).ok(), Some(42));
        assert!(decode_cursor("bogus").is_err());
    }
}
