//! Secrets: argon2id hashing, random secret generation, constant-time
//! comparison, and a cache of recently verified credentials.
//!
//! Stored hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$…`).
//! Verification uses the parameters recorded in the string, so raising the
//! defaults does not lock anyone out; [`SecretHasher::needs_rehash`] tells
//! the server when to re-hash after a successful login. Anything that is
//! not an argon2id PHC string is refused with a typed error rather than
//! silently never matching.
//!
//! argon2 costs tens of milliseconds by design; [`VerifiedCache`] lets the
//! token service skip it when the same identity presents the same secret
//! again within a short TTL. Its keys are HMAC-SHA256 values under a
//! per-process random key, so the cache never holds a secret or anything
//! that could be brute-forced offline without that key.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use ring::hmac;
use subtle::ConstantTimeEq;

/// Bytes of entropy in a generated secret.
pub const SECRET_BYTES: usize = 32;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Argon2Params {
    /// OWASP's recommendation: m = 19 MiB, t = 2, p = 1.
    pub const OWASP: Argon2Params = Argon2Params {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params::OWASP
    }
}

/// Errors hashing or verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Parameters argon2 refuses.
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    /// The stored hash is not a PHC string berth can verify (not argon2id,
    /// malformed, unknown version).
    #[error("unsupported stored hash: {0}")]
    UnsupportedHash(String),
    /// Hashing failed.
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Hashes and verifies secrets with argon2id.
///
/// Each argon2 computation holds `memory_kib` of RAM (19 MiB by default),
/// so at most one per CPU runs at a time ([`SecretHasher::slot`]): a burst
/// of logins queues instead of multiplying the server's memory.
#[derive(Debug, Clone)]
pub struct SecretHasher {
    params: Argon2Params,
    argon: Argon2<'static>,
    dummy_hash: String,
    slots: Arc<Slots>,
}

/// A counting semaphore bounding concurrent argon2 computations.
#[derive(Debug)]
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn per_cpu() -> Arc<Slots> {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 16);
        Arc::new(Slots {
            free: Mutex::new(n),
            freed: Condvar::new(),
        })
    }
}

/// Permission to run one argon2 computation; released on drop.
#[derive(Debug)]
pub struct ArgonSlot<'a> {
    slots: &'a Slots,
}

impl Drop for ArgonSlot<'_> {
    fn drop(&mut self) {
        let mut free = self.slots.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        self.slots.freed.notify_one();
    }
}

impl SecretHasher {
    /// A hasher with the given cost (use [`SecretHasher::default`] for the
    /// production parameters; small parameters are for tests only).
    pub fn new(params: Argon2Params) -> Result<Self, PasswordError> {
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| PasswordError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let mut hasher = Self {
            params,
            argon,
            dummy_hash: String::new(),
            slots: Slots::per_cpu(),
        };
        hasher.dummy_hash = hasher.hash(&generate_secret())?;
        Ok(hasher)
    }

    /// The cost parameters.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// Wait for a free argon2 slot (blocks the calling thread; call it
    /// where blocking is allowed, like every argon2 computation). Hold it
    /// across [`SecretHasher::verify_in_slot`] calls.
    pub fn slot(&self) -> ArgonSlot<'_> {
        let mut free = self.slots.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self
                .slots
                .freed
                .wait(free)
                .unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        ArgonSlot { slots: &self.slots }
    }

    /// Hash `secret` with a fresh random salt; returns a PHC string.
    pub fn hash(&self, secret: &str) -> Result<String, PasswordError> {
        let _slot = self.slot();
        self.hash_in_slot(secret)
    }

    #[cfg(test)]
    fn hash_unslotted_for_test(&self, secret: &str) -> String {
        self.hash_in_slot(secret).unwrap_or_default()
    }

    fn hash_in_slot(&self, secret: &str) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
        self.argon
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// Whether `secret` matches the PHC string `stored`. `Err` when `stored`
    /// is not an argon2id hash berth can check.
    pub fn verify(&self, secret: &str, stored: &str) -> Result<bool, PasswordError> {
        let slot = self.slot();
        self.verify_in_slot(&slot, secret, stored)
    }

    /// [`SecretHasher::verify`] for a caller already holding a slot.
    pub fn verify_in_slot(
        &self,
        _slot: &ArgonSlot<'_>,
        secret: &str,
        stored: &str,
    ) -> Result<bool, PasswordError> {
        let parsed = parse_argon2id(stored)?;
        match self.argon.verify_password(secret.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(e) => Err(PasswordError::UnsupportedHash(e.to_string())),
        }
    }

    /// Spend the same effort as a real verification, for unknown
    /// identities, so response time does not reveal whether a name exists.
    pub fn dummy_verify(&self, secret: &str) {
        let _ = self.verify(secret, &self.dummy_hash);
    }

    /// [`SecretHasher::dummy_verify`] for a caller already holding a slot.
    pub fn dummy_verify_in_slot(&self, slot: &ArgonSlot<'_>, secret: &str) {
        let _ = self.verify_in_slot(slot, secret, &self.dummy_hash);
    }

    /// Whether `stored` was hashed with weaker parameters than this hasher's
    /// (re-hash it after the next successful login).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = parse_argon2id(stored) else {
            return true;
        };
        let Ok(p) = Params::try_from(&parsed) else {
            return true;
        };
        p.m_cost() < self.params.memory_kib
            || p.t_cost() < self.params.iterations
            || p.p_cost() < self.params.parallelism
    }
}

impl Default for SecretHasher {
    /// The production hasher (OWASP parameters).
    fn default() -> Self {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default());
        let mut hasher = Self {
            params: Argon2Params {
                memory_kib: Params::DEFAULT_M_COST,
                iterations: Params::DEFAULT_T_COST,
                parallelism: Params::DEFAULT_P_COST,
            },
            argon,
            dummy_hash: String::new(),
            slots: Slots::per_cpu(),
        };
        // argon2's defaults are OWASP's; hashing with them cannot fail.
        hasher.dummy_hash = hasher.hash("dummy").unwrap_or_default();
        hasher
    }
}

fn parse_argon2id(stored: &str) -> Result<PasswordHash<'_>, PasswordError> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| PasswordError::UnsupportedHash(e.to_string()))?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(PasswordError::UnsupportedHash(format!(
            "algorithm {} (only argon2id)",
            parsed.algorithm
        )));
    }
    Ok(parsed)
}

/// A new random secret: 32 bytes from the OS, URL-safe base64 without
/// padding (43 characters), never starting with `-`: a leading dash makes
/// command lines (`docker login -p`, `berth check-health -p`) read the
/// secret as an option. Redrawing the 1 in 64 that would costs 0.02 bits.
pub fn generate_secret() -> String {
    loop {
        let mut b = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let s = URL_SAFE_NO_PAD.encode(b);
        if !s.starts_with('-') {
            return s;
        }
    }
}

/// Constant-time equality for secrets compared by hand (time depends only
/// on the lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

struct CacheEntry<V> {
    identity: String,
    value: V,
    inserted_at: u64,
}

/// A bounded, expiring cache of verified (identity, secret) pairs.
///
/// The key is HMAC-SHA256 over the length-prefixed identity and secret
/// under a random per-process key. Only successful verifications go in.
/// [`VerifiedCache::invalidate_identity`] drops an identity at once (secret
/// regenerated, disabled); the TTL bounds how long another replica, which
/// did not see the change, can keep accepting an old secret: keep it at or
/// under berth's 60 s propagation promise.
pub struct VerifiedCache<V> {
    key: hmac::Key,
    ttl: u64,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], CacheEntry<V>>>,
}

impl<V> std::fmt::Debug for VerifiedCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("len", &self.entries.lock().map(|m| m.len()).unwrap_or(0))
            .finish_non_exhaustive()
    }
}

impl<V: Clone> VerifiedCache<V> {
    /// A cache of at most `capacity` entries living `ttl_secs` each.
    pub fn new(capacity: usize, ttl_secs: u64) -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &k),
            ttl: ttl_secs,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cache_key(&self, identity: &str, secret: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(identity.len() as u64).to_be_bytes());
        ctx.update(identity.as_bytes());
        ctx.update(&(secret.len() as u64).to_be_bytes());
        ctx.update(secret.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], CacheEntry<V>>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached value if `identity` verified with `secret` less than the
    /// TTL ago.
    pub fn get(&self, identity: &str, secret: &str, now: u64) -> Option<V> {
        let k = self.cache_key(identity, secret);
        let mut map = self.lock();
        match map.get(&k) {
            Some(e) if now < e.inserted_at.saturating_add(self.ttl) && e.identity == identity => {
                Some(e.value.clone())
            }
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Record a successful verification.
    pub fn insert(&self, identity: &str, secret: &str, value: V, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let k = self.cache_key(identity, secret);
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&k) {
            let ttl = self.ttl;
            map.retain(|_, e| now < e.inserted_at.saturating_add(ttl));
            if map.len() >= self.capacity {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, e)| e.inserted_at)
                    .map(|(k, _)| *k)
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            k,
            CacheEntry {
                identity: identity.to_string(),
                value,
                inserted_at: now,
            },
        );
    }

    /// Forget every entry of `identity`.
    pub fn invalidate_identity(&self, identity: &str) {
        self.lock().retain(|_, e| e.identity != identity);
    }

    /// Forget everything.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Entries held (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny parameters: tests only.
    #[test]
    fn argon2_runs_at_most_one_per_cpu_at_a_time() {
        let h = fast();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 16);
        let held: Vec<_> = (0..cpus).map(|_| h.slot()).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let h2 = h.clone();
        let stored = h.hash_unslotted_for_test("s3cret");
        let waiter = std::thread::spawn(move || {
            let ok = h2.verify("s3cret", &stored);
            let _ = tx.send(ok);
        });
        // Every slot is taken: the verification must wait.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        drop(held);
        let verified = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("verification runs once a slot is free");
        assert_eq!(verified, Ok(true));
        let _ = waiter.join();
    }

    fn fast() -> SecretHasher {
        SecretHasher::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hash_round_trip_and_wrong_secret() {
        let h = fast();
        let phc = h.hash("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify("s3cret", &phc).unwrap());
        assert!(!h.verify("s3cret ", &phc).unwrap());
        assert!(!h.verify("", &phc).unwrap());
        assert_ne!(phc, h.hash("s3cret").unwrap(), "salted");
    }

    #[test]
    fn unsupported_hashes_are_errors_not_mismatches() {
        let h = fast();
        for bad in [
            "",
            "plaintext",
            "$2b$12$abcdefghijklmnopqrstuu5Q0e3k7bq0Yl8A9m1D2f3g4h5i6j7k8",
            "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        ] {
            assert!(
                matches!(h.verify("x", bad), Err(PasswordError::UnsupportedHash(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rehash_when_weaker() {
        let weak = fast();
        let phc = weak.hash("x").unwrap();
        assert!(!weak.needs_rehash(&phc));
        let strong = SecretHasher::new(Argon2Params {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        assert!(strong.needs_rehash(&phc));
        assert!(strong.verify("x", &phc).unwrap(), "old params still verify");
        assert!(strong.needs_rehash("garbage"));
    }

    #[test]
    fn production_defaults_are_owasp() {
        assert_eq!(Argon2Params::default(), Argon2Params::OWASP);
        assert_eq!(Argon2Params::OWASP.memory_kib, 19_456);
        assert_eq!(SecretHasher::default().params(), Argon2Params::OWASP);
        assert!(SecretHasher::new(Argon2Params {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1
        })
        .is_err());
    }

    #[test]
    fn generated_secrets() {
        assert!(
            (0..2000).all(|_| !generate_secret().starts_with('-')),
            "a secret must never look like a command-line option"
        );
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), SECRET_BYTES);
    }

    #[test]
    fn constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn cache_hit_miss_ttl() {
        let c: VerifiedCache<u32> = VerifiedCache::new(10, 60);
        assert_eq!(c.get("ana", "pw", 100), None);
        c.insert("ana", "pw", 7, 100);
        assert_eq!(c.get("ana", "pw", 100), Some(7));
        assert_eq!(c.get("ana", "pw", 159), Some(7));
        assert_eq!(c.get("ana", "other", 101), None, "other secret misses");
        assert_eq!(c.get("bob", "pw", 101), None, "other identity misses");
        assert_eq!(c.get("ana", "pw", 160), None, "expired at ttl");
        assert!(c.is_empty(), "expired entry swept on read");
    }

    #[test]
    fn cache_keys_are_unambiguous() {
        let c: VerifiedCache<u32> = VerifiedCache::new(10, 60);
        c.insert("ab", "c", 1, 0);
        assert_eq!(c.get("a", "bc", 0), None);
    }

    #[test]
    fn cache_invalidation_by_identity() {
        let c: VerifiedCache<u32> = VerifiedCache::new(10, 60);
        c.insert("ana", "pw1", 1, 0);
        c.insert("ana", "pw2", 2, 0);
        c.insert("bob", "pw", 3, 0);
        c.invalidate_identity("ana");
        assert_eq!(c.get("ana", "pw1", 1), None);
        assert_eq!(c.get("ana", "pw2", 1), None);
        assert_eq!(c.get("bob", "pw", 1), Some(3));
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn cache_is_bounded() {
        let c: VerifiedCache<u32> = VerifiedCache::new(3, 60);
        for i in 0..3 {
            c.insert(&format!("id{i}"), "pw", i, i as u64);
        }
        c.insert("id3", "pw", 3, 10);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("id0", "pw", 10), None, "oldest evicted");
        assert_eq!(c.get("id3", "pw", 10), Some(3));
        // Expired entries go first.
        c.insert("id4", "pw", 4, 65);
        assert_eq!(c.len(), 2, "id1 and id2 expired by t=65, id3 kept");
        let zero: VerifiedCache<u32> = VerifiedCache::new(0, 60);
        zero.insert("a", "b", 1, 0);
        assert!(zero.is_empty());
    }
}
