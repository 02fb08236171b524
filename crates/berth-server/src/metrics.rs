//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! * `berth_http_requests_total{class,status}` and
//!   `berth_http_request_duration_seconds{class}`: every request, labelled
//!   with a fixed route class (never the path) and the status code.
//! * `berth_auth_attempts_total{operation,result,reason}`: authentication
//!   outcomes by precise reason code (the login events' `reason`).
//! * `berth_audit_events_dropped_total{cause}`: audit events lost because
//!   the recorder's buffer was full or a write failed.
//! * `berth_login_throttled_total{limit}` and
//!   `berth_login_account_alarms_total`: logins refused by the failed-login
//!   limits, and accounts that crossed the under-attack threshold.
//!
//! `/metrics` needs no registry credentials; when authentication is on it
//! obeys the registry's network rules (see docs/configuration.md).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::audit::recorder::DROPPED_METRIC;
use crate::auth::token_api::PeerAddr;
use crate::auth::AuthService;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use (`None` if
/// another recorder was installed first).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            match PrometheusBuilder::new()
                .set_buckets(DURATION_BUCKETS)
                .and_then(|b| b.install_recorder())
            {
                Ok(h) => {
                    describe();
                    spawn_upkeep(h.clone());
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Buckets of `berth_http_request_duration_seconds`, seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Fold histogram samples into buckets periodically, so memory stays
/// bounded between scrapes (the exporter only does it on render otherwise).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started");
    }
}

/// HELP texts, and the drop counter at zero so scrapers see it exists.
fn describe() {
    metrics::describe_counter!(
        "berth_http_requests_total",
        "HTTP requests answered, by route class and status"
    );
    metrics::describe_histogram!(
        "berth_http_request_duration_seconds",
        "HTTP request duration by route class"
    );
    metrics::describe_counter!(
        "berth_auth_attempts_total",
        "Authentication outcomes by login operation, HTTP status and reason code"
    );
    metrics::describe_counter!(
        DROPPED_METRIC,
        "Audit events lost because the buffer was full or a write failed"
    );
    metrics::counter!(DROPPED_METRIC, "cause" => "buffer_full").increment(0);
    metrics::describe_counter!(
        THROTTLED_METRIC,
        "Logins refused by a failed-login limit (address, account_address, account_under_attack)"
    );
    metrics::describe_counter!(
        ALARMS_METRIC,
        "Times an account crossed the under-attack threshold of failed logins from all addresses"
    );
    metrics::counter!(ALARMS_METRIC).increment(0);
}

const THROTTLED_METRIC: &str = "berth_login_throttled_total";
const ALARMS_METRIC: &str = "berth_login_account_alarms_total";

/// Count a login refused by the failed-login limit `limit`.
pub fn login_throttled(limit: &'static str) {
    metrics::counter!(THROTTLED_METRIC, "limit" => limit).increment(1);
}

/// Count an account crossing the under-attack threshold.
pub fn login_account_alarm() {
    metrics::counter!(ALARMS_METRIC).increment(1);
}

/// A fixed, low-cardinality class for a request path.
pub fn route_class(path: &str) -> &'static str {
    if let Some(rest) = path.strip_prefix("/v2") {
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            "v2_base"
        } else if rest == "_catalog" {
            "v2_catalog"
        } else if rest.contains("/blobs/uploads") {
            "v2_upload"
        } else if rest.contains("/blobs/") {
            "v2_blob"
        } else if rest.contains("/manifests/") {
            "v2_manifest"
        } else if rest.ends_with("/tags/list") {
            "v2_tags"
        } else if rest.contains("/referrers/") {
            "v2_referrers"
        } else {
            "v2_other"
        }
    } else if path.starts_with("/oauth2/") || path == "/directory/token" {
        "token"
    } else if path.starts_with("/api/v1/logs/") {
        "api_logs"
    } else if path.starts_with("/api/") {
        "api"
    } else if path == "/metrics" {
        "metrics"
    } else if path == "/healthz" {
        "healthz"
    } else {
        "other"
    }
}

/// The status code as a static label.
fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        206 => "206",
        304 => "304",
        307 => "307",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        416 => "416",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// Count one request.
pub fn observe_request(class: &'static str, status: StatusCode, elapsed: Duration) {
    metrics::counter!("berth_http_requests_total", "class" => class, "status" => status_label(status))
        .increment(1);
    metrics::histogram!("berth_http_request_duration_seconds", "class" => class)
        .record(elapsed.as_secs_f64());
}

/// Count one authentication outcome.
pub fn auth_attempt(operation: &'static str, status: StatusCode, reason: &str) {
    metrics::counter!(
        "berth_auth_attempts_total",
        "operation" => operation,
        "result" => status_label(status),
        "reason" => reason.to_string()
    )
    .increment(1);
}

/// `GET /metrics`: Prometheus text format. With authentication on, clients
/// the network rules refuse get the registry's 403.
pub async fn serve_metrics(
    State(auth): State<Option<Arc<AuthService>>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
) -> Response {
    if let Some(auth) = &auth {
        let ip = crate::auth::network::client_ip(
            peer.map(|p| p.ip()),
            &headers,
            &auth.settings.trusted_proxies,
        );
        if let Err(refusal) = auth.check_network(ip).await {
            return refusal;
        }
    }
    match handle() {
        Some(h) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not available\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_classes() {
        assert_eq!(route_class("/v2/"), "v2_base");
        assert_eq!(route_class("/v2/a/b/manifests/latest"), "v2_manifest");
        assert_eq!(route_class("/v2/a/blobs/uploads/x"), "v2_upload");
        assert_eq!(route_class("/v2/a/blobs/sha256:00"), "v2_blob");
        assert_eq!(route_class("/oauth2/token"), "token");
        assert_eq!(route_class("/api/v1/logs/login"), "api_logs");
        assert_eq!(status_label(StatusCode::IM_A_TEAPOT), "4xx");
    }
}
