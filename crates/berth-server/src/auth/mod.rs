//! The identity-and-access layer of the server: the access gate for `/v2`
//! and the token service endpoints, over `berth-auth` (policy, tokens,
//! secrets) and `berth-store`'s identity repository.
//!
//! * [`gate`]: authenticates a `/v2` request (Bearer, Basic or anonymous),
//!   applies network rules and failed-login throttling, and authorizes the
//!   access the request needs.
//! * [`token_api`]: `/oauth2/token`, `/oauth2/exchange`, `/directory/token`
//!   and the JWKS document.
//! * [`oidc`]: workload identity logins with external OIDC assertions.
//! * [`live`]: caches that keep the per-request cost of a bearer token low
//!   (verified tokens, live principals + policy) while honouring the 60 s
//!   revocation promise.

// Refusals are complete HTTP responses built where the reason is known;
// returning them by value is the natural shape in axum.
#![allow(clippy::result_large_err)]

pub mod challenge;
pub mod gate;
pub mod limiter;
pub mod live;
pub mod network;
pub mod oidc;
pub mod token_api;

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use berth_auth::clock::Clock;
use berth_auth::credential::{
    AuthenticateError, Authenticated, Authenticator, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL,
};
use berth_auth::jwt::{KeySet, SigningKey, TokenConfig, TokenService};
use berth_auth::password::{SecretHasher, VerifiedCache};
use berth_auth::role::{Assignee, Role, RoleScope};
use berth_store::IdentityRepo;
use ipnet::IpNet;

use self::limiter::{FailureLimiter, LimiterConfig};
use self::network::{NetworkPolicy, PolicyCache};

/// Name of the user created on first start.
pub const BOOTSTRAP_USER: &str = "owner";

/// Static settings of the identity layer.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The login server (`host[:port]`, lowercase): token audience and the
    /// challenge's `service`.
    pub login_server: String,
    /// The token endpoint URL advertised in the challenge.
    pub realm: String,
    /// Registry name: the admin account's username.
    pub registry_name: String,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Failed-login throttling.
    pub limiter: LimiterConfig,
}

/// How long (seconds) a successful Basic login is reused without reading
/// the identity again.
pub const LOGIN_TTL: u64 = 5;

/// The identity layer's state, shared by the gate and the token endpoints.
pub struct AuthService {
    /// Settings.
    pub settings: AuthSettings,
    /// Identity and policy storage.
    pub repo: IdentityRepo,
    /// Credential verification.
    pub authenticator: Authenticator,
    /// Signing and verification of tokens.
    tokens: RwLock<Arc<TokenService>>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Failed-login throttling.
    pub limiter: FailureLimiter,
    network: PolicyCache,
    /// Per-request caches.
    pub live: live::LiveCaches,
    /// Recent successful Basic logins (see [`AuthService::authenticate_basic`]).
    logins: VerifiedCache<Authenticated>,
    /// Recent refresh-token logins (see [`AuthService::authenticate_refresh`]).
    refreshes: VerifiedCache<Authenticated>,
    /// External OIDC issuers' keys (workload identities).
    pub issuers: oidc::IssuerKeys,
}

impl AuthService {
    /// Load (or create, on first start) the signing keys and build the service.
    pub async fn open(
        settings: AuthSettings,
        repo: IdentityRepo,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let stored = repo
            .load_signing_keys()
            .await
            .context("loading token signing keys")?;
        let keys = if stored.is_empty() {
            let key = SigningKey::generate()
                .map_err(|e| anyhow::anyhow!("generating signing key: {e}"))?;
            let set = KeySet::new(key);
            repo.save_signing_keys(&set.export())
                .await
                .context("saving token signing keys")?;
            tracing::info!(kid = %set.active().kid(), "generated a token signing key");
            set
        } else {
            KeySet::import(&stored).map_err(|e| anyhow::anyhow!("loading signing keys: {e}"))?
        };
        let reg = repo
            .registry_config()
            .await
            .context("loading registry settings")?;
        let mut config = TokenConfig::new(&settings.login_server);
        config.access_ttl = reg.access_token_ttl_secs;
        config.refresh_ttl = reg.refresh_token_ttl_secs;
        config.identity_ttl = reg.identity_token_ttl_secs;
        let tokens = TokenService::new(config, keys, clock.clone());
        let authenticator = Authenticator::new(
            &settings.registry_name,
            SecretHasher::default(),
            VerifiedCache::new(DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL),
            clock.clone(),
        );
        Ok(AuthService {
            limiter: FailureLimiter::shared(settings.limiter, repo.clone()),
            settings,
            repo,
            authenticator,
            tokens: RwLock::new(Arc::new(tokens)),
            live: live::LiveCaches::new(clock.clone()),
            logins: VerifiedCache::new(DEFAULT_CACHE_CAPACITY, LOGIN_TTL),
            refreshes: VerifiedCache::new(DEFAULT_CACHE_CAPACITY, LOGIN_TTL),
            issuers: oidc::IssuerKeys::new(clock.clone())
                .context("building the HTTP client for OIDC issuers")?,
            clock,
            network: PolicyCache::default(),
        })
    }

    /// On a registry with no users, create `owner` with the Owner role.
    /// Returns the password when berth generated it (to be shown once).
    pub async fn bootstrap(&self, password: Option<String>) -> anyhow::Result<Option<String>> {
        if self.repo.count_users().await? > 0 {
            return Ok(None);
        }
        let generated = password.is_none();
        let password = password.unwrap_or_else(berth_auth::password::generate_secret);
        let hasher = self.authenticator.hasher().clone();
        let pw = password.clone();
        let phc = tokio::task::spawn_blocking(move || hasher.hash(&pw))
            .await
            .context("hashing task")?
            .map_err(|e| anyhow::anyhow!("hashing the bootstrap password: {e}"))?;
        let id = self.repo.create_user(BOOTSTRAP_USER, &phc).await?;
        self.repo
            .create_role_assignment(&Assignee::User(id), Role::Owner, &RoleScope::Registry)
            .await?;
        Ok(generated.then_some(password))
    }

    /// The network policy, from a short-lived cache.
    pub async fn network_policy(&self) -> anyhow::Result<NetworkPolicy> {
        if let Some(p) = self.network.get() {
            return Ok(p);
        }
        let config = self.repo.registry_config().await?;
        let mut allow = Vec::new();
        for rule in self.repo.network_rules().await? {
            match rule.parse::<IpNet>() {
                Ok(n) => allow.push(n),
                Err(_) => match rule.parse::<IpAddr>() {
                    Ok(ip) => allow.push(IpNet::from(ip)),
                    Err(_) => tracing::warn!(rule = %rule, "ignoring unparsable network rule"),
                },
            }
        }
        let p = NetworkPolicy {
            deny_by_default: config.default_action == berth_store::identity::NetworkAction::Deny,
            allow,
            anonymous_pull: config.anonymous_pull,
        };
        self.network.put(p.clone());
        Ok(p)
    }

    /// The token service in use (cheap: an `Arc` clone).
    pub fn token_service(&self) -> Arc<TokenService> {
        match self.tokens.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Forget cached policy after a change made in this process.
    pub fn policy_changed(&self) {
        self.network.clear();
        self.live.clear();
        self.logins.clear();
        self.refreshes.clear();
    }

    /// Basic credentials → who they are. A successful login is remembered
    /// for [`LOGIN_TTL`] seconds, keyed by a keyed hash of the username and
    /// secret, so a client that logs in again and again (the Docker token
    /// flow asks for a token per scope) costs neither argon2 nor a
    /// database read. Any identity or policy change made through this
    /// process empties it at once; another replica's change is seen within
    /// [`LOGIN_TTL`].
    pub async fn authenticate_basic(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Authenticated, AuthenticateError<berth_store::StoreError>> {
        let tokens = self.token_service();
        let login = gate::run_blocking_ok(
            self.authenticator
                .authenticate_basic(&self.repo, &tokens, user, password),
        );
        self.remembered(&self.logins, user, password, login).await
    }

    /// A refresh token → who it names, remembered like a Basic login for
    /// [`LOGIN_TTL`] seconds (well inside the 60 s clock leeway every token
    /// check allows past `exp`), so clients that trade the same refresh
    /// token for one access token per scope cost one signature check and
    /// no database read per [`LOGIN_TTL`].
    pub async fn authenticate_refresh(
        &self,
        token: &str,
    ) -> Result<Authenticated, AuthenticateError<berth_store::StoreError>> {
        let tokens = self.token_service();
        let login = self
            .authenticator
            .authenticate_refresh_token(&self.repo, &tokens, token);
        self.remembered(&self.refreshes, "refresh_token", token, login)
            .await
    }

    /// `cache`'s answer for (`who`, `secret`), else `login`'s, remembered
    /// when it succeeds.
    async fn remembered(
        &self,
        cache: &VerifiedCache<Authenticated>,
        who: &str,
        secret: &str,
        login: impl std::future::Future<
            Output = Result<Authenticated, AuthenticateError<berth_store::StoreError>>,
        >,
    ) -> Result<Authenticated, AuthenticateError<berth_store::StoreError>> {
        if let Some(a) = cache.get(who, secret, self.clock.now()) {
            return Ok(a);
        }
        let a = login.await?;
        cache.insert(who, secret, a.clone(), self.clock.now());
        Ok(a)
    }
}
