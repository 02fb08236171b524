//! `berth serve`: open the store, build the app, serve until a signal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_server::{audit, tls, AppState, OpenGate, ServeOptions};
use berth_store::audit::AuditStore;
use berth_store::{Registry, RegistryOptions};

use berth_auth::clock::{Clock, FileClock, SystemClock};
use berth_server::auth::limiter::LimiterConfig;
use berth_server::auth::{AuthService, AuthSettings, BOOTSTRAP_USER};
use berth_store::IdentityRepo;

use crate::config::{ServeArgs, ServeConfig, TlsSetting, UploadIo};
use crate::logging;

/// How long an orphaned upload file is left alone before it is removed.
const ORPHAN_UPLOAD_GRACE: Duration = Duration::from_secs(600);

/// Run the server (blocking).
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    logging::init(config.log_format);
    berth_store::direct::set_direct_writes(config.upload_io == UploadIo::Direct);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let registry = Arc::new(
            Registry::open_with(
                &config.data_dir,
                RegistryOptions {
                    blob_store: config.blob_store.clone(),
                    blob_redirect: config.blob_redirect,
                    database: config.database_url.clone(),
                },
            )
            .await
            .with_context(|| match &config.database_url {
                // The URL prints with its password replaced by ***.
                Some(url) => format!(
                    "opening data directory {} with metadata in {url}",
                    config.data_dir.display()
                ),
                None => format!("opening data directory {}", config.data_dir.display()),
            })?,
        );
        berth_server::storage::watch(&config.data_dir);
        if let Err(e) = registry.blob_backend().check_ready().await {
            tracing::warn!(error = %format!("{e:#}"), blob_store = %registry.blob_backend().describe(),
                "the blob store is not reachable yet");
        }
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
        let auth = if config.auth_disabled {
            tracing::warn!("authentication is DISABLED: every request is allowed");
            None
        } else {
            let auth = Arc::new(open_auth(&config, &registry).await?);
            auth.follow_other_replicas();
            Some(auth)
        };
        let gate: Arc<dyn berth_server::AccessGate> = match &auth {
            Some(a) => a.clone(),
            None => Arc::new(OpenGate),
        };
        let (recorder, audit_task) = start_audit(&config, &registry).await?;
        let gc = Arc::new(berth_server::gc::GcService::new(
            registry.clone(),
            Some(recorder.clone()),
            config.gc_grace,
        ));
        let collector = config
            .gc_interval
            .map(|every| tokio::spawn(gc.clone().run_every(every)));
        let state = AppState {
            registry: registry.clone(),
            gate,
            audit: Some(recorder),
            manifest_validation: Arc::new(config.manifest_validation.clone()),
            gc: Some(gc),
        };
        tracing::info!(
            listen = %format!("{scheme}://{}", config.listen),
            data_dir = %config.data_dir.display(),
            blob_store = %registry.blob_backend().describe(),
            blob_redirect = registry.blob_redirect(),
            database = %config
                .database_url
                .as_ref()
                .map_or_else(|| "sqlite (meta.db in the data directory)".to_string(), |u| u.to_string()),
            config_file = ?config.config_file,
            login_server = %config.login_server,
            auth = !config.auth_disabled,
            sparse_manifests = config.manifest_validation.sparse,
            gc_interval = ?config.gc_interval,
            gc_grace = ?config.gc_grace,
            version = env!("CARGO_PKG_VERSION"),
            "berth is starting"
        );
        berth_server::serve(
            ServeOptions {
                listen: config.listen,
                tls: tls_files,
                limits: config.connections.clone(),
            },
            berth_server::app(state, auth),
            shutdown_signal(),
        )
        .await?;
        janitor.abort();
        if let Some(c) = collector {
            c.abort();
        }
        audit_task.shutdown().await;
        registry.close().await;
        tracing::info!("berth stopped");
        Ok(())
    })
}

/// Start the audit recorder (writer + retention pruning).
async fn start_audit(
    config: &ServeConfig,
    registry: &Registry,
) -> anyhow::Result<(audit::Recorder, audit::RecorderTask)> {
    audit::recorder::start(
        AuditStore::new(registry.meta()),
        audit::AuditConfig {
            login_server: config.login_server.clone(),
            retention_days: config.audit_retention_days,
            stream: config.audit_log.as_deref().map(audit::StreamTarget::parse),
            capacity: audit::recorder::DEFAULT_CAPACITY,
        },
    )
    .await
}

/// Environment variable holding the first user's password.
const BOOTSTRAP_PASSWORD_ENV: &str = "BERTH_BOOTSTRAP_PASSWORD";

/// Build the identity layer and create the first user on a new registry.
async fn open_auth(config: &ServeConfig, registry: &Registry) -> anyhow::Result<AuthService> {
    let settings = AuthSettings {
        login_server: config.login_server.clone(),
        realm: config.realm.clone(),
        registry_name: config.registry_name.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        limiter: LimiterConfig::default(),
    };
    let repo = IdentityRepo::new(registry.meta());
    let auth = AuthService::open(settings, repo, clock()).await?;
    let password = std::env::var(BOOTSTRAP_PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty());
    if let Some(generated) = auth.bootstrap(password).await? {
        println!(
            "berth: created directory user '{BOOTSTRAP_USER}' with the Owner role.\n\
             berth: its password, shown only this once: {generated}\n\
             berth: log in with: berth login {} --username {BOOTSTRAP_USER}",
            config.login_server
        );
    }
    Ok(auth)
}

/// Test-only hook: when set, the identity layer reads the time (Unix
/// seconds) from this file, so end-to-end tests can expire tokens without
/// waiting. Never set it in production.
const TEST_CLOCK_ENV: &str = "BERTH_TEST_CLOCK_FILE";

/// The identity layer's clock: the wall clock, or the test hook's file.
fn clock() -> Arc<dyn Clock> {
    match std::env::var_os(TEST_CLOCK_ENV).filter(|p| !p.is_empty()) {
        Some(path) => {
            tracing::warn!(file = %std::path::Path::new(&path).display(),
                "{TEST_CLOCK_ENV} is set: the identity layer's clock reads this file (test only)");
            Arc::new(FileClock::new(path))
        }
        None => Arc::new(SystemClock),
    }
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
