//! Caches on the bearer-token hot path.
//!
//! * Verified access tokens: an ES256 verification costs tens of
//!   microseconds, so a token's claims are kept after its first
//!   verification (bounded; expiry is still checked on every use).
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
//! Ages are measured with the service's injected [`Clock`], so tests can walk
//! past [`LIVE_TTL`] without sleeping.

use std::sync::Arc;

use berth_auth::clock::Clock;

use berth_auth::authorize::PolicyContext;
use berth_auth::error::AuthFailure;
use berth_auth::jwt::AccessClaims;
use berth_auth::principal::Principal;
use dashmap::DashMap;

/// How long (seconds) a live principal + policy is reused.
pub const LIVE_TTL: u64 = 30;
/// How long (seconds) a strike is remembered.
pub const STRIKE_TTL: u64 = 120;
/// Bound of each cache; past it the cache is emptied (cheap, rare).
const CAPACITY: usize = 50_000;

/// A principal as it is now, or why it no longer counts. Shared, so a
/// cache hit costs a reference count, not a copy of the policy.
pub type LiveEntry = Result<Arc<(Principal, PolicyContext)>, AuthFailure>;

/// The caches.
pub struct LiveCaches {
    clock: Arc<dyn Clock>,
    verified: DashMap<String, Arc<AccessClaims>>,
    principals: DashMap<String, (u64, LiveEntry)>,
    strikes: DashMap<(String, String), u64>,
}

impl LiveCaches {
    /// Empty caches whose entries age by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            verified: DashMap::new(),
            principals: DashMap::new(),
            strikes: DashMap::new(),
        }
    }

    /// Claims of a token verified before.
    pub fn verified(&self, token: &str) -> Option<Arc<AccessClaims>> {
        self.verified.get(token).map(|c| Arc::clone(&c))
    }

    /// Remember a verified token.
    pub fn remember_verified(&self, token: &str, claims: Arc<AccessClaims>) {
        if self.verified.len() >= CAPACITY {
            self.verified.clear();
        }
        self.verified.insert(token.to_string(), claims);
    }

    /// A fresh live entry for `key`.
    pub fn principal(&self, key: &str) -> Option<LiveEntry> {
        let e = self.principals.get(key)?;
        let age = self.clock.now().saturating_sub(e.0);
        (age < LIVE_TTL).then(|| e.1.clone())
    }

    /// Remember a live entry.
    pub fn remember_principal(&self, key: String, entry: LiveEntry) {
        if self.principals.len() >= CAPACITY {
            self.principals.clear();
        }
        self.principals.insert(key, (self.clock.now(), entry));
    }

    /// Record that token `jti` was told to fetch a token for `scope`;
    /// returns whether it had been told so already (it came back with the
    /// same token).
    pub fn strike(&self, jti: &str, scope: &str) -> bool {
        if self.strikes.len() >= CAPACITY {
            self.strikes.clear();
        }
        let key = (jti.to_string(), scope.to_string());
        let now = self.clock.now();
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
}
