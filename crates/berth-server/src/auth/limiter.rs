//! Failed-login throttling that strangers cannot turn into a lockout.
//!
//! Three fixed-window counters of failed logins (successes never count):
//!
//! * per client **address** (IPv6 by its /64): `per_address` failures in a
//!   window refuse further logins from that address, for any account
//!   (password spraying);
//! * per (**account**, address): `per_account_address` failures refuse
//!   that address for that account (guessing one password);
//! * per **account**, from anywhere: it never refuses by itself. Once it
//!   reaches `account_alarm` the account is under attack, and an address
//!   that has failed `alarm_per_account_address` times for it is refused
//!   for it. An address that has not been failing is always let through
//!   to the password check, so a correct password from the owner's
//!   address still works while a botnet guesses.
//!
//! Replicas sharing one metadata database share the counters: every
//! failure is sent to a background writer that adds it to the
//! `login_throttle` table and reads back the shared totals, which replace
//! this process's copy. [`FailureLimiter::check`] reads only that copy (no
//! database access on any login), so another replica's failures are seen
//! here after this replica's next failure for the same key: with `n`
//! replicas an attacker gets at most `n - 1` extra guesses per key and
//! window. See docs/auth.md.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_store::IdentityRepo;
use tokio::sync::mpsc;

/// Limits on failed logins.
#[derive(Debug, Clone, Copy)]
pub struct LimiterConfig {
    /// Failures per window from one address for one account.
    pub per_account_address: u32,
    /// Failures per window from one address, all accounts together.
    pub per_address: u32,
    /// Failures per window for one account from all addresses that put
    /// it under attack.
    pub account_alarm: u32,
    /// While the account is under attack: failures per window from one
    /// address for it.
    pub alarm_per_account_address: u32,
    /// Window length.
    pub window: Duration,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            per_account_address: 20,
            per_address: 60,
            account_alarm: 60,
            alarm_per_account_address: 3,
            window: Duration::from_secs(60),
        }
    }
}

/// Keys kept in memory at most (expired windows are dropped first).
const CAPACITY: usize = 100_000;
/// Failures waiting for the database writer at most (more are counted in
/// memory only and logged).
const QUEUE: usize = 4096;
/// Failures written in one transaction at most.
const BATCH: usize = 64;

/// Which limit refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many failures from the address.
    Address,
    /// Too many failures from the address for the account.
    AccountAddress,
    /// The account is under attack and the address has been failing for it.
    AccountUnderAttack,
}

impl Limit {
    /// Label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Address => "address",
            Limit::AccountAddress => "account_address",
            Limit::AccountUnderAttack => "account_under_attack",
        }
    }
}

/// A fixed window: start (unix ms) and failures.
#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: i64,
    failures: u32,
}

type Windows = Mutex<HashMap<String, Window>>;

/// Counts failed logins.
pub struct FailureLimiter {
    config: LimiterConfig,
    windows: Arc<Windows>,
    writer: Option<mpsc::Sender<Vec<String>>>,
}

impl std::fmt::Debug for FailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("config", &self.config)
            .field("shared", &self.writer.is_some())
            .finish()
    }
}

impl FailureLimiter {
    /// A limiter whose counters live in this process only.
    pub fn new(config: LimiterConfig) -> Self {
        FailureLimiter {
            config,
            windows: Arc::default(),
            writer: None,
        }
    }

    /// A limiter whose counters are shared through `repo`'s database with
    /// every replica using it. Spawns the writer task (needs a runtime).
    pub fn shared(config: LimiterConfig, repo: IdentityRepo) -> Self {
        let windows: Arc<Windows> = Arc::default();
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_failures(config, repo, rx, windows.clone()));
        FailureLimiter {
            config,
            windows,
            writer: Some(tx),
        }
    }

    /// Seconds to wait if a login from `ip` for `account` must be refused.
    /// Reads memory only.
    pub fn check(&self, ip: Option<IpAddr>, account: Option<&str>) -> Option<u64> {
        let (limit, wait) = self.refusal(ip, account)?;
        tracing::info!(target: "berth::audit", limit = limit.as_str(), client_ip = ?ip, identity = ?account, retry_after_secs = wait, "login throttled");
        crate::metrics::login_throttled(limit.as_str());
        Some(wait)
    }

    /// Which limit refuses (`ip`, `account`) now, and for how many seconds.
    pub fn refusal(&self, ip: Option<IpAddr>, account: Option<&str>) -> Option<(Limit, u64)> {
        let now = now_ms();
        let window = self.window_ms();
        let map = self.windows.lock().ok()?;
        let live = |key: &str| {
            map.get(key).filter(|w| now < w.start_ms + window).map(|w| {
                (
                    w.failures,
                    ((w.start_ms + window - now) as u64).div_ceil(1000),
                )
            })
        };
        let c = &self.config;
        let keys = Keys::new(ip, account);
        if let Some((n, left)) = keys.address.as_deref().and_then(live) {
            if n >= c.per_address {
                return Some((Limit::Address, left.max(1)));
            }
        }
        let (Some(pair), Some(acct)) = (keys.pair.as_deref(), keys.account.as_deref()) else {
            return None;
        };
        let (n, pair_left) = live(pair)?;
        if n >= c.per_account_address {
            return Some((Limit::AccountAddress, pair_left.max(1)));
        }
        match live(acct) {
            Some((total, acct_left))
                if total >= c.account_alarm && n >= c.alarm_per_account_address =>
            {
                Some((Limit::AccountUnderAttack, pair_left.min(acct_left).max(1)))
            }
            _ => None,
        }
    }

    /// Record a failed login from `ip` for `account` (when it names one):
    /// counted here at once, and in the shared table in the background.
    pub fn record_failure(&self, ip: Option<IpAddr>, account: Option<&str>) {
        let keys = Keys::new(ip, account).all();
        if keys.is_empty() {
            return;
        }
        let now = now_ms();
        let window = self.window_ms();
        if let Ok(mut map) = self.windows.lock() {
            if map.len() >= CAPACITY {
                map.retain(|_, w| now < w.start_ms + window);
                if map.len() >= CAPACITY {
                    map.clear();
                }
            }
            for key in &keys {
                let w = map.entry(key.clone()).or_insert(Window {
                    start_ms: now,
                    failures: 0,
                });
                if now >= w.start_ms + window {
                    *w = Window {
                        start_ms: now,
                        failures: 0,
                    };
                }
                w.failures = w.failures.saturating_add(1);
                if key.starts_with(ACCOUNT) && w.failures == self.config.account_alarm {
                    alarm(key, w.failures, self.config.window);
                }
            }
        }
        if let Some(tx) = &self.writer {
            if tx.try_send(keys).is_err() {
                tracing::warn!(
                    "failed-login queue full: a failure is counted on this replica only"
                );
            }
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.config.window.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// Log and count that an account crossed the alarm threshold.
fn alarm(key: &str, failures: u32, window: Duration) {
    let account = key.strip_prefix(ACCOUNT).unwrap_or(key);
    tracing::warn!(target: "berth::audit", identity = %account, failures, window_secs = window.as_secs(), "account under attack: failed logins from many addresses; addresses that keep failing are refused for it, others still reach the password check");
    crate::metrics::login_account_alarm();
}

const ADDRESS: &str = "a:";
const PAIR: &str = "p:";
const ACCOUNT: &str = "u:";

/// The counter keys of one attempt.
struct Keys {
    address: Option<String>,
    pair: Option<String>,
    account: Option<String>,
}

impl Keys {
    fn new(ip: Option<IpAddr>, account: Option<&str>) -> Keys {
        let addr = ip.map(address_key);
        let acct = account
            .filter(|a| !a.is_empty())
            .map(|a| a.to_ascii_lowercase());
        Keys {
            pair: acct
                .as_ref()
                .map(|a| format!("{PAIR}{a}|{}", addr.as_deref().unwrap_or("-"))),
            address: addr.map(|a| format!("{ADDRESS}{a}")),
            account: acct.map(|a| format!("{ACCOUNT}{a}")),
        }
    }

    fn all(self) -> Vec<String> {
        [self.address, self.pair, self.account]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// The address a client is counted under ([`crate::conn::address_bucket`]:
/// IPv6 by its /64, like the connection limits).
fn address_key(ip: IpAddr) -> String {
    crate::conn::address_bucket(ip).to_string()
}

fn now_ms() -> i64 {
    berth_store::now_ms()
}

/// The writer task: adds queued failures to the shared table in batches
/// and copies the shared totals back, pruning ended windows once a window.
async fn write_failures(
    config: LimiterConfig,
    repo: IdentityRepo,
    mut rx: mpsc::Receiver<Vec<String>>,
    windows: Arc<Windows>,
) {
    let window_ms = i64::try_from(config.window.as_millis()).unwrap_or(i64::MAX / 2);
    let mut last_prune = 0i64;
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let now = now_ms();
        let keys: Vec<String> = batch.drain(..).flatten().collect();
        match repo.record_login_failures(&keys, now, window_ms).await {
            Ok(shared) => {
                if let Ok(mut map) = windows.lock() {
                    for (key, w) in keys.into_iter().zip(shared) {
                        let failures = u32::try_from(w.failures).unwrap_or(u32::MAX);
                        let local = map.entry(key.clone()).or_insert(Window {
                            start_ms: w.start_ms,
                            failures: 0,
                        });
                        let before = local.failures;
                        // The shared total includes this replica's written
                        // failures; failures still queued are only local.
                        // The shared row wins (its window may have started
                        // on another replica, before this one's).
                        if w.start_ms == local.start_ms {
                            local.failures = local.failures.max(failures);
                        } else {
                            *local = Window {
                                start_ms: w.start_ms,
                                failures,
                            };
                        }
                        let crossed =
                            before < config.account_alarm && local.failures >= config.account_alarm;
                        if crossed && key.starts_with(ACCOUNT) {
                            alarm(&key, failures, config.window);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "recording failed logins in the shared table"),
        }
        if now - last_prune >= window_ms {
            last_prune = now;
            if let Err(e) = repo.prune_login_throttle(now - window_ms).await {
                tracing::warn!(error = %e, "pruning the failed-login table");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> FailureLimiter {
        FailureLimiter::new(LimiterConfig {
            per_account_address: 3,
            per_address: 5,
            account_alarm: 6,
            alarm_per_account_address: 1,
            window: Duration::from_secs(60),
        })
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn one_account_from_one_address() {
        let l = limiter();
        for _ in 0..3 {
            assert_eq!(l.refusal(ip("10.0.0.1"), Some("bob")), None);
            l.record_failure(ip("10.0.0.1"), Some("bob"));
        }
        let (limit, _) = l.refusal(ip("10.0.0.1"), Some("BOB")).expect("refused");
        assert_eq!(limit, Limit::AccountAddress);
        // Another account from the same address, and the same account from
        // another address, still reach the password check.
        assert_eq!(l.refusal(ip("10.0.0.1"), Some("alice")), None);
        assert_eq!(l.refusal(ip("10.0.0.2"), Some("bob")), None);
    }

    #[test]
    fn spraying_from_one_address() {
        let l = limiter();
        for n in 0..5 {
            l.record_failure(ip("10.0.0.1"), Some(&format!("user{n}")));
        }
        let (limit, _) = l.refusal(ip("10.0.0.1"), Some("carol")).expect("refused");
        assert_eq!(limit, Limit::Address);
        assert_eq!(
            l.refusal(ip("10.0.0.1"), None).map(|r| r.0),
            Some(Limit::Address)
        );
    }

    #[test]
    fn many_addresses_never_lock_out_a_quiet_one() {
        let l = limiter();
        for n in 0..20 {
            l.record_failure(ip(&format!("10.0.1.{n}")), Some("ci"));
        }
        // Under attack: addresses that failed are refused for the account…
        let (limit, _) = l.refusal(ip("10.0.1.3"), Some("ci")).expect("refused");
        assert_eq!(limit, Limit::AccountUnderAttack);
        // …one that did not fail is not.
        assert_eq!(l.refusal(ip("10.9.9.9"), Some("ci")), None);
    }

    #[test]
    fn ipv6_counts_by_64() {
        let l = limiter();
        for n in 0..5 {
            l.record_failure(ip(&format!("2001:db8:1:2::{n}")), None);
        }
        assert!(l.refusal(ip("2001:db8:1:2::ffff"), None).is_some());
        assert_eq!(l.refusal(ip("2001:db8:1:3::1"), None), None);
    }
}
