//! berth's HTTP server: the OCI distribution API behind a request pipeline
//! (correlation id → access gate → handler → store).

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
pub mod body;
pub mod body_limit;
pub mod conn;
pub mod error;
pub mod gc;
pub mod metrics;
pub mod ready;
pub(crate) mod sendfile;
pub mod storage;
pub mod tls;
pub mod ui;
pub mod v2;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{any, get};
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
    /// Where audit events go (`None`: not recorded).
    pub audit: Option<audit::Recorder>,
    /// Which references a pushed manifest needs in its repository.
    pub manifest_validation: Arc<berth_store::ManifestValidation>,
    /// Garbage collection for `POST /api/v1/gc`.
    pub gc: Option<Arc<gc::GcService>>,
}

/// Build the application router. With `auth`, the token service's routes,
/// the management API (`/api/v1`) and the web portal (`/ui/`) are served too. Every route passes
/// the audit layer ([`audit::layer`]); `/metrics` serves Prometheus text.
pub fn app(state: AppState, auth: Option<Arc<auth::AuthService>>) -> Router {
    let registry = state.registry.clone();
    let gc = state.gc.clone();
    let layer_state = audit::layer::LayerState {
        recorder: state.audit.clone(),
    };
    let _ = metrics::handle();
    let mut router = Router::new()
        .route("/v2", any(v2::dispatch))
        .route("/v2/", any(v2::dispatch))
        .route("/v2/{*rest}", any(v2::dispatch))
        .route("/healthz", any(storage::healthz))
        .route("/readyz", get(ready::readyz))
        .with_state(state)
        .merge(
            Router::new()
                .route("/metrics", get(metrics::serve_metrics))
                .with_state(auth.clone()),
        );
    if let Some(auth) = auth {
        router = router.merge(auth::token_api::routes(auth.clone()));
        router = router.merge(ui::routes(auth.clone(), registry.clone()));
        router = router.merge(api::routes(auth, registry, gc));
    }
    router
        .layer(axum::middleware::from_fn(body_limit::body_limit))
        .layer(axum::middleware::from_fn_with_state(
            layer_state,
            audit::layer::audit_layer,
        ))
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Listen address.
    pub listen: SocketAddr,
    /// TLS certificate and key (PEM) when serving HTTPS.
    pub tls: Option<tls::TlsFiles>,
    /// Connection limits and timeouts.
    pub limits: conn::ConnLimits,
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
    let tls = match &opts.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(
            tls::server_config(files)?,
        ))),
        None => None,
    };
    conn::serve_connections(listener, router, tls, opts.limits, shutdown).await?;
    Ok(())
}
