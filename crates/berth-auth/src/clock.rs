//! Injectable time.
//!
//! Every time-dependent decision in this crate (token lifetimes, leeway,
//! secret expiry, cache TTLs) reads the time through [`Clock`], so tests can
//! walk to the exact edge of a window with [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;

    /// The current time as a [`SystemTime`].
    fn system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.now())
    }
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            // A clock set before 1970 is a broken host; treat it as the epoch.
            .unwrap_or(0)
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `unix_seconds`.
    pub fn new(unix_seconds: u64) -> Self {
        Self {
            now: AtomicU64::new(unix_seconds),
        }
    }

    /// Move the clock to `unix_seconds` (backwards too).
    pub fn set(&self, unix_seconds: u64) {
        self.now.store(unix_seconds, Ordering::SeqCst);
    }

    /// Move the clock forward by `seconds`.
    pub fn advance(&self, seconds: u64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// A clock that reads the time (whole Unix seconds, decimal text) from a
/// file on every call; for end-to-end tests that must move a running
/// server's clock (`berth serve` uses it when `BERTH_TEST_CLOCK_FILE` is
/// set). When the file is missing or unreadable the real time is used.
#[derive(Debug, Clone)]
pub struct FileClock {
    path: std::path::PathBuf,
}

impl FileClock {
    /// A clock reading `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl Clock for FileClock {
    fn now(&self) -> u64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| SystemClock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(60);
        assert_eq!(c.now(), 1_060);
        c.set(5);
        assert_eq!(c.now(), 5);
        assert_eq!(c.system_time(), UNIX_EPOCH + Duration::from_secs(5));
    }

    #[test]
    fn file_clock_reads_the_file_and_falls_back() {
        let dir = std::env::temp_dir().join(format!("berth-clock-{}", std::process::id()));
        let c = FileClock::new(&dir);
        assert!(c.now() > 1_577_836_800, "missing file → real time");
        std::fs::write(&dir, "1234\n").expect("write");
        assert_eq!(c.now(), 1234);
        std::fs::write(&dir, "garbage").expect("write");
        assert!(c.now() > 1_577_836_800, "unparsable → real time");
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800);
    }
}
