//! Identities and access policy in the metadata database.
//!
//! [`IdentityRepo`] persists everything berth-auth reads through its
//! storage traits ([`IdentityStore`], [`PolicyStore`]) and everything the
//! management API changes: directory users and groups, service principals
//! and their client secrets, the admin account, scope maps, repository
//! tokens, workload identities, role assignments, network rules, registry
//! settings and the token signing keys. The schema is `migrations/sqlite/0002_identity.sql`.
//!
//! Conventions:
//! - Lookups return `Ok(None)` for "no such thing"; disabled identities and
//!   expired secrets are data, not errors.
//! - A change to something that does not exist is
//!   [`StoreError::NotFound`]; a name already taken or a duplicate is
//!   [`StoreError::Conflict`]; malformed input is [`StoreError::Invalid`].
//!   Deletes answer whether something was deleted.
//! - Repository tokens and directory users share one login namespace,
//!   compared without case (a Basic login by name tries the token, then the
//!   user), so a name can belong to one of them only.
//! - Revocation: every change that must stop tokens minted from an old
//!   credential bumps the identity's `generation` (disabling, a new or
//!   removed password or client secret). Because berth-auth re-reads the
//!   record at every login and refresh, disabling and removing also take
//!   effect at once for new tokens.
//! - Record types handed to the management API never carry password hashes
//!   ([`SecretInfo`] describes a secret without it).

mod admin;
mod groups;
mod keys;
mod network;
mod roles;
mod scope_maps;
mod service_principals;
mod settings;
mod strikes;
mod throttle;
mod tokens;
mod users;
mod workload;

use berth_auth::authorize::RegistrySettings;
use berth_auth::credential::{
    AdminAccount, DirectoryUserRecord, IdentityStore, PolicyStore, RepositoryTokenRecord,
    ServicePrincipalRecord, WorkloadIdentityRecord,
};
use berth_auth::role::{Assignee, RoleAssignment};
use berth_auth::scope_map::ScopeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use uuid::Uuid;

use crate::changes::ChangeHub;
use crate::error::StoreError;
use crate::meta::{Backend, MetaStore};

pub use admin::AdminInfo;
pub use groups::GroupInfo;
pub use network::normalize_network_rule;
pub use roles::RoleAssignmentInfo;
pub use scope_maps::ScopeMapInfo;
pub use service_principals::ServicePrincipalInfo;
pub use settings::{NetworkAction, RegistryConfig, MAX_RETENTION_DAYS};
pub use throttle::ThrottleWindow;
pub use tokens::TokenInfo;
pub use users::{validate_user_name, UserInfo};
pub use workload::{validate_issuer, NewWorkloadIdentity, WorkloadIdentityInfo, ISSUER_PATTERN};

/// The secret name of a directory user's password.
pub const USER_PASSWORD: &str = "password";

/// A stored secret as the management API shows it: never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// `password1`, `password2`, `password`, or a client secret's id.
    pub name: String,
    /// Unix seconds after which the secret no longer works.
    pub expires_at: Option<u64>,
    /// When it was set, unix milliseconds.
    pub created_at: i64,
}

/// Identities and policies over the metadata database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IdentityRepo {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    changes: Arc<ChangeHub>,
}

impl IdentityRepo {
    /// A repository over `meta`'s pools.
    pub fn new(meta: &MetaStore) -> IdentityRepo {
        IdentityRepo {
            read: meta.read_pool().clone(),
            write: meta.write_pool().clone(),
            backend: meta.backend(),
            changes: meta.changes().clone(),
        }
    }

    /// Where policy changes are announced to other replicas (and heard
    /// from them).
    pub fn changes(&self) -> &Arc<ChangeHub> {
        &self.changes
    }
}

// ---- helpers shared by the submodules ------------------------------------

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

fn not_found(msg: impl Into<String>) -> StoreError {
    StoreError::NotFound(msg.into())
}

fn conflict(msg: impl Into<String>) -> StoreError {
    StoreError::Conflict(msg.into())
}

/// Stored data that does not decode: a storage failure, not the caller's.
fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(anyhow::anyhow!("stored {what} is invalid: {detail}"))
}

/// A unique-constraint violation becomes a [`StoreError::Conflict`] with
/// `msg`; anything else stays a storage failure.
fn unique_or(e: sqlx::Error, msg: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(msg()),
        _ => e.into(),
    }
}

fn parse_uuid(s: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| corrupt(what, e))
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|e| corrupt(what, e))
}

fn opt_to_u64(v: Option<i64>, what: &str) -> Result<Option<u64>, StoreError> {
    v.map(|v| to_u64(v, what)).transpose()
}

fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| invalid(format!("{what} {v} is too large")))
}

fn opt_to_i64(v: Option<u64>, what: &str) -> Result<Option<i64>, StoreError> {
    v.map(|v| to_i64(v, what)).transpose()
}

fn flag(v: bool) -> i64 {
    i64::from(v)
}

/// `1|2` → the column prefix of that password slot.
fn password_slot(which: u8) -> Result<&'static str, StoreError> {
    match which {
        1 => Ok("password1"),
        2 => Ok("password2"),
        _ => Err(invalid(format!("password {which}: must be 1 or 2"))),
    }
}

/// Display names of groups and service principals: 1–128 characters, no
/// control characters, no surrounding whitespace.
fn validate_display_name(kind: &str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 128
        && name.trim() == name
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{kind} name {name:?} must be 1-128 characters without control characters or surrounding spaces"
        )))
    }
}

/// Bump an identity's generation inside a transaction. `table` and
/// `key_col` are compile-time constants of this module.
async fn bump_generation(
    tx: &mut Tx<'_>,
    table: &'static str,
    key_col: &'static str,
    key: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {table} SET generation = generation + 1, updated_at = $1 WHERE {key_col} = $2"
    ))
    .bind(now)
    .bind(key)
    .execute(&mut **tx)
    .await
    .map(|r| r.rows_affected())
}

// ---- berth-auth storage traits -------------------------------------------

impl IdentityStore for IdentityRepo {
    type Error = StoreError;

    async fn admin_account(&self) -> Result<Option<AdminAccount>, StoreError> {
        self.load_admin_account().await.map(Some)
    }

    async fn repository_token(
        &self,
        name: &str,
    ) -> Result<Option<RepositoryTokenRecord>, StoreError> {
        self.load_token_record(name).await
    }

    async fn service_principal(
        &self,
        app_id: Uuid,
    ) -> Result<Option<ServicePrincipalRecord>, StoreError> {
        self.load_service_principal_record(app_id).await
    }

    async fn directory_user(&self, id: Uuid) -> Result<Option<DirectoryUserRecord>, StoreError> {
        self.user_by_id(id).await
    }

    async fn directory_user_by_name(
        &self,
        name: &str,
    ) -> Result<Option<DirectoryUserRecord>, StoreError> {
        self.user_by_name(name).await
    }

    async fn workload_identity(
        &self,
        client_id: Uuid,
    ) -> Result<Option<WorkloadIdentityRecord>, StoreError> {
        Ok(self
            .get_workload_identity(client_id)
            .await?
            .map(|w| WorkloadIdentityRecord {
                client_id: w.client_id,
                name: w.name,
                enabled: w.enabled,
                generation: w.generation,
            }))
    }
}

impl PolicyStore for IdentityRepo {
    type Error = StoreError;

    async fn registry_settings(&self) -> Result<RegistrySettings, StoreError> {
        let c = self.registry_config().await?;
        Ok(RegistrySettings {
            anonymous_pull: c.anonymous_pull,
        })
    }

    async fn role_assignments(
        &self,
        assignees: &[Assignee],
    ) -> Result<Vec<RoleAssignment>, StoreError> {
        self.load_role_assignments(assignees).await
    }

    async fn scope_map(&self, name: &str) -> Result<Option<ScopeMap>, StoreError> {
        self.load_scope_map(name).await
    }
}
