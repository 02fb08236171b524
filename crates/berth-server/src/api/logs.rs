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

/// A typed parameter's raw value: absent is `None`, but an empty value is
/// not absent (the document gives it a type or pattern it does not meet).
fn typed<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(String::as_str)
}

/// The grammar of `since` and `until`, as the document states it: an age
/// (`90s`, `15m`, `1h`, `7d`) or an RFC 3339 date-time with a real
/// calendar date (leap years included) and a `Z` or `±hh:mm` offset.
pub const TIME_PATTERN: &str = r"^([0-9]{1,9}[smhd]|(([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])))|(([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$";

/// The grammar of `cursor`: the id of the last event of the previous page.
pub const CURSOR_PATTERN: &str = r"^[0-9]{1,18}$";

/// The grammar of `ip`: an IPv4 address (no leading zeros) or an IPv6
/// address in hex groups (no embedded IPv4).
pub const IP_PATTERN: &str = r"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|:((:[0-9a-fA-F]{1,4}){1,7}|:)))$";

static TIME_RE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(TIME_PATTERN).expect("static regex"));
static CURSOR_RE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(CURSOR_PATTERN).expect("static regex"));
static IP_RE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(IP_PATTERN).expect("static regex"));

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time filter in [`TIME_PATTERN`]'s grammar: RFC 3339
/// (`2026-11-27T08:00:00Z`, `2026-11-27T09:00:00.5+01:00`) or an age
/// relative to now (`90s`, `15m`, `1h`, `7d`). Unix milliseconds, never
/// before the epoch; `None` outside the grammar.
pub fn parse_time(raw: &str, now: SystemTime) -> Option<i64> {
    if !TIME_RE.is_match(raw) {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let ms = if let Some(unit) = raw.strip_suffix(['s', 'm', 'h', 'd']) {
        let scale = match raw.as_bytes().last()? {
            b's' => 1_000,
            b'm' => 60_000,
            b'h' => 3_600_000,
            _ => 86_400_000,
        };
        let now_ms = i64::try_from(
            now.duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis(),
        )
        .ok()?;
        now_ms - num(unit)? * scale
    } else {
        // The grammar fixes every position: YYYY-MM-DDTHH:MM:SS[.f]±hh:mm|Z.
        let days = days_from_civil(num(&raw[0..4])?, num(&raw[5..7])?, num(&raw[8..10])?);
        let secs = num(&raw[11..13])? * 3600 + num(&raw[14..16])? * 60 + num(&raw[17..19])?;
        let rest = &raw[19..];
        let (frac, zone) = match rest.strip_prefix('.') {
            Some(f) => {
                let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                (&f[..end], &f[end..])
            }
            None => ("", rest),
        };
        let frac_ms = format!("{frac:0<3}").get(0..3).and_then(num).unwrap_or(0);
        let offset = match zone {
            "Z" => 0,
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                sign * (num(z.get(1..3)?)? * 3600 + num(z.get(4..6)?)? * 60)
            }
        };
        (days * 86_400 + secs - offset) * 1000 + frac_ms
    };
    Some(ms.max(0))
}

fn time(params: &Params, name: &str) -> MgmtResult<Option<i64>> {
    match typed(params, name) {
        None => Ok(None),
        Some(raw) => parse_time(raw, SystemTime::now()).map(Some).ok_or_else(|| {
            MgmtError::invalid(
                name,
                format!("{name} must be an RFC 3339 time (2026-01-31T08:00:00Z) or an age like 90s, 30m, 1h, 7d; got {raw:?}"),
            )
        }),
    }
}

fn encode_cursor(id: i64) -> String {
    id.to_string()
}

fn decode_cursor(raw: &str) -> MgmtResult<i64> {
    Some(raw)
        .filter(|r| CURSOR_RE.is_match(r))
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| MgmtError::invalid("cursor", "cursor is not one this server handed out"))
}

fn common(params: &Params) -> MgmtResult<Common> {
    let result = match typed(params, "result") {
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
    let failures = match typed(params, "failures") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(MgmtError::invalid(
                "failures",
                "failures must be true or false",
            ))
        }
    };
    let limit = match typed(params, "limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                MgmtError::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}"))
            })?,
    };
    let before_id = match typed(params, "cursor") {
        None => None,
        Some(c) => Some(decode_cursor(c)?),
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
        ("since" = Option<String>, Query, pattern = r"^([0-9]{1,9}[smhd]|(([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])))|(([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$", description = "RFC 3339 time or age (1h, 30m, 7d)"),
        ("until" = Option<String>, Query, pattern = r"^([0-9]{1,9}[smhd]|(([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])))|(([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$", description = "RFC 3339 time or age"),
        ("identity" = Option<String>, Query, description = "identity name or id, or the username tried"),
        ("ip" = Option<String>, Query, pattern = r"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])|(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|:((:[0-9a-fA-F]{1,4}){1,7}|:)))$", description = "client IP"),
        ("result" = Option<u16>, Query, minimum = 100, maximum = 599, description = "HTTP status"),
        ("failures" = Option<bool>, Query, description = "only results >= 400"),
        ("operation" = Option<String>, Query, description = "token_get, token_post, exchange, directory_token, v2_basic, v2_bearer, v2_anonymous, v2_malformed, management"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "page size, 1-1000 (default 100)"),
        ("cursor" = Option<String>, Query, pattern = r"^[0-9]{1,18}$", description = "the previous page's next"),
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
    let ip = match typed(&params, "ip") {
        None => None,
        Some(ip) => Some(
            Some(ip)
                .filter(|ip| IP_RE.is_match(ip))
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                .map(|i| crate::auth::network::canonical(i).to_string())
                .ok_or_else(|| MgmtError::invalid("ip", format!("{ip:?} is not an IP address")))?,
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
        ("since" = Option<String>, Query, pattern = r"^([0-9]{1,9}[smhd]|(([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])))|(([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$", description = "RFC 3339 time or age (1h, 30m, 7d)"),
        ("until" = Option<String>, Query, pattern = r"^([0-9]{1,9}[smhd]|(([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])))|(([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$", description = "RFC 3339 time or age"),
        ("identity" = Option<String>, Query, description = "identity name or id"),
        ("repository" = Option<String>, Query, description = "repository name"),
        ("operation" = Option<String>, Query, description = "push, pull, untag, delete_manifest, delete_repository, delete for both deletions, gc_unlink_blob, gc_delete_blob"),
        ("result" = Option<u16>, Query, minimum = 100, maximum = 599, description = "HTTP status"),
        ("failures" = Option<bool>, Query, description = "only results >= 400"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "page size, 1-1000 (default 100)"),
        ("cursor" = Option<String>, Query, pattern = r"^[0-9]{1,18}$", description = "the previous page's next"),
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
        assert_eq!(parse_time("1970-01-01T01:00:10+01:00", now), Some(10_000));
        assert_eq!(parse_time("1970-01-01T00:00:10.25Z", now), Some(10_250));
        assert_eq!(
            parse_time("2026-11-27T08:00:00Z", now),
            Some(1_795_766_400_000)
        );
        assert_eq!(
            parse_time("2028-02-29T00:00:00Z", now),
            Some(1_835_395_200_000)
        );
        assert_eq!(parse_time("2027-02-29T00:00:00Z", now), None);
        assert_eq!(parse_time("2026-04-31T00:00:00Z", now), None);
        assert_eq!(parse_time("1h30m", now), None);
        assert_eq!(parse_time("1h\n", now), None);
        assert_eq!(parse_time("99999d", now), Some(0));
        assert_eq!(decode_cursor(&encode_cursor(42)).ok(), Some(42));
        assert!(decode_cursor("bogus").is_err());
        assert!(decode_cursor("").is_err());
    }

    /// The document's patterns are the ones the handlers enforce.
    #[test]
    fn document_patterns_are_the_enforced_ones() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(crate::api::ApiDoc::openapi()).expect("document");
        for path in ["/api/v1/logs/login", "/api/v1/logs/repository"] {
            let params = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .expect("parameters");
            let pattern = |name: &str| {
                params
                    .iter()
                    .find(|p| p["name"] == name)
                    .and_then(|p| p["schema"]["pattern"].as_str())
                    .map(str::to_string)
            };
            assert_eq!(pattern("since").as_deref(), Some(TIME_PATTERN), "{path}");
            assert_eq!(pattern("until").as_deref(), Some(TIME_PATTERN), "{path}");
            assert_eq!(pattern("cursor").as_deref(), Some(CURSOR_PATTERN), "{path}");
        }
        let login = doc["paths"]["/api/v1/logs/login"]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        let ip = login.iter().find(|p| p["name"] == "ip").expect("ip");
        assert_eq!(ip["schema"]["pattern"].as_str(), Some(IP_PATTERN));
    }
}
