//! Caches on the bearer-token hot path.
//!
//! * Verified access tokens: an ES256 verification costs tens of
//!   microseconds, so a token's claims are kept after its first
//!   verification, keyed by the token's SHA-256 (not the token itself, so
//!   the cache holds 32 bytes a token, and no bearer secret), until the
//!   token expires (expiry is still checked on every use).
//! * Live principals: the identity a token names, with its current policy
//!   (role assignments, scope map), re-read at most every
//!   [`LIVE_TTL`] — so disabling an identity, regenerating its credential
//!   or removing a role assignment takes effect within that time even when
//!   no one says so, without a database read per request. Changes made
//!   through the management API empty the cache at once in this process
//!   and, on PostgreSQL, in every replica (`berth_policy` `NOTIFY`, see
//!   [`super::AuthService::follow_other_replicas`]).
//! * Strikes: a token already told `insufficient_scope` for a request.
//!
//! Every cache is bounded ([`CAPACITY`] entries) and swept of what has
//! aged out at most every [`SWEEP_EVERY`] seconds, from the insert path,
//! so memory follows the live working set rather than climbing to the
//! bound; a cache that is full of live entries is emptied (cheap, rare:
//! the next request of each client refills it).
//!
//! Ages are measured with the service's injected [`Clock`], so tests can walk
//! past [`LIVE_TTL`] without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_auth::clock::Clock;

use berth_auth::authorize::PolicyContext;
use berth_auth::error::AuthFailure;
use berth_auth::jwt::AccessClaims;
use berth_auth::principal::Principal;
use dashmap::DashMap;
use sha2::{Digest, Sha256};

/// How long (seconds) a live principal + policy is reused.
pub const LIVE_TTL: u64 = 30;
/// How long (seconds) a strike is remembered.
pub const STRIKE_TTL: u64 = 120;
/// Bound of each cache.
pub const CAPACITY: usize = 20_000;
/// Least time (seconds) between two sweeps of aged-out entries.
pub const SWEEP_EVERY: u64 = 10;

/// A principal as it is now, or why it no longer counts. Shared, so a
/// cache hit costs a reference count, not a copy of the policy.
pub type LiveEntry = Result<Arc<(Principal, PolicyContext)>, AuthFailure>;

/// SHA-256 of a bearer token: the key of the verified-token cache.
type TokenKey = [u8; 32];

/// The caches.
pub struct LiveCaches {
    clock: Arc<dyn Clock>,
    verified: DashMap<TokenKey, Arc<AccessClaims>>,
    principals: DashMap<String, (u64, LiveEntry)>,
    strikes: DashMap<(String, String), u64>,
    /// When the caches were last swept (clock seconds).
    swept_at: AtomicU64,
}

fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

impl LiveCaches {
    /// Empty caches whose entries age by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        Self {
            clock,
            verified: DashMap::new(),
            principals: DashMap::new(),
            strikes: DashMap::new(),
            swept_at: AtomicU64::new(now),
        }
    }

    /// Claims of a token verified before and not yet expired.
    pub fn verified(&self, token: &str) -> Option<Arc<AccessClaims>> {
        let now = self.clock.now();
        self.verified
            .get(&token_key(token))
            .filter(|c| c.exp > now)
            .map(|c| Arc::clone(&c))
    }

    /// Remember a verified token until it expires.
    pub fn remember_verified(&self, token: &str, claims: Arc<AccessClaims>) {
        let now = self.maybe_sweep();
        if claims.exp <= now {
            return;
        }
        bound(&self.verified);
        self.verified.insert(token_key(token), claims);
    }

    /// A fresh live entry for `key`.
    pub fn principal(&self, key: &str) -> Option<LiveEntry> {
        let e = self.principals.get(key)?;
        let age = self.clock.now().saturating_sub(e.0);
        (age < LIVE_TTL).then(|| e.1.clone())
    }

    /// Remember a live entry.
    pub fn remember_principal(&self, key: String, entry: LiveEntry) {
        let now = self.maybe_sweep();
        bound(&self.principals);
        self.principals.insert(key, (now, entry));
    }

    /// Record that token `jti` was told to fetch a token for `scope`;
    /// returns whether it had been told so already (it came back with the
    /// same token).
    pub fn strike(&self, jti: &str, scope: &str) -> bool {
        let now = self.maybe_sweep();
        bound(&self.strikes);
        let key = (jti.to_string(), scope.to_string());
        let seen = self
            .strikes
            .get(&key)
            .is_some_and(|t| now.saturating_sub(*t) < STRIKE_TTL);
        self.strikes.insert(key, now);
        seen
    }

    /// The caches' clock, unix seconds.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Forget live principals (after a policy change in this process).
    pub fn clear(&self) {
        self.principals.clear();
    }

    /// Entries held: (verified tokens, live principals, strikes).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.verified.len(),
            self.principals.len(),
            self.strikes.len(),
        )
    }

    /// Drop what has aged out if the last sweep is [`SWEEP_EVERY`] old;
    /// returns the clock's now. One caller sweeps, the others go on.
    fn maybe_sweep(&self) -> u64 {
        let now = self.clock.now();
        let last = self.swept_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= SWEEP_EVERY
            && self
                .swept_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep(now);
        }
        now
    }

    fn sweep(&self, now: u64) {
        self.verified.retain(|_, c| c.exp > now);
        self.principals
            .retain(|_, e| now.saturating_sub(e.0) < LIVE_TTL);
        self.strikes
            .retain(|_, t| now.saturating_sub(*t) < STRIKE_TTL);
        shrink(&self.verified);
        shrink(&self.principals);
        shrink(&self.strikes);
    }
}

/// Empty a cache that is full of live entries.
fn bound<K: Eq + std::hash::Hash, V>(map: &DashMap<K, V>) {
    if map.len() >= CAPACITY {
        map.clear();
        map.shrink_to_fit();
    }
}

/// Give back the table of a cache that has emptied out, so a burst does
/// not pin its high-water mark.
fn shrink<K: Eq + std::hash::Hash, V>(map: &DashMap<K, V>) {
    if map.capacity() > 4 * map.len().max(1024) {
        map.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use berth_auth::clock::ManualClock;

    use super::*;

    fn claims(jti: &str, exp: u64) -> Arc<AccessClaims> {
        let json = serde_json::json!({
            "jti": jti, "sub": "u", "nbf": 0, "exp": exp, "iat": 0,
            "iss": "i", "aud": "a", "access": []
        });
        Arc::new(serde_json::from_value(json).expect("claims"))
    }

    fn caches(now: u64) -> (Arc<ManualClock>, LiveCaches) {
        let clock = Arc::new(ManualClock::new(now));
        let live = LiveCaches::new(clock.clone());
        (clock, live)
    }

    #[test]
    fn a_verified_token_is_served_until_it_expires() {
        let (clock, live) = caches(1_000);
        live.remember_verified("tok-a", claims("a", 1_100));
        assert_eq!(
            live.verified("tok-a").map(|c| c.jti.clone()),
            Some("a".into())
        );
        assert!(live.verified("tok-b").is_none());
        clock.set(1_100);
        assert!(
            live.verified("tok-a").is_none(),
            "expired tokens are not served"
        );
    }

    #[test]
    fn an_expired_token_is_not_remembered() {
        let (_clock, live) = caches(1_000);
        live.remember_verified("old", claims("o", 999));
        assert_eq!(live.sizes().0, 0);
    }

    #[test]
    fn aged_entries_are_swept_without_reaching_the_bound() {
        let (clock, live) = caches(1_000);
        for n in 0..500 {
            live.remember_verified(&format!("tok-{n}"), claims("x", 1_005));
            live.remember_principal(format!("p-{n}"), Err(AuthFailure::MissingCredentials));
            live.strike(&format!("j-{n}"), "repository:r:pull");
        }
        assert_eq!(live.sizes(), (500, 500, 500));
        // Past every TTL and the sweep interval: the next insert sweeps.
        clock.advance(STRIKE_TTL + SWEEP_EVERY);
        live.remember_verified("fresh", claims("f", 5_000));
        assert_eq!(live.sizes(), (1, 0, 0));
    }

    #[test]
    fn a_cache_full_of_live_entries_is_emptied_not_grown() {
        let (_clock, live) = caches(1_000);
        for n in 0..CAPACITY + 10 {
            live.remember_verified(&format!("tok-{n}"), claims("x", 9_999));
        }
        assert!(live.sizes().0 <= CAPACITY);
    }
}
