//! Failed-login rate limiting per client IP and per identity.
//!
//! A fixed window per key: after `max_failures` failures within `window`,
//! further attempts from that key are refused with 429 until the window
//! ends. Successful logins do not count. The table is bounded: when it
//! grows past `capacity`, expired windows are dropped first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits on failed logins.
#[derive(Debug, Clone, Copy)]
pub struct LimiterConfig {
    /// Failures allowed per window and key.
    pub max_failures: u32,
    /// Window length.
    pub window: Duration,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            max_failures: 20,
            window: Duration::from_secs(60),
        }
    }
}

const CAPACITY: usize = 100_000;

#[derive(Debug, Hash, PartialEq, Eq, Clone)]
enum Key {
    Ip(IpAddr),
    Identity(String),
}

/// Counts failed logins.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    config: LimiterConfig,
    windows: Mutex<HashMap<Key, (Instant, u32)>>,
}

impl FailureLimiter {
    /// A limiter with `config`.
    pub fn new(config: LimiterConfig) -> Self {
        FailureLimiter {
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait if `ip` or `identity` is over the limit.
    pub fn check(&self, ip: Option<IpAddr>, identity: Option<&str>) -> Option<u64> {
        let now = Instant::now();
        let map = self.windows.lock().ok()?;
        let mut wait = None;
        for key in keys(ip, identity) {
            if let Some((start, n)) = map.get(&key) {
                let elapsed = now.duration_since(*start);
                if elapsed < self.config.window && *n >= self.config.max_failures {
                    let left = (self.config.window - elapsed).as_secs().max(1);
                    wait = Some(wait.map_or(left, |w: u64| w.max(left)));
                }
            }
        }
        wait
    }

    /// Record a failed login.
    pub fn record_failure(&self, ip: Option<IpAddr>, identity: Option<&str>) {
        let now = Instant::now();
        let Ok(mut map) = self.windows.lock() else {
            return;
        };
        if map.len() >= CAPACITY {
            let window = self.config.window;
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        for key in keys(ip, identity) {
            let e = map.entry(key).or_insert((now, 0));
            if now.duration_since(e.0) >= self.config.window {
                *e = (now, 0);
            }
            e.1 += 1;
        }
    }
}

fn keys(ip: Option<IpAddr>, identity: Option<&str>) -> Vec<Key> {
    let mut k = Vec::with_capacity(2);
    if let Some(ip) = ip {
        k.push(Key::Ip(ip));
    }
    if let Some(id) = identity.filter(|i| !i.is_empty()) {
        k.push(Key::Identity(id.to_ascii_lowercase()));
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_after_max_failures() {
        let l = FailureLimiter::new(LimiterConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
        });
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(l.check(Some(ip), Some("bob")), None);
            l.record_failure(Some(ip), Some("bob"));
        }
        assert!(l.check(Some(ip), Some("alice")).is_some(), "same IP");
        assert!(l.check(None, Some("BOB")).is_some(), "same identity");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!(l.check(Some(other), Some("carol")), None);
    }
}
