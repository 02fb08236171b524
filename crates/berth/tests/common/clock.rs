//! The server's clock for expiry tests: a file holding Unix seconds that
//! `berth serve` reads as "now" through the test-only
//! `BERTH_TEST_CLOCK_FILE` hook, so tests move time instead of sleeping.

use std::path::PathBuf;

use super::TestServer;

/// A clock file starting at the real time `t0`.
pub struct Clock {
    path: PathBuf,
    t0: u64,
    _dir: tempfile::TempDir,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock file set to the real current time.
    pub fn new() -> Clock {
        let dir = tempfile::tempdir().expect("clock dir");
        let t0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let c = Clock {
            path: dir.path().join("now"),
            t0,
            _dir: dir,
        };
        c.at(0);
        c
    }

    /// Set the server's time to `t0 + offset` seconds.
    pub fn at(&self, offset: i64) {
        let t = (self.t0 as i64 + offset) as u64;
        std::fs::write(&self.path, t.to_string()).expect("write clock file");
    }

    /// A `berth serve` reading its time from this clock.
    pub async fn server(&self) -> TestServer {
        let path = self.path.display().to_string();
        TestServer::start_with_env(&[], &[("BERTH_TEST_CLOCK_FILE", &path)]).await
    }
}
