//! Identity persistence, against a temporary SQLite database and a fresh
//! database on a private PostgreSQL server alike.

use std::sync::Arc;

use berth_auth::credential::{Authenticator, IdentityStore, PolicyStore, TOKEN_USERNAME};
use berth_auth::jwt::{KeySet, Permissions, SigningKey, StoredKey, TokenConfig, TokenService};
use berth_auth::password::{Argon2Params, SecretHasher, VerifiedCache};
use berth_auth::principal::{Principal, PrincipalRef};
use berth_auth::role::{Assignee, Role, RoleAssignment, RoleScope};
use berth_auth::scope_map::{ScopeMap, SYSTEM_PULL, SYSTEM_PUSH, SYSTEM_SCOPE_MAPS};
use berth_auth::{AuthenticateError, ManualClock};
use berth_store::identity::{normalize_network_rule, NetworkAction, RegistryConfig};
use berth_store::meta::MetaStore;
use berth_store::{DatabaseUrl, IdentityRepo, StoreError};
use berth_testpg::PgServer;
use uuid::Uuid;

const T0: u64 = 1_700_000_000;
const REGISTRY: &str = "myregistry";

/// Where a test's database lives: SQLite in a temp dir, or a fresh
/// database on a private PostgreSQL server.
enum Place {
    Sqlite(tempfile::TempDir),
    /// The server is kept running for the test's duration.
    Postgres(#[allow(dead_code)] PgServer, DatabaseUrl),
}

impl Place {
    fn sqlite() -> Place {
        Place::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    fn postgres() -> Place {
        let pg = PgServer::start();
        let url = DatabaseUrl::parse(&pg.create_database()).expect("url");
        Place::Postgres(pg, url)
    }

    /// Open (migrating) the database.
    async fn open(&self) -> MetaStore {
        match self {
            Place::Sqlite(dir) => MetaStore::open_sqlite(&dir.path().join("meta.db")).await,
            Place::Postgres(_, url) => MetaStore::open_postgres(url).await,
        }
        .expect("open")
    }
}

struct Db {
    place: Place,
    meta: MetaStore,
    repo: IdentityRepo,
}

async fn db_on(place: Place) -> Db {
    let meta = place.open().await;
    let repo = IdentityRepo::new(&meta);
    Db { place, meta, repo }
}

/// Every test runs twice: `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::db_on(super::Place::sqlite()).await).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(super::db_on(super::Place::postgres()).await).await
                }
            }
        )*
    };
}

on_both_engines!(
    settings_defaults_and_update,
    settings_survive_reopen,
    users_crud_and_generation,
    names_are_unique_across_users_and_tokens,
    groups_crud,
    service_principals_crud_and_generation,
    admin_account,
    scope_maps_crud,
    tokens_crud_and_generation,
    role_assignments_crud_and_policy_store,
    network_rules_validation,
    signing_keys_round_trip,
    authenticate_against_the_store,
);

fn hasher() -> SecretHasher {
    SecretHasher::new(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .expect("params")
}

fn phc(secret: &str) -> String {
    hasher().hash(secret).expect("hash")
}

fn authenticator() -> (Authenticator, TokenService, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let auth = Authenticator::new(
        REGISTRY,
        hasher(),
        VerifiedCache::new(100, 60),
        clock.clone(),
    );
    let tokens = TokenService::new(
        TokenConfig::new("myregistry.example.com"),
        KeySet::new(SigningKey::generate().expect("key")),
        clock.clone(),
    );
    (auth, tokens, clock)
}

fn code<E: std::error::Error>(
    r: Result<berth_auth::Authenticated, AuthenticateError<E>>,
) -> String {
    match r {
        Ok(a) => format!("ok:{}", a.credential),
        Err(AuthenticateError::Failure(f)) => f.code().to_string(),
        Err(AuthenticateError::Store(e)) => panic!("store error: {e}"),
    }
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Invalid(_)))
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

async fn settings_defaults_and_update(d: Db) {
    let c = d.repo.registry_config().await.unwrap();
    assert_eq!(c, RegistryConfig::default());
    assert!(!c.anonymous_pull);
    assert_eq!(c.default_action, NetworkAction::Allow);
    assert_eq!(
        (
            c.access_token_ttl_secs,
            c.refresh_token_ttl_secs,
            c.identity_token_ttl_secs
        ),
        (4500, 10800, 10800)
    );
    assert!(!d.repo.registry_settings().await.unwrap().anonymous_pull);

    let new = RegistryConfig {
        anonymous_pull: true,
        default_action: NetworkAction::Deny,
        access_token_ttl_secs: 600,
        refresh_token_ttl_secs: 7200,
        identity_token_ttl_secs: 3600,
        retention_enabled: true,
        retention_untagged_days: 30,
    };
    d.repo.update_registry_config(&new).await.unwrap();
    assert_eq!(d.repo.registry_config().await.unwrap(), new);
    assert!(d.repo.registry_settings().await.unwrap().anonymous_pull);

    let bad = RegistryConfig {
        access_token_ttl_secs: 59,
        ..new.clone()
    };
    assert!(is_invalid(d.repo.update_registry_config(&bad).await));
    let bad = RegistryConfig {
        refresh_token_ttl_secs: u64::MAX,
        ..new.clone()
    };
    assert!(is_invalid(d.repo.update_registry_config(&bad).await));
    let bad = RegistryConfig {
        retention_untagged_days: 366,
        ..new.clone()
    };
    assert!(is_invalid(d.repo.update_registry_config(&bad).await));
    assert_eq!(d.repo.registry_config().await.unwrap(), new, "unchanged");

    assert_eq!(
        "deny".parse::<NetworkAction>().unwrap(),
        NetworkAction::Deny
    );
    assert!("block".parse::<NetworkAction>().is_err());
}

async fn settings_survive_reopen(d: Db) {
    let c = RegistryConfig {
        anonymous_pull: true,
        ..RegistryConfig::default()
    };
    d.repo.update_registry_config(&c).await.unwrap();
    d.repo.create_user("owner", &phc("pw")).await.unwrap();
    d.meta.close().await;
    let meta = d.place.open().await;
    let repo = IdentityRepo::new(&meta);
    assert!(repo.registry_config().await.unwrap().anonymous_pull);
    assert_eq!(repo.count_users().await.unwrap(), 1);
}

async fn users_crud_and_generation(d: Db) {
    let r = &d.repo;
    assert_eq!(r.count_users().await.unwrap(), 0);
    let pw = phc("ana-pw");
    let id = r.create_user("ana", &pw).await.unwrap();
    assert_eq!(r.count_users().await.unwrap(), 1);

    let rec = r.user_by_name("ana").await.unwrap().unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.name, "ana");
    assert!(rec.enabled);
    assert_eq!(rec.generation, 1);
    assert!(rec.groups.is_empty());
    assert_eq!(rec.secrets.len(), 1);
    assert_eq!(rec.secrets[0].name, "password");
    assert_eq!(rec.secrets[0].phc, pw);
    assert_eq!(rec.secrets[0].expires_at, None);
    assert_eq!(r.user_by_id(id).await.unwrap(), Some(rec.clone()));
    assert_eq!(r.directory_user(id).await.unwrap(), Some(rec.clone()));
    assert_eq!(
        r.directory_user_by_name("ana").await.unwrap(),
        Some(rec.clone())
    );
    assert!(r.user_by_name("Ana").await.unwrap().is_none(), "exact");
    assert!(r.user_by_id(Uuid::new_v4()).await.unwrap().is_none());

    let info = r.get_user(id).await.unwrap().unwrap();
    assert!(info.has_password && info.enabled);
    assert_eq!(info.generation, 1);
    assert!(info.created_at > 0);

    // Duplicates, case-insensitively, and bad names/hashes.
    assert!(is_conflict(r.create_user("ana", &pw).await));
    assert!(is_conflict(r.create_user("ANA", &pw).await));
    assert!(is_invalid(r.create_user("", &pw).await));
    assert!(is_invalid(r.create_user("a b", &pw).await));
    assert!(is_invalid(r.create_user(TOKEN_USERNAME, &pw).await));
    assert!(is_invalid(
        r.create_user(&Uuid::new_v4().to_string(), &pw).await
    ));
    assert!(is_invalid(r.create_user("bob", "plaintext").await));
    let bob = r.create_user("bob@example.com", &pw).await.unwrap();
    let names: Vec<String> = r
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ana", "bob@example.com"]);

    // Disabling bumps; enabling does not.
    r.set_user_enabled(id, false).await.unwrap();
    let rec = r.user_by_id(id).await.unwrap().unwrap();
    assert!(!rec.enabled);
    assert_eq!(rec.generation, 2);
    r.set_user_enabled(id, true).await.unwrap();
    assert_eq!(r.user_by_id(id).await.unwrap().unwrap().generation, 2);
    // A new password bumps.
    let pw2 = phc("ana-new");
    r.set_user_password(id, &pw2).await.unwrap();
    let rec = r.user_by_id(id).await.unwrap().unwrap();
    assert_eq!(rec.generation, 3);
    assert_eq!(rec.secrets[0].phc, pw2);
    assert!(is_invalid(r.set_user_password(id, "nope").await));
    assert_eq!(r.revoke_user_tokens(id).await.unwrap(), 4);

    let ghost = Uuid::new_v4();
    assert!(is_not_found(r.set_user_enabled(ghost, false).await));
    assert!(is_not_found(r.set_user_password(ghost, &pw).await));
    assert!(is_not_found(r.revoke_user_tokens(ghost).await));

    // Deleting frees the name and removes memberships and assignments.
    let g = r.create_group("team").await.unwrap();
    r.add_group_member(g, id).await.unwrap();
    r.create_role_assignment(&Assignee::User(id), Role::AcrPull, &RoleScope::Registry)
        .await
        .unwrap();
    assert!(r.delete_user(id).await.unwrap());
    assert!(!r.delete_user(id).await.unwrap());
    assert!(r.user_by_id(id).await.unwrap().is_none());
    assert!(r.group_members(g).await.unwrap().is_empty());
    assert!(r
        .list_role_assignments(Some(&Assignee::User(id)))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(r.count_users().await.unwrap(), 1);
    let again = r.create_user("ana", &pw).await.unwrap();
    assert_ne!(again, id);
    assert!(r.get_user(bob).await.unwrap().is_some());
}

async fn names_are_unique_across_users_and_tokens(d: Db) {
    let r = &d.repo;
    r.create_user("shared-name", &phc("x")).await.unwrap();
    let err = r.create_token("shared-name", SYSTEM_PULL).await;
    assert!(is_conflict(err));
    assert!(is_conflict(
        r.create_token("SHARED-name", SYSTEM_PULL).await
    ));
    r.create_token("ci-token", SYSTEM_PULL).await.unwrap();
    assert!(is_conflict(r.create_user("ci-token", &phc("x")).await));
    assert!(is_conflict(r.create_user("CI-TOKEN", &phc("x")).await));
    assert!(is_conflict(r.create_token("ci-token", SYSTEM_PUSH).await));
    // Deleting the token frees the name for a user.
    assert!(r.delete_token("ci-token").await.unwrap());
    r.create_user("ci-token", &phc("x")).await.unwrap();
}

async fn groups_crud(d: Db) {
    let r = &d.repo;
    let ana = r.create_user("ana", &phc("x")).await.unwrap();
    let bob = r.create_user("bob", &phc("x")).await.unwrap();
    let devs = r.create_group("devs").await.unwrap();
    let ops = r.create_group("ops team").await.unwrap();
    assert!(is_conflict(r.create_group("devs").await));
    assert!(is_invalid(r.create_group("").await));
    assert!(is_invalid(r.create_group(" padded").await));

    assert!(r.add_group_member(devs, ana).await.unwrap());
    assert!(!r.add_group_member(devs, ana).await.unwrap(), "idempotent");
    assert!(r.add_group_member(devs, bob).await.unwrap());
    assert!(r.add_group_member(ops, ana).await.unwrap());
    assert!(is_not_found(r.add_group_member(Uuid::new_v4(), ana).await));
    assert!(is_not_found(r.add_group_member(devs, Uuid::new_v4()).await));

    let mut want = vec![ana, bob];
    want.sort();
    assert_eq!(r.group_members(devs).await.unwrap(), want);
    let mut want = vec![devs, ops];
    want.sort();
    assert_eq!(r.groups_of(ana).await.unwrap(), want);
    assert_eq!(r.user_by_id(ana).await.unwrap().unwrap().groups, want);
    assert_eq!(r.get_user(ana).await.unwrap().unwrap().groups, want);
    let listed = r.list_users().await.unwrap();
    assert_eq!(listed[0].groups, want);
    assert_eq!(listed[1].groups, vec![devs]);

    let groups = r.list_groups().await.unwrap();
    assert_eq!(
        groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["devs", "ops team"]
    );
    assert_eq!(r.get_group(ops).await.unwrap().unwrap().members, vec![ana]);
    assert!(r.get_group(Uuid::new_v4()).await.unwrap().is_none());

    assert!(r.remove_group_member(devs, ana).await.unwrap());
    assert!(!r.remove_group_member(devs, ana).await.unwrap());
    assert_eq!(r.groups_of(ana).await.unwrap(), vec![ops]);

    r.create_role_assignment(&Assignee::Group(ops), Role::Reader, &RoleScope::Registry)
        .await
        .unwrap();
    assert!(r.delete_group(ops).await.unwrap());
    assert!(!r.delete_group(ops).await.unwrap());
    assert!(r.groups_of(ana).await.unwrap().is_empty());
    assert!(r
        .list_role_assignments(Some(&Assignee::Group(ops)))
        .await
        .unwrap()
        .is_empty());
}

async fn service_principals_crud_and_generation(d: Db) {
    let r = &d.repo;
    let app = r.create_service_principal("ci app").await.unwrap();
    assert!(is_conflict(r.create_service_principal("ci app").await));
    let info = r.get_service_principal(app).await.unwrap().unwrap();
    assert_eq!(info.name, "ci app");
    assert!(info.enabled && info.secrets.is_empty());
    assert_eq!(info.generation, 1);

    let p1 = phc("s1");
    let s1 = r
        .add_service_principal_secret(app, &p1, Some(T0 + 365 * 86400))
        .await
        .unwrap();
    let s2 = r
        .add_service_principal_secret(app, &phc("s2"), None)
        .await
        .unwrap();
    assert!(is_not_found(
        r.add_service_principal_secret(Uuid::new_v4(), &p1, None)
            .await
    ));
    assert!(is_invalid(
        r.add_service_principal_secret(app, "plain", None).await
    ));
    let rec = r.service_principal(app).await.unwrap().unwrap();
    assert_eq!(rec.app_id, app);
    assert_eq!(rec.generation, 1, "adding a secret revokes nothing");
    assert_eq!(rec.secrets.len(), 2);
    let first = rec
        .secrets
        .iter()
        .find(|s| s.name == s1.to_string())
        .unwrap();
    assert_eq!(first.phc, p1);
    assert_eq!(first.expires_at, Some(T0 + 365 * 86400));
    let info = r.get_service_principal(app).await.unwrap().unwrap();
    assert_eq!(info.secrets.len(), 2);

    assert!(r.remove_service_principal_secret(app, s1).await.unwrap());
    assert!(!r.remove_service_principal_secret(app, s1).await.unwrap());
    let rec = r.service_principal(app).await.unwrap().unwrap();
    assert_eq!(rec.generation, 2);
    assert_eq!(rec.secrets.len(), 1);
    assert_eq!(rec.secrets[0].name, s2.to_string());

    assert_eq!(
        r.remove_all_service_principal_secrets(app).await.unwrap(),
        1
    );
    assert_eq!(
        r.service_principal(app).await.unwrap().unwrap().generation,
        3
    );
    assert!(is_not_found(
        r.remove_all_service_principal_secrets(Uuid::new_v4()).await
    ));

    r.set_service_principal_enabled(app, false).await.unwrap();
    let rec = r.service_principal(app).await.unwrap().unwrap();
    assert!(!rec.enabled);
    assert_eq!(rec.generation, 4);
    r.set_service_principal_enabled(app, true).await.unwrap();
    assert!(is_not_found(
        r.set_service_principal_enabled(Uuid::new_v4(), true).await
    ));

    let other = r.create_service_principal("other").await.unwrap();
    let names: Vec<String> = r
        .list_service_principals()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["ci app", "other"]);

    r.add_service_principal_secret(app, &p1, None)
        .await
        .unwrap();
    r.create_role_assignment(
        &Assignee::ServicePrincipal(app),
        Role::AcrPush,
        &RoleScope::Registry,
    )
    .await
    .unwrap();
    assert!(r.delete_service_principal(app).await.unwrap());
    assert!(!r.delete_service_principal(app).await.unwrap());
    assert!(r.service_principal(app).await.unwrap().is_none());
    assert!(r.list_role_assignments(None).await.unwrap().is_empty());
    assert!(r.get_service_principal(other).await.unwrap().is_some());
}

async fn admin_account(d: Db) {
    let r = &d.repo;
    let a = r.admin_account().await.unwrap().unwrap();
    assert!(!a.enabled, "disabled by default");
    assert!(a.secrets.is_empty());
    let g0 = a.generation;

    let p1 = phc("admin1");
    r.set_admin_password(1, &p1).await.unwrap();
    r.set_admin_password(2, &phc("admin2")).await.unwrap();
    assert!(is_invalid(r.set_admin_password(3, &p1).await));
    assert!(is_invalid(r.set_admin_password(1, "plain").await));
    let a = r.admin_account().await.unwrap().unwrap();
    assert_eq!(a.generation, g0 + 2);
    assert_eq!(
        a.secrets
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["password1", "password2"]
    );
    assert_eq!(a.secrets[0].phc, p1);

    r.set_admin_enabled(true).await.unwrap();
    let info = r.get_admin().await.unwrap();
    assert!(info.enabled);
    assert_eq!(info.generation, g0 + 2);
    assert_eq!(info.passwords.len(), 2);
    assert!(info.passwords[0].created_at > 0);

    r.remove_admin_password(2).await.unwrap();
    let a = r.admin_account().await.unwrap().unwrap();
    assert_eq!(a.secrets.len(), 1);
    assert_eq!(a.generation, g0 + 3);
    r.set_admin_enabled(false).await.unwrap();
    let a = r.admin_account().await.unwrap().unwrap();
    assert!(!a.enabled);
    assert_eq!(a.generation, g0 + 4);
}

async fn scope_maps_crud(d: Db) {
    let r = &d.repo;
    let all = r.list_scope_maps().await.unwrap();
    assert_eq!(all.len(), 5);
    for (m, name) in all.iter().zip(SYSTEM_SCOPE_MAPS) {
        assert!(m.system, "{}", m.name);
        let _ = name;
    }
    let mut names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    let mut want = SYSTEM_SCOPE_MAPS.to_vec();
    want.sort();
    assert_eq!(names, want);
    // The stored informational rules match the code's.
    for name in SYSTEM_SCOPE_MAPS {
        let info = r.get_scope_map(name).await.unwrap().unwrap();
        let from_code: Vec<String> = ScopeMap::system(name)
            .unwrap()
            .rules()
            .iter()
            .map(|x| x.to_string())
            .collect();
        assert_eq!(info.rules, from_code);
        assert_eq!(
            r.scope_map(name).await.unwrap(),
            ScopeMap::system(name),
            "policy store supplies system maps"
        );
    }

    let rules = vec![
        "repositories/team/*/content/read".to_string(),
        "repositories/team/*/content/write".to_string(),
        "repositories/team/*/content/read".to_string(),
    ];
    r.create_scope_map("team-map", "team access", &rules)
        .await
        .unwrap();
    let info = r.get_scope_map("team-map").await.unwrap().unwrap();
    assert!(!info.system);
    assert_eq!(info.description, "team access");
    assert_eq!(info.rules.len(), 2, "deduplicated");
    let map = r.scope_map("team-map").await.unwrap().unwrap();
    assert_eq!(map, ScopeMap::parse("team-map", &rules).unwrap());
    assert!(r.scope_map("ghost-map").await.unwrap().is_none());

    assert!(is_conflict(
        r.create_scope_map("team-map", "", &rules).await
    ));
    assert!(is_invalid(
        r.create_scope_map("_repositories_mine", "", &rules).await
    ));
    assert!(is_invalid(
        r.create_scope_map(SYSTEM_PULL, "", &rules).await
    ));
    assert!(is_invalid(r.create_scope_map("abc", "", &rules).await));
    assert!(is_invalid(
        r.create_scope_map(
            "bad-rules",
            "",
            &["repositories/x*/content/read".to_string()]
        )
        .await
    ));
    assert!(is_invalid(
        r.create_scope_map("long-desc", &"x".repeat(513), &rules)
            .await
    ));

    let new_rules = vec!["repositories/*/metadata/read".to_string()];
    r.update_scope_map("team-map", "changed", &new_rules)
        .await
        .unwrap();
    let info = r.get_scope_map("team-map").await.unwrap().unwrap();
    assert_eq!(info.rules, new_rules);
    assert_eq!(info.description, "changed");
    assert!(is_not_found(
        r.update_scope_map("ghost-map", "", &new_rules).await
    ));
    assert!(is_invalid(
        r.update_scope_map(SYSTEM_PUSH, "", &new_rules).await
    ));

    assert_eq!(r.list_scope_maps().await.unwrap().len(), 6);
    assert_eq!(
        r.list_scope_maps().await.unwrap()[5].name,
        "team-map",
        "system maps first"
    );

    // In use: refused; system: refused.
    r.create_token("team-token", "team-map").await.unwrap();
    assert!(is_conflict(r.delete_scope_map("team-map").await));
    assert!(is_invalid(r.delete_scope_map(SYSTEM_PULL).await));
    r.delete_token("team-token").await.unwrap();
    assert!(r.delete_scope_map("team-map").await.unwrap());
    assert!(!r.delete_scope_map("team-map").await.unwrap());
}

async fn tokens_crud_and_generation(d: Db) {
    let r = &d.repo;
    // An unknown scope map is not found (404 through the API), as of issue 16.
    assert!(is_not_found(r.create_token("ci-token", "ghost-map").await));
    assert!(is_invalid(r.create_token("ci", SYSTEM_PULL).await));
    assert!(is_invalid(r.create_token("ci_token", SYSTEM_PULL).await));
    r.create_token("ci-token", SYSTEM_PUSH).await.unwrap();

    let rec = r.repository_token("ci-token").await.unwrap().unwrap();
    assert_eq!(rec.scope_map, SYSTEM_PUSH);
    assert!(rec.enabled && rec.secrets.is_empty());
    assert_eq!(rec.generation, 1);
    assert!(r.repository_token("CI-TOKEN").await.unwrap().is_none());

    let p1 = phc("tok1");
    r.set_token_password("ci-token", 1, &p1, Some(T0 + 100))
        .await
        .unwrap();
    r.set_token_password("ci-token", 2, &phc("tok2"), None)
        .await
        .unwrap();
    assert!(is_invalid(
        r.set_token_password("ci-token", 0, &p1, None).await
    ));
    assert!(is_not_found(
        r.set_token_password("ghost-token", 1, &p1, None).await
    ));
    let rec = r.repository_token("ci-token").await.unwrap().unwrap();
    assert_eq!(rec.generation, 3);
    assert_eq!(rec.secrets.len(), 2);
    assert_eq!(rec.secrets[0].name, "password1");
    assert_eq!(rec.secrets[0].phc, p1);
    assert_eq!(rec.secrets[0].expires_at, Some(T0 + 100));
    assert_eq!(rec.secrets[1].expires_at, None);

    let info = r.get_token("ci-token").await.unwrap().unwrap();
    assert_eq!(info.passwords.len(), 2);
    assert_eq!(info.passwords[0].expires_at, Some(T0 + 100));

    r.remove_token_password("ci-token", 1).await.unwrap();
    let rec = r.repository_token("ci-token").await.unwrap().unwrap();
    assert_eq!(rec.generation, 4);
    assert_eq!(rec.secrets.len(), 1);
    assert_eq!(rec.secrets[0].name, "password2");

    r.set_token_enabled("ci-token", false).await.unwrap();
    let rec = r.repository_token("ci-token").await.unwrap().unwrap();
    assert!(!rec.enabled);
    assert_eq!(rec.generation, 5);
    r.set_token_enabled("ci-token", true).await.unwrap();
    assert!(is_not_found(r.set_token_enabled("ghost-token", true).await));

    r.set_token_scope_map("ci-token", SYSTEM_PULL)
        .await
        .unwrap();
    assert!(is_not_found(
        r.set_token_scope_map("ci-token", "ghost-map").await
    ));
    assert!(is_not_found(
        r.set_token_scope_map("ghost-token", SYSTEM_PULL).await
    ));
    let rec = r.repository_token("ci-token").await.unwrap().unwrap();
    assert_eq!(rec.scope_map, SYSTEM_PULL);
    assert_eq!(rec.generation, 5, "moving maps revokes nothing");

    r.create_token("a-token", SYSTEM_PULL).await.unwrap();
    let names: Vec<String> = r
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a-token", "ci-token"]);
    assert!(r.delete_token("ci-token").await.unwrap());
    assert!(!r.delete_token("ci-token").await.unwrap());
    assert!(r.get_token("ci-token").await.unwrap().is_none());
}

async fn role_assignments_crud_and_policy_store(d: Db) {
    let r = &d.repo;
    let ana = r.create_user("ana", &phc("x")).await.unwrap();
    let team = r.create_group("team").await.unwrap();
    let app = r.create_service_principal("app").await.unwrap();
    let scope: RoleScope = "repositories/team/*".parse().unwrap();

    let a1 = r
        .create_role_assignment(&Assignee::User(ana), Role::Owner, &RoleScope::Registry)
        .await
        .unwrap();
    let a2 = r
        .create_role_assignment(&Assignee::Group(team), Role::AcrPush, &scope)
        .await
        .unwrap();
    r.create_role_assignment(&Assignee::ServicePrincipal(app), Role::AcrPull, &scope)
        .await
        .unwrap();
    // Same tuple: conflict; other scope or role: fine.
    assert!(is_conflict(
        r.create_role_assignment(&Assignee::Group(team), Role::AcrPush, &scope)
            .await
    ));
    r.create_role_assignment(&Assignee::Group(team), Role::AcrPull, &scope)
        .await
        .unwrap();
    // Unknown assignees.
    for a in [
        Assignee::User(Uuid::new_v4()),
        Assignee::Group(Uuid::new_v4()),
        Assignee::ServicePrincipal(Uuid::new_v4()),
    ] {
        assert!(is_not_found(
            r.create_role_assignment(&a, Role::AcrPull, &RoleScope::Registry)
                .await
        ));
    }

    let all = r.list_role_assignments(None).await.unwrap();
    assert_eq!(all.len(), 4);
    let team_only = r
        .list_role_assignments(Some(&Assignee::Group(team)))
        .await
        .unwrap();
    assert_eq!(team_only.len(), 2);
    let got = r.get_role_assignment(a2).await.unwrap().unwrap();
    assert_eq!(
        got.assignment,
        RoleAssignment::new(Assignee::Group(team), Role::AcrPush, scope.clone())
    );
    let json = serde_json::to_value(&got).unwrap();
    assert_eq!(json["scope"], "repositories/team/*");
    assert_eq!(json["assignee"]["kind"], "group");

    // PolicyStore: only the named assignees.
    let loaded = r
        .role_assignments(&[Assignee::User(ana), Assignee::Group(team)])
        .await
        .unwrap();
    assert_eq!(loaded.len(), 3);
    assert!(loaded.contains(&RoleAssignment::new(
        Assignee::User(ana),
        Role::Owner,
        RoleScope::Registry
    )));

    assert!(r.delete_role_assignment(a1).await.unwrap());
    assert!(!r.delete_role_assignment(a1).await.unwrap());
    assert_eq!(
        r.role_assignments(&[Assignee::User(ana)])
            .await
            .unwrap()
            .len(),
        0
    );
}

async fn network_rules_validation(d: Db) {
    let r = &d.repo;
    let cases = [
        ("10.0.0.0/8", "10.0.0.0/8"),
        (" 10.1.2.3/8 ", "10.0.0.0/8"),
        ("192.168.1.7", "192.168.1.7/32"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("2001:db8:0:0::1", "2001:db8::1/128"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_network_rule(input).unwrap(), want, "{input}");
    }
    for bad in [
        "",
        "10.0.0.0/33",
        "2001:db8::/129",
        "300.1.1.1",
        "10.0.0",
        "host.example.com",
        "10.0.0.0/8; DROP TABLE",
        "1.2.3.4/-1",
    ] {
        assert!(normalize_network_rule(bad).is_err(), "{bad:?}");
        assert!(is_invalid(r.add_network_rule(bad).await), "{bad:?}");
    }

    assert_eq!(
        r.add_network_rule("10.1.2.3/8").await.unwrap(),
        "10.0.0.0/8"
    );
    assert!(is_conflict(r.add_network_rule("10.0.0.0/8").await));
    r.add_network_rule("2001:db8::1").await.unwrap();
    r.add_network_rule("192.168.0.0/16").await.unwrap();
    assert_eq!(
        r.network_rules().await.unwrap(),
        ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::1/128"]
    );
    assert!(r.remove_network_rule("2001:DB8::1/128").await.unwrap());
    assert!(!r.remove_network_rule("2001:db8::1").await.unwrap());
    assert!(is_invalid(r.remove_network_rule("nope").await));
    assert_eq!(r.network_rules().await.unwrap().len(), 2);
}

async fn signing_keys_round_trip(d: Db) {
    let r = &d.repo;
    assert!(r.load_signing_keys().await.unwrap().is_empty());
    let set = KeySet::new(SigningKey::generate().unwrap());
    let exported = set.export();
    r.save_signing_keys(&exported).await.unwrap();
    let loaded = r.load_signing_keys().await.unwrap();
    assert_eq!(loaded, exported);
    let again = KeySet::import(&loaded).unwrap();
    assert_eq!(again.active().kid(), set.active().kid());

    // Replace-all with a rotated set: active first, retired after.
    let new = SigningKey::generate().unwrap();
    let keys = vec![
        StoredKey {
            kid: new.kid().to_string(),
            pkcs8_pem: new.to_pkcs8_pem(),
            active: true,
            retire_after: None,
        },
        StoredKey {
            active: false,
            retire_after: Some(T0 + 3600),
            ..exported[0].clone()
        },
    ];
    r.save_signing_keys(&keys).await.unwrap();
    assert_eq!(r.load_signing_keys().await.unwrap(), keys);
    r.save_signing_keys(&keys[..1]).await.unwrap();
    assert_eq!(r.load_signing_keys().await.unwrap(), keys[..1].to_vec());
}

async fn authenticate_against_the_store(d: Db) {
    let r = &d.repo;
    let (auth, tokens, _clock) = authenticator();
    let ana = r.create_user("ana", &phc("ana-pw")).await.unwrap();
    let team = r.create_group("team").await.unwrap();
    r.add_group_member(team, ana).await.unwrap();
    r.create_token("ci-token", SYSTEM_PUSH).await.unwrap();
    r.set_token_password("ci-token", 1, &phc("tok-pw"), None)
        .await
        .unwrap();
    let app = r.create_service_principal("app").await.unwrap();
    let secret = r
        .add_service_principal_secret(app, &phc("sp-pw"), Some(T0 + 10))
        .await
        .unwrap();

    // Basic by name: tokens, then users.
    let who = auth
        .authenticate_basic(r, &tokens, "ana", "ana-pw")
        .await
        .unwrap();
    assert_eq!(
        who.principal,
        Principal::DirectoryUser {
            id: ana,
            name: "ana".into(),
            groups: vec![team]
        }
    );
    assert_eq!(
        code(
            auth.authenticate_basic(r, &tokens, "ci-token", "tok-pw")
                .await
        ),
        "ok:password1"
    );
    assert_eq!(
        code(auth.authenticate_basic(r, &tokens, "ghost", "x").await),
        "unknown_identity"
    );
    assert_eq!(
        code(auth.authenticate_password(r, "ana", "ana-pw").await),
        "ok:password"
    );
    assert_eq!(
        code(auth.authenticate_password(r, "ci-token", "tok-pw").await),
        "unknown_identity"
    );
    assert_eq!(
        code(auth.authenticate_client_credentials(r, app, "sp-pw").await),
        format!("ok:{secret}")
    );
    // Admin: disabled by default, then enabled.
    r.set_admin_password(1, &phc("adm")).await.unwrap();
    assert_eq!(
        code(auth.authenticate_basic(r, &tokens, REGISTRY, "adm").await),
        "admin_disabled"
    );
    r.set_admin_enabled(true).await.unwrap();
    assert_eq!(
        code(auth.authenticate_basic(r, &tokens, REGISTRY, "adm").await),
        "ok:password1"
    );

    // Revocation: a refresh token dies with a password change, and
    // disabling stops logins at once.
    let refresh = tokens
        .issue_refresh(
            &ana.to_string(),
            PrincipalRef::User(ana),
            who.generation,
            "",
            Permissions::default(),
        )
        .unwrap();
    assert_eq!(
        code(
            auth.authenticate_basic(r, &tokens, TOKEN_USERNAME, &refresh.token)
                .await
        ),
        format!("ok:refresh_token:{}", refresh.jti)
    );
    r.set_user_password(ana, &phc("ana-new")).await.unwrap();
    assert_eq!(
        code(
            auth.authenticate_basic(r, &tokens, TOKEN_USERNAME, &refresh.token)
                .await
        ),
        "revoked_token"
    );
    assert_eq!(
        code(auth.authenticate_password(r, "ana", "ana-pw").await),
        "bad_secret"
    );
    r.set_user_enabled(ana, false).await.unwrap();
    assert_eq!(
        code(auth.authenticate_password(r, "ana", "ana-new").await),
        "disabled_identity"
    );
    r.set_token_enabled("ci-token", false).await.unwrap();
    assert_eq!(
        code(
            auth.authenticate_basic(r, &tokens, "ci-token", "tok-pw")
                .await
        ),
        "disabled_token"
    );
    assert!(r
        .remove_service_principal_secret(app, secret)
        .await
        .unwrap());
    assert_eq!(
        code(auth.authenticate_client_credentials(r, app, "sp-pw").await),
        "bad_secret"
    );
    assert!(r.workload_identity(Uuid::new_v4()).await.unwrap().is_none());

    // The policy context comes from the store.
    r.create_role_assignment(&Assignee::Group(team), Role::AcrPull, &RoleScope::Registry)
        .await
        .unwrap();
    let ctx = berth_auth::credential::load_policy_context(
        r,
        &Principal::DirectoryUser {
            id: ana,
            name: "ana".into(),
            groups: vec![team],
        },
    )
    .await
    .unwrap();
    assert_eq!(ctx.role_assignments.len(), 1);
    drop(d.meta);
}
