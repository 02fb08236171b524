//! `GET /readyz`: readiness for load balancers. Unlike `/healthz` (the
//! process is alive), it checks that this replica can serve: the metadata
//! database answers a cheap query, the blob store accepts writes, and
//! storage is not full ([`crate::storage::is_full`]: little free space on
//! the data directory's file system, or a write refused for lack of space
//! within the last minute).
//!
//! 200 `{"status":"ready","checks":{"database":"ok","blob_store":"ok","storage":"ok"}}`, or
//! 503 with `"status":"not_ready"`, each failed check marked `"failed"` and
//! listed in `"failed"`. Why a check failed goes to the server log, not to
//! the (unauthenticated) client.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::AppState;

/// The readiness handler.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let r = state.registry.check_ready().await;
    let mut failed = Vec::new();
    let mut checks = serde_json::Map::new();
    let (full, space) = crate::storage::is_full();
    let storage: Result<(), String> = if full {
        Err(match space {
            Some(s) => format!("storage is full: {} bytes free of {}", s.free, s.total),
            None => "storage is full: a write failed for lack of space".to_string(),
        })
    } else {
        Ok(())
    };
    for (name, result) in [
        ("database", r.database.clone()),
        ("blob_store", r.blob_store.clone()),
        ("storage", storage),
    ] {
        let verdict = match result {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(check = name, error = %e, "readiness check failed");
                failed.push(name);
                "failed"
            }
        };
        checks.insert(name.to_string(), json!(verdict));
    }
    if failed.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": checks})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "checks": checks, "failed": failed})),
        )
            .into_response()
    }
}
