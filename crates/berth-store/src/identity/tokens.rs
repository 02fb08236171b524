//! Repository-scoped tokens.

use berth_auth::credential::{RepositoryTokenRecord, StoredSecret};
use berth_auth::scope_map::validate_token_name;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::users::{claim_login_name, release_login_name, validate_phc};
use super::{
    bump_generation, flag, invalid, not_found, opt_to_i64, opt_to_u64, password_slot, to_u64,
    unique_or, IdentityRepo, SecretInfo, Tx,
};
use crate::error::StoreError;
use crate::now_ms;

/// A repository token as the management API shows it (no hashes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Name (the Basic username).
    pub name: String,
    /// Its scope map.
    pub scope_map: String,
    /// Enabled?
    pub enabled: bool,
    /// Credential generation.
    pub generation: u64,
    /// The passwords that are set (`password1`, `password2`).
    pub passwords: Vec<SecretInfo>,
    /// Created, unix milliseconds.
    pub created_at: i64,
    /// Last changed, unix milliseconds.
    pub updated_at: i64,
}

const COLUMNS: &str = "name, scope_map, enabled, generation, created_at, updated_at, \
     password1_phc, password1_expires_at, password1_created_at, \
     password2_phc, password2_expires_at, password2_created_at FROM repository_tokens";

struct TokenRow {
    info: TokenInfo,
    phcs: Vec<String>,
}

fn token_row(r: &AnyRow) -> Result<TokenRow, StoreError> {
    let mut passwords = Vec::new();
    let mut phcs = Vec::new();
    for (slot, base) in [("password1", 6), ("password2", 9)] {
        if let Some(phc) = r.try_get::<Option<String>, _>(base)? {
            passwords.push(SecretInfo {
                name: slot.to_string(),
                expires_at: opt_to_u64(r.try_get(base + 1)?, "token password expiry")?,
                created_at: r.try_get::<Option<i64>, _>(base + 2)?.unwrap_or(0),
            });
            phcs.push(phc);
        }
    }
    Ok(TokenRow {
        info: TokenInfo {
            name: r.try_get(0)?,
            scope_map: r.try_get(1)?,
            enabled: r.try_get::<i64, _>(2)? != 0,
            generation: to_u64(r.try_get(3)?, "token generation")?,
            passwords,
            created_at: r.try_get(4)?,
            updated_at: r.try_get(5)?,
        },
        phcs,
    })
}

async fn require_scope_map(tx: &mut Tx<'_>, scope_map: &str) -> Result<(), StoreError> {
    let found = sqlx::query("SELECT 1 FROM scope_maps WHERE name = $1")
        .bind(scope_map)
        .fetch_optional(&mut **tx)
        .await?;
    if found.is_none() {
        return Err(not_found(format!("unknown scope map {scope_map:?}")));
    }
    Ok(())
}

impl IdentityRepo {
    async fn token_row(&self, name: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    /// The record berth-auth verifies token logins against.
    pub(super) async fn load_token_record(
        &self,
        name: &str,
    ) -> Result<Option<RepositoryTokenRecord>, StoreError> {
        let Some(t) = self.token_row(name).await? else {
            return Ok(None);
        };
        let secrets = t
            .info
            .passwords
            .into_iter()
            .zip(t.phcs)
            .map(|(s, phc)| StoredSecret {
                name: s.name,
                phc,
                expires_at: s.expires_at,
            })
            .collect();
        Ok(Some(RepositoryTokenRecord {
            name: t.info.name,
            scope_map: t.info.scope_map,
            enabled: t.info.enabled,
            secrets,
            generation: t.info.generation,
        }))
    }

    /// Create an enabled token without passwords (set them with
    /// [`IdentityRepo::set_token_password`]). The name must be 5–50
    /// characters of `[a-zA-Z0-9-]` and not taken by a token or a user
    /// ([`StoreError::Conflict`]); the scope map must exist
    /// ([`StoreError::Invalid`] otherwise). The caller also refuses the
    /// registry's own name (it logs in as the admin account).
    pub async fn create_token(&self, name: &str, scope_map: &str) -> Result<(), StoreError> {
        validate_token_name(name, "").map_err(|e| invalid(e.to_string()))?;
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        require_scope_map(&mut tx, scope_map).await?;
        claim_login_name(&mut tx, name, "token").await?;
        sqlx::query(
            "INSERT INTO repository_tokens (name, scope_map, enabled, generation, created_at, \
             updated_at) VALUES ($1, $2, 1, 1, $3, $3)",
        )
        .bind(name)
        .bind(scope_map)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || format!("the name {name:?} is already taken")))?;
        tx.commit().await?;
        Ok(())
    }

    /// One token for the management API.
    pub async fn get_token(&self, name: &str) -> Result<Option<TokenInfo>, StoreError> {
        Ok(self.token_row(name).await?.map(|t| t.info))
    }

    /// Every token, by name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| token_row(r).map(|t| t.info)).collect()
    }

    /// Enable or disable a token. Disabling bumps the generation.
    pub async fn set_token_enabled(&self, name: &str, enabled: bool) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE repository_tokens SET enabled = $1, updated_at = $2 WHERE name = $3",
        )
        .bind(flag(enabled))
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_found(format!("token {name:?}")));
        }
        if !enabled {
            bump_generation(&mut tx, "repository_tokens", "name", name, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Move a token to another (existing) scope map. Takes effect at the
    /// token's next authorization; no credential changes.
    pub async fn set_token_scope_map(&self, name: &str, scope_map: &str) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        require_scope_map(&mut tx, scope_map).await?;
        let n = sqlx::query(
            "UPDATE repository_tokens SET scope_map = $1, updated_at = $2 WHERE name = $3",
        )
        .bind(scope_map)
        .bind(now_ms())
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_found(format!("token {name:?}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Set (regenerate) password `which` (1 or 2) of a token to an argon2id
    /// PHC with an optional expiry (unix seconds), and bump the generation.
    pub async fn set_token_password(
        &self,
        name: &str,
        which: u8,
        phc: &str,
        expires_at: Option<u64>,
    ) -> Result<(), StoreError> {
        let slot = password_slot(which)?;
        validate_phc(phc)?;
        let expires = opt_to_i64(expires_at, "expires_at")?;
        let n = sqlx::query(&format!(
            "UPDATE repository_tokens SET {slot}_phc = $1, {slot}_expires_at = $2, \
             {slot}_created_at = $3, updated_at = $3, generation = generation + 1 WHERE name = $4"
        ))
        .bind(phc)
        .bind(expires)
        .bind(now_ms())
        .bind(name)
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_found(format!("token {name:?}")));
        }
        Ok(())
    }

    /// Remove password `which` (1 or 2) of a token and bump the generation.
    pub async fn remove_token_password(&self, name: &str, which: u8) -> Result<(), StoreError> {
        let slot = password_slot(which)?;
        let n = sqlx::query(&format!(
            "UPDATE repository_tokens SET {slot}_phc = NULL, {slot}_expires_at = NULL, \
             {slot}_created_at = NULL, updated_at = $1, generation = generation + 1 WHERE name = $2"
        ))
        .bind(now_ms())
        .bind(name)
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_found(format!("token {name:?}")));
        }
        Ok(())
    }

    /// Delete a token and free its name. Returns whether it existed.
    pub async fn delete_token(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query("DELETE FROM repository_tokens WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            release_login_name(&mut tx, name).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }
}
