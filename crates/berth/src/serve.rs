//! `berth serve`: open the store, build the app, serve until a signal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_server::{tls, AppState, OpenGate, ServeOptions};
use berth_store::Registry;

use crate::config::{ServeArgs, TlsSetting};
use crate::logging;

/// How long an orphaned upload file is left alone before it is removed.
const ORPHAN_UPLOAD_GRACE: Duration = Duration::from_secs(600);

/// Run the server (blocking).
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    logging::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let registry = Arc::new(
            Registry::open(&config.data_dir)
                .await
                .with_context(|| format!("opening data directory {}", config.data_dir.display()))?,
        );
        let tls_files = match &config.tls {
            TlsSetting::Off => None,
            TlsSetting::Files { cert, key } => Some(tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            TlsSetting::SelfSigned(host) => {
                let files = tls::self_signed(&config.data_dir.join("tls"), host)?;
                tracing::info!(certificate = %files.cert.display(), key = %files.key.display(),
                    "self-signed certificate for {host}; trust it on clients or use --tls-verify=false");
                Some(files)
            }
        };
        let scheme = if tls_files.is_some() { "https" } else { "http" };
        let janitor = tokio::spawn(purge_uploads(registry.clone()));
        let state = AppState {
            registry: registry.clone(),
            gate: Arc::new(OpenGate),
        };
        tracing::info!(
            listen = %format!("{scheme}://{}", config.listen),
            data_dir = %config.data_dir.display(),
            config_file = ?config.config_file,
            version = env!("CARGO_PKG_VERSION"),
            "berth is serving"
        );
        berth_server::serve(
            ServeOptions {
                listen: config.listen,
                tls: tls_files,
            },
            berth_server::app(state),
            shutdown_signal(),
        )
        .await?;
        janitor.abort();
        registry.close().await;
        tracing::info!("berth stopped");
        Ok(())
    })
}

/// Remove abandoned uploads at start and then hourly.
async fn purge_uploads(registry: Arc<Registry>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match registry.purge_uploads(ORPHAN_UPLOAD_GRACE).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed abandoned uploads"),
            Err(e) => tracing::warn!(error = %e, "purging abandoned uploads failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
