//! The request layer every response passes: correlation id, the audit
//! draft, the events built from it, the correlation id in 401/403 bodies,
//! and the HTTP metrics.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use berth_store::audit::{AuditEvent, ExplainRecord, LoginEvent, RepositoryEvent};
use serde_json::{json, Value};

use super::context::{Draft, RequestAudit};
use super::recorder::Recorder;
use crate::CORRELATION_HEADER;

/// Largest refusal body rewritten to carry the correlation id.
const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// What the layer needs.
#[derive(Clone)]
pub struct LayerState {
    /// Where events go (`None`: auditing off, e.g. in unit tests).
    pub recorder: Option<Recorder>,
}

/// Give every response a correlation id and the registry API version,
/// record the request's audit events, and count it.
pub async fn audit_layer(
    State(state): State<LayerState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let audit = RequestAudit::new(&id);
    req.extensions_mut().insert(audit.clone());
    if let Some(recorder) = &state.recorder {
        // For readers of the audit store that must see what was just
        // recorded (`GET /api/v1/logs/explain/{id}`).
        req.extensions_mut().insert(recorder.clone());
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let class = crate::metrics::route_class(&path);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| crate::auth::network::canonical(c.0.ip()));
    let time_ms = berth_store::now_ms();
    let started = Instant::now();

    let mut resp = next.run(req).await;
    let status = resp.status();
    let h = resp.headers_mut();
    h.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(CORRELATION_HEADER, v);
    }
    let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
    if refused {
        resp = with_correlation_id(resp, &id).await;
    }
    let elapsed = started.elapsed();
    crate::metrics::observe_request(class, status, elapsed);
    if status.is_server_error() {
        tracing::error!(correlation_id = %id, %method, %path, status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(correlation_id = %id, %method, %path, status = status.as_u16(),
            elapsed_us = elapsed.as_micros() as u64, "request");
    }

    let draft = audit.take();
    if let Some(login) = &draft.login {
        crate::metrics::auth_attempt(login.operation, status, &login.reason);
    }
    let Some(recorder) = &state.recorder else {
        return resp;
    };
    let base = Base {
        id: &id,
        time_ms,
        status: status.as_u16(),
        duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        user_agent,
        client_ip: draft.client_ip.or(peer).map(|ip| ip.to_string()),
    };
    if refused {
        recorder.record(AuditEvent::Explain(explain(&base, &draft, &method, &path)));
    }
    if let Some(login) = &draft.login {
        recorder.record(AuditEvent::Login(LoginEvent {
            time_ms,
            correlation_id: id.clone(),
            login_server: recorder.login_server().to_string(),
            identity: draft.identity.clone(),
            username: draft.username.clone(),
            client_ip: base.client_ip.clone(),
            user_agent: base.user_agent.clone(),
            operation: login.operation.to_string(),
            result: base.status,
            reason: login.reason.clone(),
            duration_ms: base.duration_ms,
        }));
    }
    if let Some(repo) = draft.repo {
        recorder.record(AuditEvent::Repository(RepositoryEvent {
            time_ms,
            correlation_id: id.clone(),
            identity: draft.identity,
            client_ip: base.client_ip,
            user_agent: base.user_agent,
            repository: repo.repository,
            tag: repo.tag,
            digest: repo.digest,
            media_type: repo.media_type,
            artifact_type: repo.artifact_type,
            size: repo.size,
            operation: repo.operation.to_string(),
            result: base.status,
            duration_ms: base.duration_ms,
        }));
    }
    resp
}

struct Base<'a> {
    id: &'a str,
    time_ms: i64,
    status: u16,
    duration_ms: i64,
    user_agent: Option<String>,
    client_ip: Option<String>,
}

/// The explain record of a refusal: the request, who was recognised, and
/// what the login paths and the gate noted (`asked`, `granted`,
/// `decided_by`).
fn explain(
    base: &Base<'_>,
    draft: &Draft,
    method: &axum::http::Method,
    path: &str,
) -> ExplainRecord {
    let mut record = serde_json::Map::new();
    record.insert("method".into(), json!(method.as_str()));
    record.insert("path".into(), json!(path));
    record.insert("status".into(), json!(base.status));
    record.insert("client_ip".into(), json!(base.client_ip));
    record.insert("recognised".into(), json!(draft.identity));
    record.insert("username".into(), json!(draft.username));
    record.insert(
        "operation".into(),
        json!(draft
            .login
            .as_ref()
            .map(|l| l.operation)
            .or(draft.repo.as_ref().map(|r| r.operation))),
    );
    let reason = draft
        .login
        .as_ref()
        .map(|l| l.reason.clone())
        .or_else(|| {
            draft
                .explain
                .get("decided_by")
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            if base.status == 401 {
                "missing_credentials".into()
            } else {
                "denied".into()
            }
        });
    record.insert("reason".into(), json!(reason));
    for (k, v) in &draft.explain {
        record.insert(k.clone(), v.clone());
    }
    if !record.contains_key("decided_by") && base.status == 401 {
        record.insert(
            "decided_by".into(),
            json!({"rule": "credential", "reason": "missing_credentials",
                   "message": "no credentials presented"}),
        );
    }
    ExplainRecord {
        time_ms: base.time_ms,
        correlation_id: base.id.to_string(),
        record: Value::Object(record),
    }
}

/// Put the correlation id into a JSON refusal body: a top-level
/// `correlation_id`, and appended to every error message so that docker and
/// other clients that print only the message show it.
async fn with_correlation_id(resp: Response, id: &str) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REFUSAL_BODY).await else {
        tracing::warn!(correlation_id = %id, "refusal body too large or unreadable; sent empty");
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let suffix = format!(" (correlation id: {id})");
    if let Some(Value::Array(errors)) = obj.get_mut("errors") {
        for e in errors {
            if let Some(Value::String(m)) = e.get_mut("message") {
                m.push_str(&suffix);
            }
        }
    }
    if let Some(Value::String(d)) = obj.get_mut("error_description") {
        d.push_str(&suffix);
    }
    obj.insert("correlation_id".into(), Value::String(id.to_string()));
    let body = Value::Object(obj).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
