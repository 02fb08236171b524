//! berth's HTTP server: the OCI distribution API behind a request pipeline
//! (correlation id → access gate → handler → store).

pub mod access;
pub mod api;
pub mod auth;
pub mod body;
pub mod error;
pub mod tls;
pub mod v2;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use berth_store::Registry;

pub use access::{AccessGate, OpenGate, RequiredAccess};

/// Name of the header carrying the request's correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub registry: Arc<Registry>,
    /// Decides whether a request may proceed.
    pub gate: Arc<dyn AccessGate>,
}

/// Build the application router. With `auth`, the token service's routes
/// and the management API (`/api/v1`) are served too.
pub fn app(state: AppState, auth: Option<Arc<auth::AuthService>>) -> Router {
    let registry = state.registry.clone();
    let mut router = Router::new()
        .route("/v2", any(v2::dispatch))
        .route("/v2/", any(v2::dispatch))
        .route("/v2/{*rest}", any(v2::dispatch))
        .route("/healthz", any(|| async { "ok" }))
        .with_state(state);
    if let Some(auth) = auth {
        router = router.merge(auth::token_api::routes(auth.clone()));
        router = router.merge(api::routes(auth, registry));
    }
    router.layer(axum::middleware::from_fn(common_headers))
}

/// Give every response a correlation id and the registry API version.
async fn common_headers(req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
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
    if status.is_server_error() {
        tracing::error!(correlation_id = %id, %method, %path, status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(correlation_id = %id, %method, %path, status = status.as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64, "request");
    }
    resp
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Listen address.
    pub listen: SocketAddr,
    /// TLS certificate and key (PEM) when serving HTTPS.
    pub tls: Option<tls::TlsFiles>,
}

/// Serve `app` until `shutdown` resolves.
pub async fn serve(
    opts: ServeOptions,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.listen))?;
    tracing::info!(
        address = %listener.local_addr().unwrap_or(opts.listen),
        tls = opts.tls.is_some(),
        "berth is serving"
    );
    match opts.tls {
        None => {
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await?;
        }
        Some(files) => tls::serve_tls(listener, router, &files, shutdown).await?,
    }
    Ok(())
}
