//! Credentials: how a caller proves who it is, and the storage traits the
//! server implements.
//!
//! Basic credentials (docker login, the token endpoint's password grant)
//! are told apart by the username, as in the reference:
//!
//! | username                                   | password                | principal          |
//! |--------------------------------------------|-------------------------|--------------------|
//! | `00000000-0000-0000-0000-000000000000`     | refresh token (JWT)     | whoever it names   |
//! | `<token>` (credential helpers' marker)     | refresh token (JWT)     | whoever it names   |
//! | any other UUID                             | client secret           | service principal  |
//! | the registry name (any case)               | `password1`/`password2` | admin account      |
//! | anything else: a repository token's name   | `password1`/`password2` | repository token   |
//! | anything else: a directory user's name     | the user's password     | directory user     |
//!
//! Repository tokens and directory users share one namespace (the store
//! refuses a name that is already taken by the other kind), so a named
//! login tries the token of that name first, then the user.
//!
//! Two more entry points serve the directory token endpoint (the OAuth2
//! grants that mint identity tokens): [`Authenticator::authenticate_password`]
//! (directory users only) and
//! [`Authenticator::authenticate_client_credentials`] (service principals).
//!
//! Order of checks, so a refusal never tells an outsider whether a name
//! exists: find the identity (unknown: burn an argon2 verification anyway,
//! answer [`AuthFailure::UnknownIdentity`]), verify the secret
//! ([`AuthFailure::BadSecret`]), and only then look at expiry and disabled
//! state, which a client may be told about because it proved the secret.
//!
//! The verified-credential cache remembers which stored hash a secret
//! matched; a hit counts only if the live record still holds that exact
//! hash, so regenerating or deleting a password invalidates it on every
//! replica, not just the one that made the change.

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::authorize::{PolicyContext, RegistrySettings};
use crate::clock::Clock;
use crate::error::AuthFailure;
use crate::jwt::{check_generation, TokenService};
use crate::password::{PasswordError, SecretHasher, VerifiedCache};
use crate::principal::{Principal, PrincipalRef};
use crate::role::{Assignee, RoleAssignment};
use crate::scope_map::ScopeMap;

/// The username that means "the password is a refresh token".
pub const TOKEN_USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// The docker credential-helper protocol's username for an identity token;
/// clients that pass a helper's answer straight into Basic (oras-py) send
/// it, so it means the same as [`TOKEN_USERNAME`].
pub const HELPER_TOKEN_USERNAME: &str = "<token>";

/// One stored secret of an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    /// Which secret: `password1`, `password2`, or a client-secret id.
    pub name: String,
    /// argon2id PHC string.
    pub phc: String,
    /// Unix seconds after which the secret no longer works.
    pub expires_at: Option<u64>,
}

/// The admin account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAccount {
    /// Disabled by default.
    pub enabled: bool,
    /// `password1` and `password2`.
    pub secrets: Vec<StoredSecret>,
    /// Credential generation: bump to revoke its refresh tokens.
    pub generation: u64,
}

/// A repository-scoped token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryTokenRecord {
    /// Token name.
    pub name: String,
    /// Its scope map's name.
    pub scope_map: String,
    /// Enabled?
    pub enabled: bool,
    /// `password1` and `password2`.
    pub secrets: Vec<StoredSecret>,
    /// Credential generation.
    pub generation: u64,
}

/// A service principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePrincipalRecord {
    /// App id.
    pub app_id: Uuid,
    /// Display name.
    pub name: String,
    /// Enabled?
    pub enabled: bool,
    /// Client secrets (default validity one year).
    pub secrets: Vec<StoredSecret>,
    /// Credential generation.
    pub generation: u64,
}

/// A directory user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUserRecord {
    /// Object id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Group object ids.
    pub groups: Vec<Uuid>,
    /// Enabled?
    pub enabled: bool,
    /// The user's password (one secret named `password`, argon2id PHC);
    /// empty for a user who cannot log in with a password.
    pub secrets: Vec<StoredSecret>,
    /// Credential generation (bump on logout-everywhere / disable /
    /// password change).
    pub generation: u64,
}

/// A workload identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadIdentityRecord {
    /// Client id.
    pub client_id: Uuid,
    /// Name.
    pub name: String,
    /// Enabled?
    pub enabled: bool,
    /// Credential generation.
    pub generation: u64,
}

/// Identity storage, implemented by the server over its metadata store.
/// Lookups return `Ok(None)` for "no such identity"; `Err` only for storage
/// failures.
pub trait IdentityStore: Sync {
    /// Storage error.
    type Error: std::error::Error + Send + Sync + 'static;
    /// The admin account.
    fn admin_account(
        &self,
    ) -> impl Future<Output = Result<Option<AdminAccount>, Self::Error>> + Send;
    /// A repository token by name (exact).
    fn repository_token(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<RepositoryTokenRecord>, Self::Error>> + Send;
    /// A service principal by app id.
    fn service_principal(
        &self,
        app_id: Uuid,
    ) -> impl Future<Output = Result<Option<ServicePrincipalRecord>, Self::Error>> + Send;
    /// A directory user by object id.
    fn directory_user(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<DirectoryUserRecord>, Self::Error>> + Send;
    /// A directory user by name (exact).
    fn directory_user_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<DirectoryUserRecord>, Self::Error>> + Send;
    /// A workload identity by client id.
    fn workload_identity(
        &self,
        client_id: Uuid,
    ) -> impl Future<Output = Result<Option<WorkloadIdentityRecord>, Self::Error>> + Send;
}

/// Policy storage, implemented by the server.
pub trait PolicyStore: Sync {
    /// Storage error.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Registry settings.
    fn registry_settings(
        &self,
    ) -> impl Future<Output = Result<RegistrySettings, Self::Error>> + Send;
    /// Role assignments naming any of `assignees`.
    fn role_assignments(
        &self,
        assignees: &[Assignee],
    ) -> impl Future<Output = Result<Vec<RoleAssignment>, Self::Error>> + Send;
    /// A user-defined scope map by name (system maps need not be stored;
    /// [`load_policy_context`] supplies them).
    fn scope_map(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ScopeMap>, Self::Error>> + Send;
}

/// Load everything [`crate::authorize::authorize`] needs for `principal`.
pub async fn load_policy_context<S: PolicyStore>(
    store: &S,
    principal: &Principal,
) -> Result<PolicyContext, S::Error> {
    let settings = store.registry_settings().await?;
    let assignees = principal.assignees();
    let role_assignments = if assignees.is_empty() {
        Vec::new()
    } else {
        store.role_assignments(&assignees).await?
    };
    let scope_map = match principal {
        Principal::RepositoryToken { scope_map, .. } => match ScopeMap::system(scope_map) {
            Some(m) => Some(m),
            None => store.scope_map(scope_map).await?,
        },
        _ => None,
    };
    Ok(PolicyContext {
        settings,
        role_assignments,
        scope_map,
    })
}

/// What a Basic username says the credential is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasicLogin {
    /// Null-UUID username: the password is a refresh token.
    RefreshToken,
    /// A UUID: a service principal's app id.
    ServicePrincipal(Uuid),
    /// The registry name: the admin account.
    Admin,
    /// Anything else: the name of a repository token or of a directory user
    /// (one namespace; the token is tried first).
    Named(String),
}

/// Classify a Basic username (see the module table).
pub fn classify_basic(username: &str, registry_name: &str) -> Result<BasicLogin, AuthFailure> {
    if username.is_empty() {
        return Err(AuthFailure::MalformedCredentials {
            detail: "empty username".into(),
        });
    }
    if username == TOKEN_USERNAME || username == HELPER_TOKEN_USERNAME {
        return Ok(BasicLogin::RefreshToken);
    }
    if let Ok(id) = Uuid::parse_str(username) {
        return Ok(BasicLogin::ServicePrincipal(id));
    }
    if username.eq_ignore_ascii_case(registry_name) {
        return Ok(BasicLogin::Admin);
    }
    Ok(BasicLogin::Named(username.to_string()))
}

/// Whether `secret` is a refresh token this registry signed (valid, or
/// merely expired): a JWS whose signature verifies and whose claims are a
/// refresh token's.
fn is_refresh_token(tokens: &TokenService, secret: &str) -> bool {
    if secret.len() < 32 || secret.bytes().filter(|b| *b == b'.').count() != 2 {
        return false;
    }
    matches!(
        tokens.verify_refresh(secret),
        Ok(_) | Err(AuthFailure::TokenExpired { .. })
    )
}

/// Refuse an empty username or secret before touching the store.
fn check_nonempty(username: &str, secret: &str) -> Result<(), AuthFailure> {
    let detail = if username.is_empty() {
        "empty username"
    } else if secret.is_empty() {
        "empty password"
    } else {
        return Ok(());
    };
    Err(AuthFailure::MalformedCredentials {
        detail: detail.into(),
    })
}

/// A stored identity that logs in with a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRecord {
    /// The admin account (with the registry name).
    Admin {
        /// Registry name.
        registry: String,
        /// The account.
        account: AdminAccount,
    },
    /// A repository token.
    Token(RepositoryTokenRecord),
    /// A service principal.
    ServicePrincipal(ServicePrincipalRecord),
    /// A directory user with a password.
    User(DirectoryUserRecord),
}

impl SecretRecord {
    fn reference(&self) -> PrincipalRef {
        match self {
            SecretRecord::Admin { registry, .. } => PrincipalRef::Admin(registry.clone()),
            SecretRecord::Token(t) => PrincipalRef::Token(t.name.clone()),
            SecretRecord::ServicePrincipal(s) => PrincipalRef::ServicePrincipal(s.app_id),
            SecretRecord::User(u) => PrincipalRef::User(u.id),
        }
    }

    fn secrets(&self) -> &[StoredSecret] {
        match self {
            SecretRecord::Admin { account, .. } => &account.secrets,
            SecretRecord::Token(t) => &t.secrets,
            SecretRecord::ServicePrincipal(s) => &s.secrets,
            SecretRecord::User(u) => &u.secrets,
        }
    }
}

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who.
    pub principal: Principal,
    /// With what: a secret name (`password1`), `refresh_token:<jti>` or
    /// `identity_token:<jti>`. For the audit log.
    pub credential: String,
    /// The identity's current credential generation (for refresh tokens).
    pub generation: u64,
}

/// Authentication failed, or the store did.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError<E: std::error::Error + 'static> {
    /// The caller is not who they claim.
    #[error(transparent)]
    Failure(#[from] AuthFailure),
    /// The store failed; not the caller's fault.
    #[error("identity store: {0}")]
    Store(#[source] E),
}

/// Turns credentials into a [`Principal`].
#[derive(Debug)]
pub struct Authenticator {
    registry_name: String,
    hasher: SecretHasher,
    cache: VerifiedCache<String>,
    clock: Arc<dyn Clock>,
}

/// Default size of the verified-credential cache.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Default TTL of the verified-credential cache: berth's 60 s propagation
/// promise.
pub const DEFAULT_CACHE_TTL: u64 = 60;

impl Authenticator {
    /// An authenticator for `registry_name` (the admin username).
    pub fn new(
        registry_name: &str,
        hasher: SecretHasher,
        cache: VerifiedCache<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            registry_name: registry_name.to_string(),
            hasher,
            cache,
            clock,
        }
    }

    /// The hasher (to hash new secrets with the same parameters).
    pub fn hasher(&self) -> &SecretHasher {
        &self.hasher
    }

    /// Forget cached verifications of an identity (call after regenerating
    /// or deleting its secrets, or disabling it).
    pub fn invalidate(&self, principal: &PrincipalRef) {
        self.cache.invalidate_identity(&principal.to_string());
    }

    /// The failure for a username that names nobody, after spending an
    /// argon2 verification so the answer takes as long as a wrong secret.
    pub fn unknown_identity(&self, username: &str, secret: &str) -> AuthFailure {
        self.hasher.dummy_verify(secret);
        AuthFailure::UnknownIdentity {
            username: username.to_string(),
        }
    }

    /// The fast path: the principal if this secret verified against this
    /// record recently, without argon2. The server may try this on the async
    /// executor and run [`Authenticator::verify_secret`] on a blocking
    /// thread otherwise.
    pub fn try_cached(
        &self,
        record: &SecretRecord,
        secret: &str,
    ) -> Option<Result<Authenticated, AuthFailure>> {
        let identity = record.reference().to_string();
        let phc = self.cache.get(&identity, secret, self.clock.now())?;
        let matched = record.secrets().iter().find(|s| s.phc == phc)?;
        Some(self.finish(record, matched))
    }

    /// Verify `secret` against `record` (argon2 on a cache miss), then its
    /// expiry and enabled state.
    pub fn verify_secret(
        &self,
        record: &SecretRecord,
        secret: &str,
    ) -> Result<Authenticated, AuthFailure> {
        if let Some(r) = self.try_cached(record, secret) {
            return r;
        }
        let slot = self.hasher.slot();
        // Logins of the same credential that arrived together waited for
        // the slot; the first one's verification now serves the rest.
        if let Some(r) = self.try_cached(record, secret) {
            return r;
        }
        let identity = record.reference().to_string();
        let secrets = record.secrets();
        if secrets.is_empty() {
            self.hasher.dummy_verify_in_slot(&slot, secret);
            return Err(AuthFailure::BadSecret { identity });
        }
        let mut unsupported = 0;
        for s in secrets {
            match self.hasher.verify_in_slot(&slot, secret, &s.phc) {
                Ok(true) => {
                    self.cache
                        .insert(&identity, secret, s.phc.clone(), self.clock.now());
                    return self.finish(record, s);
                }
                Ok(false) => {}
                Err(PasswordError::UnsupportedHash(_)) | Err(_) => unsupported += 1,
            }
        }
        if unsupported == secrets.len() {
            Err(AuthFailure::UnsupportedHash { identity })
        } else {
            Err(AuthFailure::BadSecret { identity })
        }
    }

    fn finish(
        &self,
        record: &SecretRecord,
        matched: &StoredSecret,
    ) -> Result<Authenticated, AuthFailure> {
        let identity = record.reference().to_string();
        if let Some(exp) = matched.expires_at {
            if self.clock.now() >= exp {
                return Err(AuthFailure::ExpiredSecret {
                    identity,
                    credential: matched.name.clone(),
                    expired_at: exp,
                });
            }
        }
        let (principal, generation) = match record {
            SecretRecord::Admin { registry, account } => {
                if !account.enabled {
                    return Err(AuthFailure::AdminDisabled);
                }
                (
                    Principal::Admin {
                        registry: registry.clone(),
                    },
                    account.generation,
                )
            }
            SecretRecord::Token(t) => {
                if !t.enabled {
                    return Err(AuthFailure::DisabledToken {
                        token: t.name.clone(),
                    });
                }
                (
                    Principal::RepositoryToken {
                        name: t.name.clone(),
                        scope_map: t.scope_map.clone(),
                    },
                    t.generation,
                )
            }
            SecretRecord::ServicePrincipal(s) => {
                if !s.enabled {
                    return Err(AuthFailure::DisabledIdentity { identity });
                }
                (
                    Principal::ServicePrincipal {
                        app_id: s.app_id,
                        name: s.name.clone(),
                    },
                    s.generation,
                )
            }
            SecretRecord::User(u) => {
                if !u.enabled {
                    return Err(AuthFailure::DisabledIdentity { identity });
                }
                (
                    Principal::DirectoryUser {
                        id: u.id,
                        name: u.name.clone(),
                        groups: u.groups.clone(),
                    },
                    u.generation,
                )
            }
        };
        Ok(Authenticated {
            principal,
            credential: matched.name.clone(),
            generation,
        })
    }

    /// Authenticate Basic credentials end to end. On a cache miss this runs
    /// argon2 inline (tens of ms with production parameters); a server that
    /// minds can instead call [`classify_basic`], load the record, and run
    /// [`Authenticator::verify_secret`] on a blocking thread.
    pub async fn authenticate_basic<S: IdentityStore>(
        &self,
        store: &S,
        tokens: &TokenService,
        username: &str,
        password: &str,
    ) -> Result<Authenticated, AuthenticateError<S::Error>> {
        if password.is_empty() {
            return Err(AuthFailure::MalformedCredentials {
                detail: "empty password".into(),
            }
            .into());
        }
        let login = classify_basic(username, &self.registry_name)?;
        if !matches!(login, BasicLogin::RefreshToken) && is_refresh_token(tokens, password) {
            // Decided from the password alone, before the username is
            // looked up, so the answer says nothing about which names exist.
            return Err(AuthFailure::RefreshTokenWrongUsername {
                username: username.to_string(),
            }
            .into());
        }
        let record = match login {
            BasicLogin::RefreshToken => {
                return self
                    .authenticate_refresh_token(store, tokens, password)
                    .await
            }
            BasicLogin::ServicePrincipal(id) => store
                .service_principal(id)
                .await
                .map_err(AuthenticateError::Store)?
                .map(SecretRecord::ServicePrincipal),
            BasicLogin::Admin => store
                .admin_account()
                .await
                .map_err(AuthenticateError::Store)?
                .map(|account| SecretRecord::Admin {
                    registry: self.registry_name.clone(),
                    account,
                }),
            BasicLogin::Named(name) => {
                match store
                    .repository_token(&name)
                    .await
                    .map_err(AuthenticateError::Store)?
                {
                    Some(t) => Some(SecretRecord::Token(t)),
                    None => store
                        .directory_user_by_name(&name)
                        .await
                        .map_err(AuthenticateError::Store)?
                        .map(SecretRecord::User),
                }
            }
        };
        self.verify_found(record, username, password)
    }

    /// Authenticate a directory user by name and password (the directory
    /// token endpoint's OAuth2 `password` grant). Only directory users log
    /// in here: a repository token or the admin account of the same name is
    /// an unknown identity. Same order of checks as
    /// [`Authenticator::authenticate_basic`].
    pub async fn authenticate_password<S: IdentityStore>(
        &self,
        store: &S,
        username: &str,
        password: &str,
    ) -> Result<Authenticated, AuthenticateError<S::Error>> {
        check_nonempty(username, password)?;
        let record = store
            .directory_user_by_name(username)
            .await
            .map_err(AuthenticateError::Store)?
            .map(SecretRecord::User);
        self.verify_found(record, username, password)
    }

    /// Authenticate a service principal by app id and client secret (the
    /// directory token endpoint's OAuth2 `client_credentials` grant). Same
    /// order of checks as [`Authenticator::authenticate_basic`].
    pub async fn authenticate_client_credentials<S: IdentityStore>(
        &self,
        store: &S,
        app_id: Uuid,
        secret: &str,
    ) -> Result<Authenticated, AuthenticateError<S::Error>> {
        let username = app_id.to_string();
        check_nonempty(&username, secret)?;
        let record = store
            .service_principal(app_id)
            .await
            .map_err(AuthenticateError::Store)?
            .map(SecretRecord::ServicePrincipal);
        self.verify_found(record, &username, secret)
    }

    /// Verify a secret against a looked-up record, or burn a dummy
    /// verification when there is none.
    fn verify_found<E: std::error::Error + 'static>(
        &self,
        record: Option<SecretRecord>,
        username: &str,
        secret: &str,
    ) -> Result<Authenticated, AuthenticateError<E>> {
        match record {
            Some(r) => Ok(self.verify_secret(&r, secret)?),
            None => Err(self.unknown_identity(username, secret).into()),
        }
    }

    /// Authenticate a refresh token (Basic with the null-UUID username, or
    /// the `refresh_token` grant): signature, claims, then the identity's
    /// current state and generation.
    pub async fn authenticate_refresh_token<S: IdentityStore>(
        &self,
        store: &S,
        tokens: &TokenService,
        token: &str,
    ) -> Result<Authenticated, AuthenticateError<S::Error>> {
        let claims = tokens.verify_refresh(token)?;
        let (principal, generation) = self.resolve(store, &claims.principal).await?;
        check_generation(claims.generation, generation)?;
        let principal = principal.ok_or(AuthFailure::RevokedToken {
            token_generation: claims.generation,
            current_generation: None,
        })?;
        Ok(Authenticated {
            principal,
            credential: format!("refresh_token:{}", claims.jti),
            generation: claims.generation,
        })
    }

    /// Authenticate an identity (directory) token, as presented to
    /// `/oauth2/exchange` and the management API: one the directory issued
    /// to a user, a service principal (client-credentials grant) or a
    /// workload identity.
    pub async fn authenticate_identity_token<S: IdentityStore>(
        &self,
        store: &S,
        tokens: &TokenService,
        token: &str,
    ) -> Result<Authenticated, AuthenticateError<S::Error>> {
        let claims = tokens.verify_identity(token)?;
        if !matches!(
            claims.principal,
            PrincipalRef::User(_)
                | PrincipalRef::ServicePrincipal(_)
                | PrincipalRef::WorkloadIdentity(_)
        ) {
            return Err(AuthFailure::WrongTokenType {
                expected: "identity".into(),
            }
            .into());
        }
        let (principal, generation) = self.resolve(store, &claims.principal).await?;
        check_generation(claims.generation, generation)?;
        let principal = principal.ok_or(AuthFailure::RevokedToken {
            token_generation: claims.generation,
            current_generation: None,
        })?;
        Ok(Authenticated {
            principal,
            credential: format!("identity_token:{}", claims.jti),
            generation: claims.generation,
        })
    }

    /// The principal a token names, as it is now: refused when the identity
    /// is gone or disabled, or when its credential generation moved past
    /// `token_generation` (a regenerated password, a deleted secret).
    pub async fn resolve_live<S: IdentityStore>(
        &self,
        store: &S,
        r: &PrincipalRef,
        token_generation: u64,
    ) -> Result<Principal, AuthenticateError<S::Error>> {
        let (principal, generation) = self.resolve(store, r).await?;
        check_generation(token_generation, generation)?;
        principal.ok_or_else(|| {
            AuthFailure::RevokedToken {
                token_generation,
                current_generation: None,
            }
            .into()
        })
    }

    /// Load the live principal a token names. `(None, None)`: gone.
    /// Disabled identities are a failure.
    async fn resolve<S: IdentityStore>(
        &self,
        store: &S,
        r: &PrincipalRef,
    ) -> Result<(Option<Principal>, Option<u64>), AuthenticateError<S::Error>> {
        let st = AuthenticateError::Store;
        let disabled = |identity: String| AuthFailure::DisabledIdentity { identity };
        Ok(match r {
            PrincipalRef::User(id) => match store.directory_user(*id).await.map_err(st)? {
                Some(u) if !u.enabled => return Err(disabled(r.to_string()).into()),
                Some(u) => (
                    Some(Principal::DirectoryUser {
                        id: u.id,
                        name: u.name,
                        groups: u.groups,
                    }),
                    Some(u.generation),
                ),
                None => (None, None),
            },
            PrincipalRef::WorkloadIdentity(id) => {
                match store.workload_identity(*id).await.map_err(st)? {
                    Some(w) if !w.enabled => return Err(disabled(r.to_string()).into()),
                    Some(w) => (
                        Some(Principal::WorkloadIdentity {
                            client_id: w.client_id,
                            name: w.name,
                        }),
                        Some(w.generation),
                    ),
                    None => (None, None),
                }
            }
            PrincipalRef::ServicePrincipal(id) => {
                match store.service_principal(*id).await.map_err(st)? {
                    Some(s) if !s.enabled => return Err(disabled(r.to_string()).into()),
                    Some(s) => (
                        Some(Principal::ServicePrincipal {
                            app_id: s.app_id,
                            name: s.name,
                        }),
                        Some(s.generation),
                    ),
                    None => (None, None),
                }
            }
            PrincipalRef::Token(name) => match store.repository_token(name).await.map_err(st)? {
                Some(t) if !t.enabled => {
                    return Err(AuthFailure::DisabledToken { token: t.name }.into())
                }
                Some(t) => (
                    Some(Principal::RepositoryToken {
                        name: t.name,
                        scope_map: t.scope_map,
                    }),
                    Some(t.generation),
                ),
                None => (None, None),
            },
            PrincipalRef::Admin(registry) => {
                if !registry.eq_ignore_ascii_case(&self.registry_name) {
                    (None, None)
                } else {
                    match store.admin_account().await.map_err(st)? {
                        Some(a) if !a.enabled => return Err(AuthFailure::AdminDisabled.into()),
                        Some(a) => (
                            Some(Principal::Admin {
                                registry: self.registry_name.clone(),
                            }),
                            Some(a.generation),
                        ),
                        None => (None, None),
                    }
                }
            }
            PrincipalRef::Anonymous => (None, None),
        })
    }
}

#[cfg(test)]
mod tests;
