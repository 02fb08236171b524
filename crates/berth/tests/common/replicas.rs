//! Replicas: several `berth serve` processes on one PostgreSQL database
//! (a private server from `berth-testpg`) and one data directory for
//! blobs (filesystem blobs on a shared disk).

use std::time::{Duration, Instant};

use berth_testpg::PgServer;

use super::TestServer;

/// The login server every replica is started with (the name clients would
/// use for the load balancer; tokens are issued for it).
pub const LOGIN_SERVER: &str = "registry.replicas.test";

/// Two replicas, `a` and `b`, on one database. Fields drop in order: the
/// replicas stop before PostgreSQL does.
pub struct PgPair {
    /// Replica A (started first: it bootstraps the registry).
    pub a: TestServer,
    /// Replica B, on A's data directory.
    pub b: TestServer,
    /// The database both use.
    pub url: String,
    /// The PostgreSQL server.
    pub pg: PgServer,
}

impl PgPair {
    /// Start PostgreSQL, then A, then B.
    pub async fn start() -> PgPair {
        Self::start_with(&[]).await
    }

    /// Like [`PgPair::start`], with extra `berth serve` arguments for both.
    /// Both name the registry [`LOGIN_SERVER`], as replicas behind one
    /// load balancer do, so each accepts the other's tokens.
    pub async fn start_with(args: &[&str]) -> PgPair {
        let pg = PgServer::start();
        let url = pg.create_database();
        let mut all = vec!["--login-server", LOGIN_SERVER];
        all.extend_from_slice(args);
        let a = TestServer::start_on_postgres(&url, None, &all).await;
        let b = TestServer::start_on_postgres(&url, Some(&a), &all).await;
        PgPair { a, b, url, pg }
    }

    /// The database's name (for `psql`).
    pub fn db_name(&self) -> String {
        self.url.rsplit('/').next().unwrap_or_default().to_string()
    }
}

/// Poll `check` every 20 ms until it holds; how long that took, or `None`
/// after `limit`.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
