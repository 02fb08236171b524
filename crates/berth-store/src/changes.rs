//! Cross-replica cache invalidation.
//!
//! Every replica keeps caches in memory (the manifest cache, the auth
//! layer's policy and login caches). A write through one replica must
//! empty them on every other replica. On PostgreSQL this module carries
//! that news with `LISTEN`/`NOTIFY`:
//!
//! * [`MANIFESTS_CHANNEL`]: payload = a repository name whose manifests or
//!   tags changed. Sent inside the writing transaction, so it is delivered
//!   exactly when the change commits (and never for a rolled-back one).
//! * [`POLICY_CHANNEL`]: an identity, credential, role assignment, scope
//!   map, network rule or registry setting changed; every replica empties
//!   its policy caches.
//!
//! One listener connection per replica receives both channels. When that
//! connection is lost, notifications may have been missed, so the replica
//! empties every cache at once (and again when it has reconnected).
//!
//! On SQLite (one process) there is nothing to tell: [`ChangeHub::notify_policy`]
//! is a no-op and the in-process paths stay as they were.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::AnyPool;

use crate::database_url::DatabaseUrl;
use crate::manifest_cache::ManifestCache;

/// Channel of manifest and tag writes (payload: repository name).
pub const MANIFESTS_CHANNEL: &str = "berth_manifests";
/// Channel of identity and policy writes (payload unused).
pub const POLICY_CHANNEL: &str = "berth_policy";

/// While notifications may have been missed, caches are emptied this often.
const RECHECK: Duration = Duration::from_millis(250);
/// How long the listener must stay connected after a loss before caches
/// are trusted again.
const RECOVERY: Duration = Duration::from_secs(3);

type Hook = Box<dyn Fn() + Send + Sync>;

/// Where changes are announced and who hears them. Shared by the metadata,
/// identity and audit stores of one process.
pub struct ChangeHub {
    /// The PostgreSQL pool to send `NOTIFY` through; `None` on SQLite.
    pool: Option<AnyPool>,
    policy_hooks: Mutex<Vec<Hook>>,
}

impl std::fmt::Debug for ChangeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeHub")
            .field("shared", &self.pool.is_some())
            .finish()
    }
}

impl ChangeHub {
    /// A hub for a single-process (SQLite) store: nothing crosses processes.
    pub fn local() -> ChangeHub {
        ChangeHub {
            pool: None,
            policy_hooks: Mutex::new(Vec::new()),
        }
    }

    /// A hub that announces through `pool` (PostgreSQL).
    pub fn shared(pool: AnyPool) -> ChangeHub {
        ChangeHub {
            pool: Some(pool),
            policy_hooks: Mutex::new(Vec::new()),
        }
    }

    /// Whether other processes share the database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.pool.is_some()
    }

    /// Run `hook` whenever another replica (or this one) announces a policy
    /// change, and when the listener lost notifications.
    pub fn on_policy_change(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.hooks().push(Box::new(hook));
    }

    fn hooks(&self) -> std::sync::MutexGuard<'_, Vec<Hook>> {
        self.policy_hooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fire_policy(&self) {
        for h in self.hooks().iter() {
            h();
        }
    }

    /// Tell every replica that policy changed (after the change committed).
    /// A failure is logged, not returned: the change itself is stored, and
    /// the other replicas' caches expire on their own within their TTLs.
    pub async fn notify_policy(&self) {
        let Some(pool) = &self.pool else { return };
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(POLICY_CHANNEL)
            .execute(pool)
            .await
        {
            tracing::warn!(error = %e, "could not announce a policy change to other replicas");
        }
    }
}

/// The statement that announces a manifest/tag change of `repository`
/// inside the writing transaction (PostgreSQL only).
pub async fn notify_manifests_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    repository: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(MANIFESTS_CHANNEL)
        .bind(repository)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Start listening on both channels; returns once `LISTEN` is in place, so
/// no change committed after this returns is missed. The task runs until
/// the returned handle is aborted.
pub async fn listen(
    url: &DatabaseUrl,
    hub: Arc<ChangeHub>,
    manifests: Arc<ManifestCache>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut listener = sqlx::postgres::PgListener::connect(url.expose())
        .await
        .map_err(|e| anyhow::anyhow!("{}", url.scrub(&e.to_string())))?;
    listener
        .listen_all([MANIFESTS_CHANNEL, POLICY_CHANNEL])
        .await
        .map_err(|e| anyhow::anyhow!("LISTEN: {}", url.scrub(&e.to_string())))?;
    let url = url.clone();
    Ok(tokio::spawn(async move {
        // Set when notifications may have been missed: until the listener
        // has been connected again for RECOVERY, caches keep being emptied.
        let mut lost: Option<Instant> = None;
        let forget = || {
            manifests.clear();
            hub.fire_policy();
        };
        loop {
            let next = match lost {
                None => listener.try_recv().await,
                Some(since) if since.elapsed() > RECOVERY => {
                    lost = None;
                    forget();
                    continue;
                }
                Some(_) => match tokio::time::timeout(RECHECK, listener.try_recv()).await {
                    Ok(r) => r,
                    Err(_) => {
                        forget();
                        continue;
                    }
                },
            };
            match next {
                Ok(Some(n)) => match n.channel() {
                    MANIFESTS_CHANNEL => manifests.invalidate(n.payload()),
                    POLICY_CHANNEL => hub.fire_policy(),
                    _ => {}
                },
                Ok(None) => {
                    // The connection dropped; sqlx reconnects and LISTENs
                    // again on the next call. What was sent meanwhile is
                    // lost, so forget everything.
                    tracing::warn!("change listener lost its connection; emptying caches");
                    forget();
                    lost = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %url.scrub(&e.to_string()),
                        "change listener cannot reach the database; retrying");
                    forget();
                    lost = Some(Instant::now());
                    tokio::time::sleep(RECHECK).await;
                }
            }
        }
    }))
}
