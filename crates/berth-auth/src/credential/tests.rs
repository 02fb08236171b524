//! Authentication against an in-memory store.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use uuid::Uuid;

use super::*;
use crate::clock::ManualClock;
use crate::jwt::{KeySet, Permissions, SigningKey, TokenConfig, TokenService};
use crate::password::{Argon2Params, SecretHasher, VerifiedCache};
use crate::role::{Role, RoleScope};
use crate::scope_map::SYSTEM_PUSH;

const T0: u64 = 1_700_000_000;
const REGISTRY: &str = "myregistry";

/// The store futures are always ready; poll once.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("store is down")]
struct StoreDown;

#[derive(Default)]
struct MemStore {
    down: bool,
    admin: Option<AdminAccount>,
    tokens: Vec<RepositoryTokenRecord>,
    sps: Vec<ServicePrincipalRecord>,
    users: Vec<DirectoryUserRecord>,
    workloads: Vec<WorkloadIdentityRecord>,
    settings: RegistrySettings,
    assignments: Vec<RoleAssignment>,
    maps: Vec<ScopeMap>,
}

impl MemStore {
    fn check(&self) -> Result<(), StoreDown> {
        if self.down {
            Err(StoreDown)
        } else {
            Ok(())
        }
    }
}

impl IdentityStore for MemStore {
    type Error = StoreDown;
    async fn admin_account(&self) -> Result<Option<AdminAccount>, StoreDown> {
        self.check()?;
        Ok(self.admin.clone())
    }
    async fn repository_token(
        &self,
        name: &str,
    ) -> Result<Option<RepositoryTokenRecord>, StoreDown> {
        self.check()?;
        Ok(self.tokens.iter().find(|t| t.name == name).cloned())
    }
    async fn service_principal(
        &self,
        app_id: Uuid,
    ) -> Result<Option<ServicePrincipalRecord>, StoreDown> {
        self.check()?;
        Ok(self.sps.iter().find(|s| s.app_id == app_id).cloned())
    }
    async fn directory_user(&self, id: Uuid) -> Result<Option<DirectoryUserRecord>, StoreDown> {
        self.check()?;
        Ok(self.users.iter().find(|u| u.id == id).cloned())
    }
    async fn directory_user_by_name(
        &self,
        name: &str,
    ) -> Result<Option<DirectoryUserRecord>, StoreDown> {
        self.check()?;
        Ok(self.users.iter().find(|u| u.name == name).cloned())
    }
    async fn workload_identity(
        &self,
        client_id: Uuid,
    ) -> Result<Option<WorkloadIdentityRecord>, StoreDown> {
        self.check()?;
        Ok(self
            .workloads
            .iter()
            .find(|w| w.client_id == client_id)
            .cloned())
    }
}

impl PolicyStore for MemStore {
    type Error = StoreDown;
    async fn registry_settings(&self) -> Result<RegistrySettings, StoreDown> {
        self.check()?;
        Ok(self.settings.clone())
    }
    async fn role_assignments(
        &self,
        assignees: &[Assignee],
    ) -> Result<Vec<RoleAssignment>, StoreDown> {
        self.check()?;
        Ok(self
            .assignments
            .iter()
            .filter(|a| assignees.contains(&a.assignee))
            .cloned()
            .collect())
    }
    async fn scope_map(&self, name: &str) -> Result<Option<ScopeMap>, StoreDown> {
        self.check()?;
        Ok(self.maps.iter().find(|m| m.name() == name).cloned())
    }
}

struct World {
    clock: Arc<ManualClock>,
    auth: Authenticator,
    tokens: TokenService,
    store: MemStore,
}

fn hasher() -> SecretHasher {
    SecretHasher::new(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap()
}

fn secret(h: &SecretHasher, name: &str, value: &str, expires_at: Option<u64>) -> StoredSecret {
    StoredSecret {
        name: name.into(),
        phc: h.hash(value).unwrap(),
        expires_at,
    }
}

const SP_ID: Uuid = Uuid::from_u128(0x5);
const USER_ID: Uuid = Uuid::from_u128(0x1);
const GROUP_ID: Uuid = Uuid::from_u128(0x10);
const WORKLOAD_ID: Uuid = Uuid::from_u128(0x7);

fn world() -> World {
    let clock = Arc::new(ManualClock::new(T0));
    let h = hasher();
    let store = MemStore {
        admin: Some(AdminAccount {
            enabled: true,
            secrets: vec![
                secret(&h, "password1", "admin-pw1", None),
                secret(&h, "password2", "admin-pw2", None),
            ],
            generation: 1,
        }),
        tokens: vec![
            RepositoryTokenRecord {
                name: "ci-token".into(),
                scope_map: SYSTEM_PUSH.into(),
                enabled: true,
                secrets: vec![
                    secret(&h, "password1", "tok-pw1", Some(T0 + 100)),
                    secret(&h, "password2", "tok-pw2", None),
                ],
                generation: 4,
            },
            RepositoryTokenRecord {
                name: "off-token".into(),
                scope_map: "team-map".into(),
                enabled: false,
                secrets: vec![secret(&h, "password1", "off-pw", None)],
                generation: 1,
            },
            RepositoryTokenRecord {
                name: "legacy-token".into(),
                scope_map: "team-map".into(),
                enabled: true,
                secrets: vec![StoredSecret {
                    name: "password1".into(),
                    phc: "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".into(),
                    expires_at: None,
                }],
                generation: 1,
            },
        ],
        sps: vec![ServicePrincipalRecord {
            app_id: SP_ID,
            name: "ci-app".into(),
            enabled: true,
            secrets: vec![secret(&h, "s1", "sp-secret", Some(T0 + 365 * 86400))],
            generation: 2,
        }],
        users: vec![DirectoryUserRecord {
            id: USER_ID,
            name: "ana".into(),
            groups: vec![GROUP_ID],
            enabled: true,
            secrets: vec![secret(&h, "password", "ana-pw", None)],
            generation: 9,
        }],
        workloads: vec![WorkloadIdentityRecord {
            client_id: WORKLOAD_ID,
            name: "pod".into(),
            enabled: true,
            generation: 1,
        }],
        settings: RegistrySettings {
            anonymous_pull: true,
        },
        assignments: vec![
            RoleAssignment::new(
                Assignee::Group(GROUP_ID),
                Role::AcrPull,
                RoleScope::Registry,
            ),
            RoleAssignment::new(
                Assignee::User(Uuid::from_u128(0x99)),
                Role::Owner,
                RoleScope::Registry,
            ),
        ],
        maps: vec![ScopeMap::parse("team-map", &["repositories/team/*/content/read"]).unwrap()],
        down: false,
    };
    let auth = Authenticator::new(REGISTRY, h, VerifiedCache::new(100, 60), clock.clone());
    let tokens = TokenService::new(
        TokenConfig::new("myregistry.example.com"),
        KeySet::new(SigningKey::generate().unwrap()),
        clock.clone(),
    );
    World {
        clock,
        auth,
        tokens,
        store,
    }
}

impl World {
    fn basic(&self, user: &str, pw: &str) -> Result<Authenticated, AuthFailure> {
        block_on(
            self.auth
                .authenticate_basic(&self.store, &self.tokens, user, pw),
        )
        .map_err(|e| match e {
            AuthenticateError::Failure(f) => f,
            AuthenticateError::Store(s) => panic!("store error {s}"),
        })
    }

    fn record(&self, name: &str) -> SecretRecord {
        SecretRecord::Token(
            self.store
                .tokens
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .clone(),
        )
    }
}

#[test]
fn classify_usernames() {
    let cases = [
        (TOKEN_USERNAME, BasicLogin::RefreshToken),
        (HELPER_TOKEN_USERNAME, BasicLogin::RefreshToken),
        (
            "00000000-0000-0000-0000-000000000005",
            BasicLogin::ServicePrincipal(SP_ID),
        ),
        ("myregistry", BasicLogin::Admin),
        ("MyRegistry", BasicLogin::Admin),
        ("ci-token", BasicLogin::Named("ci-token".into())),
        ("we$ird", BasicLogin::Named("we$ird".into())),
    ];
    for (u, want) in cases {
        assert_eq!(classify_basic(u, REGISTRY).unwrap(), want, "{u}");
    }
    assert_eq!(
        classify_basic("", REGISTRY).unwrap_err().code(),
        "malformed_credentials"
    );
}

#[test]
fn admin_account_logins() {
    let mut w = world();
    let a = w.basic("myregistry", "admin-pw1").unwrap();
    assert_eq!(
        a.principal,
        Principal::Admin {
            registry: REGISTRY.into()
        }
    );
    assert_eq!(a.credential, "password1");
    assert_eq!(
        w.basic("MYREGISTRY", "admin-pw2").unwrap().credential,
        "password2"
    );
    assert_eq!(
        w.basic("myregistry", "nope").unwrap_err().code(),
        "bad_secret"
    );
    // Disabled: only said after the secret verified.
    if let Some(a) = w.store.admin.as_mut() {
        a.enabled = false;
    }
    assert_eq!(
        w.basic("myregistry", "admin-pw1").unwrap_err(),
        AuthFailure::AdminDisabled
    );
    assert_eq!(
        w.basic("myregistry", "nope").unwrap_err().code(),
        "bad_secret"
    );
    w.store.admin = None;
    assert_eq!(
        w.basic("myregistry", "admin-pw1").unwrap_err().code(),
        "unknown_identity"
    );
}

#[test]
fn repository_token_logins() {
    let w = world();
    let a = w.basic("ci-token", "tok-pw2").unwrap();
    assert_eq!(
        a.principal,
        Principal::RepositoryToken {
            name: "ci-token".into(),
            scope_map: SYSTEM_PUSH.into()
        }
    );
    assert_eq!(a.generation, 4);
    assert_eq!(
        w.basic("ci-token", "tok-pw1").unwrap().credential,
        "password1"
    );
    assert_eq!(
        w.basic("ci-token", "wrong").unwrap_err().code(),
        "bad_secret"
    );
    assert_eq!(
        w.basic("off-token", "off-pw").unwrap_err().code(),
        "disabled_token"
    );
    assert_eq!(
        w.basic("off-token", "wrong").unwrap_err().code(),
        "bad_secret"
    );
    let unknown = w.basic("ghost-token", "whatever").unwrap_err();
    let bad = w.basic("ci-token", "whatever").unwrap_err();
    assert_eq!(unknown.code(), "unknown_identity");
    assert_eq!(unknown.client_message(), bad.client_message());
    assert_eq!(
        w.basic("legacy-token", "x").unwrap_err().code(),
        "unsupported_hash"
    );
    assert_eq!(
        w.basic("ci-token", "").unwrap_err().code(),
        "malformed_credentials"
    );
}

#[test]
fn expired_secret() {
    let w = world();
    assert!(w.basic("ci-token", "tok-pw1").is_ok());
    w.clock.set(T0 + 100);
    assert_eq!(
        w.basic("ci-token", "tok-pw1").unwrap_err(),
        AuthFailure::ExpiredSecret {
            identity: "token:ci-token".into(),
            credential: "password1".into(),
            expired_at: T0 + 100
        }
    );
    assert!(
        w.basic("ci-token", "tok-pw2").is_ok(),
        "password2 has no expiry"
    );
}

#[test]
fn service_principal_logins() {
    let mut w = world();
    let id = SP_ID.to_string();
    let a = w.basic(&id, "sp-secret").unwrap();
    assert_eq!(
        a.principal,
        Principal::ServicePrincipal {
            app_id: SP_ID,
            name: "ci-app".into()
        }
    );
    assert_eq!(w.basic(&id, "nope").unwrap_err().code(), "bad_secret");
    assert_eq!(
        w.basic(&Uuid::from_u128(0x6).to_string(), "sp-secret")
            .unwrap_err()
            .code(),
        "unknown_identity"
    );
    w.store.sps[0].enabled = false;
    assert_eq!(
        w.basic(&id, "sp-secret").unwrap_err().code(),
        "disabled_identity"
    );
}

#[test]
fn cache_hit_miss_and_invalidation() {
    let mut w = world();
    let rec = w.record("ci-token");
    assert!(w.auth.try_cached(&rec, "tok-pw2").is_none(), "cold cache");
    assert!(w.auth.verify_secret(&rec, "tok-pw2").is_ok());
    let hit = w.auth.try_cached(&rec, "tok-pw2").expect("hit");
    assert_eq!(hit.unwrap().credential, "password2");
    assert!(
        w.auth.try_cached(&rec, "wrong").is_none(),
        "wrong secret never hits"
    );
    assert!(w.auth.verify_secret(&rec, "wrong").is_err());
    assert!(
        w.auth.try_cached(&rec, "wrong").is_none(),
        "failures are not cached"
    );

    // A hit still applies live state: disabling is seen at once.
    w.store.tokens[0].enabled = false;
    let rec_off = w.record("ci-token");
    assert_eq!(
        w.auth
            .try_cached(&rec_off, "tok-pw2")
            .unwrap()
            .unwrap_err()
            .code(),
        "disabled_token"
    );
    w.store.tokens[0].enabled = true;

    // Regenerating password2 (new hash) invalidates it on every replica.
    let h = hasher();
    w.store.tokens[0].secrets[1] = secret(&h, "password2", "new-pw2", None);
    let regenerated = w.record("ci-token");
    assert!(w.auth.try_cached(&regenerated, "tok-pw2").is_none());
    assert_eq!(
        w.auth
            .verify_secret(&regenerated, "tok-pw2")
            .unwrap_err()
            .code(),
        "bad_secret"
    );

    // Explicit invalidation and TTL.
    assert!(w.auth.verify_secret(&regenerated, "new-pw2").is_ok());
    assert!(w.auth.try_cached(&regenerated, "new-pw2").is_some());
    w.auth.invalidate(&PrincipalRef::Token("ci-token".into()));
    assert!(w.auth.try_cached(&regenerated, "new-pw2").is_none());
    assert!(w.auth.verify_secret(&regenerated, "new-pw2").is_ok());
    w.clock.advance(60);
    assert!(w.auth.try_cached(&regenerated, "new-pw2").is_none(), "TTL");
}

#[test]
fn refresh_token_logins() {
    let mut w = world();
    let r = w
        .tokens
        .issue_refresh(
            "ci-token",
            PrincipalRef::Token("ci-token".into()),
            4,
            "",
            Permissions::default(),
        )
        .unwrap();
    let a = w.basic(TOKEN_USERNAME, &r.token).unwrap();
    assert_eq!(a.principal.subject(), "ci-token");
    assert_eq!(a.credential, format!("refresh_token:{}", r.jti));

    let u = w
        .tokens
        .issue_refresh(
            &USER_ID.to_string(),
            PrincipalRef::User(USER_ID),
            9,
            "t",
            Permissions::default(),
        )
        .unwrap();
    let a = block_on(
        w.auth
            .authenticate_refresh_token(&w.store, &w.tokens, &u.token),
    )
    .unwrap();
    assert_eq!(
        a.principal,
        Principal::DirectoryUser {
            id: USER_ID,
            name: "ana".into(),
            groups: vec![GROUP_ID]
        }
    );
    // Groups are read fresh at every use.
    w.store.users[0].groups = vec![];
    let a = w.basic(TOKEN_USERNAME, &u.token).unwrap();
    assert!(
        matches!(a.principal, Principal::DirectoryUser { ref groups, .. } if groups.is_empty())
    );

    // Secret regenerated → generation bumped → revoked.
    w.store.tokens[0].generation = 5;
    assert_eq!(
        w.basic(TOKEN_USERNAME, &r.token).unwrap_err(),
        AuthFailure::RevokedToken {
            token_generation: 4,
            current_generation: Some(5)
        }
    );
    // Disabled and deleted identities.
    w.store.users[0].enabled = false;
    assert_eq!(
        w.basic(TOKEN_USERNAME, &u.token).unwrap_err().code(),
        "disabled_identity"
    );
    w.store.users.clear();
    assert_eq!(
        w.basic(TOKEN_USERNAME, &u.token).unwrap_err().code(),
        "revoked_token"
    );
    // Expired, and an access token in its place.
    let admin_r = w
        .tokens
        .issue_refresh(
            REGISTRY,
            PrincipalRef::Admin(REGISTRY.into()),
            1,
            "",
            Permissions::default(),
        )
        .unwrap();
    assert!(w.basic(TOKEN_USERNAME, &admin_r.token).is_ok());
    w.clock.advance(3 * 3600 + 60);
    assert_eq!(
        w.basic(TOKEN_USERNAME, &admin_r.token).unwrap_err().code(),
        "token_expired"
    );
    let access = w.tokens.issue_access("x", vec![]).unwrap();
    assert_eq!(
        w.basic(TOKEN_USERNAME, &access.token).unwrap_err().code(),
        "wrong_token_type"
    );
    assert_eq!(
        w.basic(TOKEN_USERNAME, "not-a-jwt").unwrap_err().code(),
        "malformed_token"
    );
}

#[test]
fn identity_token_exchange() {
    let mut w = world();
    let i = w
        .tokens
        .issue_identity(
            &USER_ID.to_string(),
            "ana",
            PrincipalRef::User(USER_ID),
            9,
            "t",
        )
        .unwrap();
    let a = block_on(
        w.auth
            .authenticate_identity_token(&w.store, &w.tokens, &i.token),
    )
    .unwrap();
    assert_eq!(a.principal.subject(), USER_ID.to_string());
    assert_eq!(a.credential, format!("identity_token:{}", i.jti));
    let ctx = block_on(load_policy_context(&w.store, &a.principal)).unwrap();
    assert_eq!(
        ctx.role_assignments.len(),
        1,
        "only the user's group assignment"
    );
    assert!(ctx.has_role_assignment(&a.principal));

    let wl = w
        .tokens
        .issue_identity(
            &WORKLOAD_ID.to_string(),
            "pod",
            PrincipalRef::WorkloadIdentity(WORKLOAD_ID),
            1,
            "t",
        )
        .unwrap();
    let a = block_on(
        w.auth
            .authenticate_identity_token(&w.store, &w.tokens, &wl.token),
    )
    .unwrap();
    assert!(matches!(a.principal, Principal::WorkloadIdentity { .. }));
    let ctx = block_on(load_policy_context(&w.store, &a.principal)).unwrap();
    assert!(
        !ctx.has_role_assignment(&a.principal),
        "no role → the exchange answers 401"
    );

    // A service principal's directory token (client-credentials grant)
    // authenticates it, and stops when its secrets' generation moves on.
    let sp = w
        .tokens
        .issue_identity(
            &SP_ID.to_string(),
            "ci-app",
            PrincipalRef::ServicePrincipal(SP_ID),
            2,
            "t",
        )
        .unwrap();
    let a = block_on(
        w.auth
            .authenticate_identity_token(&w.store, &w.tokens, &sp.token),
    )
    .unwrap();
    assert!(matches!(a.principal, Principal::ServicePrincipal { app_id, .. } if app_id == SP_ID));
    let stale = w
        .tokens
        .issue_identity(
            &SP_ID.to_string(),
            "ci-app",
            PrincipalRef::ServicePrincipal(SP_ID),
            1,
            "t",
        )
        .unwrap();
    assert!(block_on(
        w.auth
            .authenticate_identity_token(&w.store, &w.tokens, &stale.token),
    )
    .is_err());

    // Identity tokens for non-directory principals are refused.
    let bogus = w
        .tokens
        .issue_identity(
            "ci-token",
            "x",
            PrincipalRef::Token("ci-token".into()),
            4,
            "t",
        )
        .unwrap();
    let err = block_on(
        w.auth
            .authenticate_identity_token(&w.store, &w.tokens, &bogus.token),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        AuthenticateError::Failure(AuthFailure::WrongTokenType { .. })
    ));

    w.store.users[0].generation = 10;
    let err = block_on(
        w.auth
            .authenticate_identity_token(&w.store, &w.tokens, &i.token),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        AuthenticateError::Failure(AuthFailure::RevokedToken { .. })
    ));
}

#[test]
fn policy_context_loading() {
    let w = world();
    let tok = Principal::RepositoryToken {
        name: "ci-token".into(),
        scope_map: SYSTEM_PUSH.into(),
    };
    let ctx = block_on(load_policy_context(&w.store, &tok)).unwrap();
    assert_eq!(
        ctx.scope_map.as_ref().map(|m| m.name()),
        Some(SYSTEM_PUSH),
        "system maps need no storage"
    );
    assert!(ctx.settings.anonymous_pull);
    assert!(ctx.role_assignments.is_empty());
    let custom = Principal::RepositoryToken {
        name: "x-token".into(),
        scope_map: "team-map".into(),
    };
    let ctx = block_on(load_policy_context(&w.store, &custom)).unwrap();
    assert_eq!(ctx.scope_map.as_ref().map(|m| m.rules().len()), Some(1));
    let gone = Principal::RepositoryToken {
        name: "x-token".into(),
        scope_map: "deleted-map".into(),
    };
    assert!(block_on(load_policy_context(&w.store, &gone))
        .unwrap()
        .scope_map
        .is_none());
}

#[test]
fn store_failures_are_not_auth_failures() {
    let mut w = world();
    w.store.down = true;
    let err = block_on(
        w.auth
            .authenticate_basic(&w.store, &w.tokens, "ci-token", "tok-pw2"),
    )
    .unwrap_err();
    assert!(matches!(err, AuthenticateError::Store(StoreDown)));
    assert!(block_on(load_policy_context(&w.store, &Principal::Anonymous)).is_err());
}

#[test]
fn end_to_end_token_flow() {
    // docker login with a token, then a push scope, then /v2 verification.
    let w = world();
    let who = w.basic("ci-token", "tok-pw2").unwrap();
    let ctx = block_on(load_policy_context(&w.store, &who.principal)).unwrap();
    let req = crate::scope::parse_scope_list("repository:team/app:pull,push,delete").unwrap();
    let grant = crate::authorize::authorize(&who.principal, &ctx, &req);
    assert_eq!(grant.scope_string(), "repository:team/app:pull,push");
    let issued = w
        .tokens
        .issue_access(&who.principal.subject(), grant.access())
        .unwrap();
    let claims = w.tokens.verify_access(&issued.token).unwrap();
    let put = crate::scope::RequestedScope::repository(
        "team/app",
        crate::scope::ActionSet::required_for_method("PUT"),
    );
    assert!(claims.missing(&put).is_empty());
    let del = crate::scope::RequestedScope::repository(
        "team/app",
        crate::scope::ActionSet::required_for_method("DELETE"),
    );
    assert!(!claims.missing(&del).is_empty());
}

impl World {
    fn password(&self, user: &str, pw: &str) -> Result<Authenticated, AuthFailure> {
        block_on(self.auth.authenticate_password(&self.store, user, pw)).map_err(|e| match e {
            AuthenticateError::Failure(f) => f,
            AuthenticateError::Store(s) => panic!("store error {s}"),
        })
    }

    fn client(&self, app_id: Uuid, secret: &str) -> Result<Authenticated, AuthFailure> {
        block_on(
            self.auth
                .authenticate_client_credentials(&self.store, app_id, secret),
        )
        .map_err(|e| match e {
            AuthenticateError::Failure(f) => f,
            AuthenticateError::Store(s) => panic!("store error {s}"),
        })
    }
}

fn ana() -> Principal {
    Principal::DirectoryUser {
        id: USER_ID,
        name: "ana".into(),
        groups: vec![GROUP_ID],
    }
}

#[test]
fn directory_user_basic_logins() {
    let mut w = world();
    let a = w.basic("ana", "ana-pw").unwrap();
    assert_eq!(a.principal, ana());
    assert_eq!(a.credential, "password");
    assert_eq!(a.generation, 9);
    assert_eq!(w.basic("ana", "nope").unwrap_err().code(), "bad_secret");
    // Names are exact.
    assert_eq!(
        w.basic("Ana", "ana-pw").unwrap_err().code(),
        "unknown_identity"
    );
    // A user without a password cannot log in, and says so like a wrong one.
    w.store.users[0].secrets.clear();
    assert_eq!(w.basic("ana", "ana-pw").unwrap_err().code(), "bad_secret");
    let h = hasher();
    w.store.users[0].secrets = vec![secret(&h, "password", "ana-pw", None)];
    // Disabled: only said after the secret verified.
    w.store.users[0].enabled = false;
    assert_eq!(
        w.basic("ana", "ana-pw").unwrap_err(),
        AuthFailure::DisabledIdentity {
            identity: format!("user:{USER_ID}")
        }
    );
    assert_eq!(w.basic("ana", "nope").unwrap_err().code(), "bad_secret");
}

#[test]
fn named_login_tries_the_token_first() {
    // The store keeps the namespace unique; if it ever did not, the token
    // wins and the user's password is a bad secret for it.
    let mut w = world();
    let h = hasher();
    w.store.users.push(DirectoryUserRecord {
        id: Uuid::from_u128(0x2),
        name: "ci-token".into(),
        groups: vec![],
        enabled: true,
        secrets: vec![secret(&h, "password", "user-pw", None)],
        generation: 1,
    });
    assert_eq!(
        w.basic("ci-token", "user-pw").unwrap_err().code(),
        "bad_secret"
    );
    assert!(matches!(
        w.basic("ci-token", "tok-pw2").unwrap().principal,
        Principal::RepositoryToken { .. }
    ));
}

#[test]
fn password_grant_is_for_directory_users_only() {
    let w = world();
    let a = w.password("ana", "ana-pw").unwrap();
    assert_eq!(a.principal, ana());
    assert_eq!(a.credential, "password");
    assert_eq!(w.password("ana", "nope").unwrap_err().code(), "bad_secret");
    // Tokens, the admin account and service principals do not log in here.
    let unknown = w.password("ci-token", "tok-pw2").unwrap_err();
    assert_eq!(unknown.code(), "unknown_identity");
    assert_eq!(
        unknown.client_message(),
        w.password("ana", "nope").unwrap_err().client_message()
    );
    assert_eq!(
        w.password(REGISTRY, "admin-pw1").unwrap_err().code(),
        "unknown_identity"
    );
    assert_eq!(
        w.password(&SP_ID.to_string(), "sp-secret")
            .unwrap_err()
            .code(),
        "unknown_identity"
    );
    assert_eq!(
        w.password("ana", "").unwrap_err().code(),
        "malformed_credentials"
    );
    assert_eq!(
        w.password("", "x").unwrap_err().code(),
        "malformed_credentials"
    );
}

#[test]
fn password_grant_state_checks() {
    let mut w = world();
    w.store.users[0].enabled = false;
    assert_eq!(
        w.password("ana", "ana-pw").unwrap_err().code(),
        "disabled_identity"
    );
    w.store.users[0].enabled = true;
    // A changed password: the old one fails at once, even after a cached hit.
    assert!(w.password("ana", "ana-pw").is_ok());
    let h = hasher();
    w.store.users[0].secrets = vec![secret(&h, "password", "ana-new", None)];
    assert_eq!(
        w.password("ana", "ana-pw").unwrap_err().code(),
        "bad_secret"
    );
    assert!(w.password("ana", "ana-new").is_ok());
    // An expiring password.
    w.store.users[0].secrets = vec![secret(&h, "password", "ana-exp", Some(T0 + 10))];
    assert!(w.password("ana", "ana-exp").is_ok());
    w.clock.set(T0 + 10);
    assert_eq!(
        w.password("ana", "ana-exp").unwrap_err().code(),
        "expired_secret"
    );
    w.store.users.clear();
    assert_eq!(
        w.password("ana", "ana-new").unwrap_err().code(),
        "unknown_identity"
    );
}

#[test]
fn client_credentials_grant() {
    let mut w = world();
    let a = w.client(SP_ID, "sp-secret").unwrap();
    assert_eq!(
        a.principal,
        Principal::ServicePrincipal {
            app_id: SP_ID,
            name: "ci-app".into()
        }
    );
    assert_eq!(a.credential, "s1");
    assert_eq!(a.generation, 2);
    assert_eq!(w.client(SP_ID, "nope").unwrap_err().code(), "bad_secret");
    assert_eq!(
        w.client(Uuid::from_u128(0x6), "sp-secret")
            .unwrap_err()
            .code(),
        "unknown_identity"
    );
    assert_eq!(
        w.client(SP_ID, "").unwrap_err().code(),
        "malformed_credentials"
    );
    w.clock.set(T0 + 365 * 86400);
    assert_eq!(
        w.client(SP_ID, "sp-secret").unwrap_err().code(),
        "expired_secret"
    );
    w.clock.set(T0);
    w.store.sps[0].enabled = false;
    assert_eq!(
        w.client(SP_ID, "sp-secret").unwrap_err().code(),
        "disabled_identity"
    );
    w.store.sps[0].secrets.clear();
    assert_eq!(
        w.client(SP_ID, "sp-secret").unwrap_err().code(),
        "bad_secret"
    );
}

#[test]
fn new_grants_report_store_failures() {
    let mut w = world();
    w.store.down = true;
    assert!(matches!(
        block_on(w.auth.authenticate_password(&w.store, "ana", "ana-pw")),
        Err(AuthenticateError::Store(StoreDown))
    ));
    assert!(matches!(
        block_on(
            w.auth
                .authenticate_client_credentials(&w.store, SP_ID, "sp-secret")
        ),
        Err(AuthenticateError::Store(StoreDown))
    ));
    assert!(matches!(
        block_on(
            w.auth
                .authenticate_basic(&w.store, &w.tokens, "ana", "ana-pw")
        ),
        Err(AuthenticateError::Store(StoreDown))
    ));
}
