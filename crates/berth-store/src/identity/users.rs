//! Directory users, and the login namespace they share with repository
//! tokens.

use berth_auth::credential::{DirectoryUserRecord, StoredSecret};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::{
    bump_generation, conflict, flag, invalid, not_found, parse_uuid, to_u64, unique_or,
    IdentityRepo, Tx, USER_PASSWORD,
};
use crate::error::StoreError;
use crate::now_ms;

/// A directory user as the management API shows it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Object id.
    pub id: Uuid,
    /// Login name.
    pub name: String,
    /// Enabled?
    pub enabled: bool,
    /// Whether a password is set.
    pub has_password: bool,
    /// Credential generation.
    pub generation: u64,
    /// Groups the user belongs to.
    pub groups: Vec<Uuid>,
    /// Created, unix milliseconds.
    pub created_at: i64,
    /// Last changed, unix milliseconds.
    pub updated_at: i64,
}

/// Directory-user names: 1–64 characters of `[A-Za-z0-9._@-]`, and not a
/// UUID (a UUID username logs in as a service principal, or with a refresh
/// token for the null UUID).
pub fn validate_user_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if !ok {
        return Err(invalid(format!(
            "user name {name:?} must be 1-64 characters of [A-Za-z0-9._@-]"
        )));
    }
    if Uuid::parse_str(name).is_ok() {
        return Err(invalid(format!(
            "user name {name:?} must not be a UUID (UUID usernames log in as service principals)"
        )));
    }
    Ok(())
}

/// A password hash must be an argon2id PHC string (berth-auth refuses
/// anything else at login; refusing it here catches a plaintext by mistake).
pub(super) fn validate_phc(phc: &str) -> Result<(), StoreError> {
    if phc.starts_with("$argon2id$") {
        Ok(())
    } else {
        Err(invalid("a secret must be stored as an argon2id PHC string"))
    }
}

/// Claim `name` in the login namespace shared by users and tokens.
pub(super) async fn claim_login_name(
    tx: &mut Tx<'_>,
    name: &str,
    kind: &'static str,
) -> Result<(), StoreError> {
    let key = name.to_lowercase();
    let taken = sqlx::query("SELECT kind FROM login_names WHERE name_key = $1")
        .bind(&key)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(r) = taken {
        let by: String = r.try_get(0)?;
        return Err(conflict(format!(
            "the name {name:?} is already taken by a {by} (users and tokens share one namespace)"
        )));
    }
    sqlx::query("INSERT INTO login_names (name_key, kind) VALUES ($1, $2)")
        .bind(&key)
        .bind(kind)
        .execute(&mut **tx)
        .await
        .map_err(|e| unique_or(e, || format!("the name {name:?} is already taken")))?;
    Ok(())
}

/// Release `name` from the login namespace.
pub(super) async fn release_login_name(tx: &mut Tx<'_>, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_names WHERE name_key = $1")
        .bind(name.to_lowercase())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const USER_COLUMNS: &str =
    "id, name, password_phc, enabled, generation, created_at, updated_at FROM directory_users";

struct UserRow {
    id: Uuid,
    name: String,
    phc: Option<String>,
    enabled: bool,
    generation: u64,
    created_at: i64,
    updated_at: i64,
}

fn user_row(r: &AnyRow) -> Result<UserRow, StoreError> {
    let id: String = r.try_get(0)?;
    Ok(UserRow {
        id: parse_uuid(&id, "user id")?,
        name: r.try_get(1)?,
        phc: r.try_get(2)?,
        enabled: r.try_get::<i64, _>(3)? != 0,
        generation: to_u64(r.try_get(4)?, "user generation")?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

impl UserRow {
    fn record(self, groups: Vec<Uuid>) -> DirectoryUserRecord {
        DirectoryUserRecord {
            id: self.id,
            name: self.name,
            groups,
            enabled: self.enabled,
            secrets: self
                .phc
                .map(|phc| StoredSecret {
                    name: USER_PASSWORD.to_string(),
                    phc,
                    expires_at: None,
                })
                .into_iter()
                .collect(),
            generation: self.generation,
        }
    }

    fn info(self, groups: Vec<Uuid>) -> UserInfo {
        UserInfo {
            id: self.id,
            name: self.name,
            enabled: self.enabled,
            has_password: self.phc.is_some(),
            generation: self.generation,
            groups,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl IdentityRepo {
    /// Create an enabled directory user with an argon2id password hash.
    /// The name must pass [`validate_user_name`] and not be taken by a user
    /// or a repository token ([`StoreError::Conflict`]).
    pub async fn create_user(&self, name: &str, password_phc: &str) -> Result<Uuid, StoreError> {
        validate_user_name(name)?;
        validate_phc(password_phc)?;
        let id = Uuid::new_v4();
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        claim_login_name(&mut tx, name, "user").await?;
        sqlx::query(
            "INSERT INTO directory_users (id, name, password_phc, enabled, generation, \
             created_at, updated_at) VALUES ($1, $2, $3, 1, 1, $4, $4)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(password_phc)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || format!("the name {name:?} is already taken")))?;
        tx.commit().await?;
        Ok(id)
    }

    async fn user_row_where(
        &self,
        clause: &'static str,
        key: &str,
    ) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} WHERE {clause} = $1"))
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    /// A directory user by object id, with its groups and password hash.
    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<DirectoryUserRecord>, StoreError> {
        let Some(u) = self.user_row_where("id", &id.to_string()).await? else {
            return Ok(None);
        };
        let groups = self.groups_of(u.id).await?;
        Ok(Some(u.record(groups)))
    }

    /// A directory user by exact name, with its groups and password hash.
    pub async fn user_by_name(
        &self,
        name: &str,
    ) -> Result<Option<DirectoryUserRecord>, StoreError> {
        let Some(u) = self.user_row_where("name", name).await? else {
            return Ok(None);
        };
        let groups = self.groups_of(u.id).await?;
        Ok(Some(u.record(groups)))
    }

    /// A directory user for the management API.
    pub async fn get_user(&self, id: Uuid) -> Result<Option<UserInfo>, StoreError> {
        let Some(u) = self.user_row_where("id", &id.to_string()).await? else {
            return Ok(None);
        };
        let groups = self.groups_of(u.id).await?;
        Ok(Some(u.info(groups)))
    }

    /// Every directory user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        let members = sqlx::query("SELECT user_id, group_id FROM directory_group_members")
            .fetch_all(&self.read)
            .await?;
        let mut pairs = Vec::with_capacity(members.len());
        for m in &members {
            let user: String = m.try_get(0)?;
            let group: String = m.try_get(1)?;
            pairs.push((
                parse_uuid(&user, "member user id")?,
                parse_uuid(&group, "member group id")?,
            ));
        }
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let u = user_row(r)?;
            let mut groups: Vec<Uuid> = pairs
                .iter()
                .filter(|(user, _)| *user == u.id)
                .map(|(_, g)| *g)
                .collect();
            groups.sort();
            out.push(u.info(groups));
        }
        Ok(out)
    }

    /// How many directory users exist.
    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM directory_users")
            .fetch_one(&self.read)
            .await?;
        to_u64(row.try_get(0)?, "user count")
    }

    /// Enable or disable a user. Disabling bumps the generation, so
    /// re-enabling later does not revive tokens minted before.
    pub async fn set_user_enabled(&self, id: Uuid, enabled: bool) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let n =
            sqlx::query("UPDATE directory_users SET enabled = $1, updated_at = $2 WHERE id = $3")
                .bind(flag(enabled))
                .bind(now)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Err(not_found(format!("user {id}")));
        }
        if !enabled {
            bump_generation(&mut tx, "directory_users", "id", &id.to_string(), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Set a user's password (argon2id PHC) and bump the generation:
    /// tokens minted from the old password stop working.
    pub async fn set_user_password(&self, id: Uuid, password_phc: &str) -> Result<(), StoreError> {
        validate_phc(password_phc)?;
        let n = sqlx::query(
            "UPDATE directory_users SET password_phc = $1, generation = generation + 1, \
             updated_at = $2 WHERE id = $3",
        )
        .bind(password_phc)
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_found(format!("user {id}")));
        }
        Ok(())
    }

    /// Revoke every refresh and identity token of a user (log out
    /// everywhere) by bumping its generation. Returns the new generation.
    pub async fn revoke_user_tokens(&self, id: Uuid) -> Result<u64, StoreError> {
        let mut tx = self.write.begin().await?;
        let n =
            bump_generation(&mut tx, "directory_users", "id", &id.to_string(), now_ms()).await?;
        if n == 0 {
            return Err(not_found(format!("user {id}")));
        }
        let row = sqlx::query("SELECT generation FROM directory_users WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        to_u64(row.try_get(0)?, "user generation")
    }

    /// Delete a user with its group memberships and role assignments, and
    /// free its name. Returns whether it existed.
    pub async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let Some(row) = sqlx::query("SELECT name FROM directory_users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let name: String = row.try_get(0)?;
        sqlx::query(
            "DELETE FROM role_assignments WHERE assignee_kind = 'user' AND assignee_id = $1",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM directory_group_members WHERE user_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM directory_users WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        release_login_name(&mut tx, &name).await?;
        tx.commit().await?;
        Ok(true)
    }
}
