//! Service principals and their client secrets.

use berth_auth::credential::{ServicePrincipalRecord, StoredSecret};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::users::validate_phc;
use super::{
    bump_generation, flag, not_found, opt_to_i64, opt_to_u64, parse_uuid, to_u64, unique_or,
    validate_display_name, IdentityRepo, SecretInfo,
};
use crate::error::StoreError;
use crate::now_ms;

/// A service principal as the management API shows it (no secret hashes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePrincipalInfo {
    /// App id (the Basic username).
    pub app_id: Uuid,
    /// Unique display name.
    pub name: String,
    /// Enabled?
    pub enabled: bool,
    /// Credential generation.
    pub generation: u64,
    /// Client secrets (name = secret id), oldest first.
    pub secrets: Vec<SecretInfo>,
    /// Created, unix milliseconds.
    pub created_at: i64,
    /// Last changed, unix milliseconds.
    pub updated_at: i64,
}

struct SecretRow {
    id: String,
    phc: String,
    expires_at: Option<u64>,
    created_at: i64,
}

fn secret_row(r: &AnyRow) -> Result<SecretRow, StoreError> {
    Ok(SecretRow {
        id: r.try_get(0)?,
        phc: r.try_get(1)?,
        expires_at: opt_to_u64(r.try_get(2)?, "secret expiry")?,
        created_at: r.try_get(3)?,
    })
}

const SP_COLUMNS: &str =
    "app_id, name, enabled, generation, created_at, updated_at FROM service_principals";

fn sp_info(r: &AnyRow, secrets: Vec<SecretRow>) -> Result<ServicePrincipalInfo, StoreError> {
    let app_id: String = r.try_get(0)?;
    Ok(ServicePrincipalInfo {
        app_id: parse_uuid(&app_id, "app id")?,
        name: r.try_get(1)?,
        enabled: r.try_get::<i64, _>(2)? != 0,
        generation: to_u64(r.try_get(3)?, "service principal generation")?,
        secrets: secrets
            .into_iter()
            .map(|s| SecretInfo {
                name: s.id,
                expires_at: s.expires_at,
                created_at: s.created_at,
            })
            .collect(),
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
    })
}

impl IdentityRepo {
    async fn sp_secrets(&self, app_id: &str) -> Result<Vec<SecretRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, phc, expires_at, created_at FROM service_principal_secrets \
             WHERE app_id = $1 ORDER BY created_at, id",
        )
        .bind(app_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(secret_row).collect()
    }

    /// The record berth-auth verifies logins against.
    pub(super) async fn load_service_principal_record(
        &self,
        app_id: Uuid,
    ) -> Result<Option<ServicePrincipalRecord>, StoreError> {
        let Some(info) = self.get_service_principal(app_id).await? else {
            return Ok(None);
        };
        let secrets = self
            .sp_secrets(&app_id.to_string())
            .await?
            .into_iter()
            .map(|s| StoredSecret {
                name: s.id,
                phc: s.phc,
                expires_at: s.expires_at,
            })
            .collect();
        Ok(Some(ServicePrincipalRecord {
            app_id: info.app_id,
            name: info.name,
            enabled: info.enabled,
            secrets,
            generation: info.generation,
        }))
    }

    /// Create an enabled service principal without secrets; returns its
    /// app id. Names are unique among service principals.
    pub async fn create_service_principal(&self, name: &str) -> Result<Uuid, StoreError> {
        validate_display_name("service principal", name)?;
        let app_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO service_principals (app_id, name, enabled, generation, created_at, \
             updated_at) VALUES ($1, $2, 1, 1, $3, $3)",
        )
        .bind(app_id.to_string())
        .bind(name)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .map_err(|e| unique_or(e, || format!("a service principal named {name:?} exists")))?;
        Ok(app_id)
    }

    /// Every service principal, by name.
    pub async fn list_service_principals(&self) -> Result<Vec<ServicePrincipalInfo>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {SP_COLUMNS} ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let app_id: String = r.try_get(0)?;
            let secrets = self.sp_secrets(&app_id).await?;
            out.push(sp_info(r, secrets)?);
        }
        Ok(out)
    }

    /// One service principal for the management API.
    pub async fn get_service_principal(
        &self,
        app_id: Uuid,
    ) -> Result<Option<ServicePrincipalInfo>, StoreError> {
        let Some(r) = sqlx::query(&format!("SELECT {SP_COLUMNS} WHERE app_id = $1"))
            .bind(app_id.to_string())
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        let secrets = self.sp_secrets(&app_id.to_string()).await?;
        sp_info(&r, secrets).map(Some)
    }

    /// Delete a service principal with its secrets and role assignments.
    /// Returns whether it existed.
    pub async fn delete_service_principal(&self, app_id: Uuid) -> Result<bool, StoreError> {
        let id = app_id.to_string();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM role_assignments WHERE assignee_kind = 'service_principal' \
             AND assignee_id = $1",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM service_principal_secrets WHERE app_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM service_principals WHERE app_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Enable or disable a service principal. Disabling bumps the
    /// generation, so re-enabling does not revive older tokens.
    pub async fn set_service_principal_enabled(
        &self,
        app_id: Uuid,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let id = app_id.to_string();
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE service_principals SET enabled = $1, updated_at = $2 WHERE app_id = $3",
        )
        .bind(flag(enabled))
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(not_found(format!("service principal {app_id}")));
        }
        if !enabled {
            bump_generation(&mut tx, "service_principals", "app_id", &id, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Add a client secret (argon2id PHC; `expires_at` in unix seconds, the
    /// reference's default validity is one year). Returns the secret's id.
    /// Adding does not revoke anything.
    pub async fn add_service_principal_secret(
        &self,
        app_id: Uuid,
        phc: &str,
        expires_at: Option<u64>,
    ) -> Result<Uuid, StoreError> {
        validate_phc(phc)?;
        let expires = opt_to_i64(expires_at, "expires_at")?;
        let secret_id = Uuid::new_v4();
        let mut tx = self.write.begin().await?;
        let found = sqlx::query("SELECT 1 FROM service_principals WHERE app_id = $1")
            .bind(app_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(not_found(format!("service principal {app_id}")));
        }
        sqlx::query(
            "INSERT INTO service_principal_secrets (id, app_id, phc, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(secret_id.to_string())
        .bind(app_id.to_string())
        .bind(phc)
        .bind(expires)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(secret_id)
    }

    /// Remove one client secret and bump the generation (tokens minted
    /// with it stop working). Returns whether it existed.
    pub async fn remove_service_principal_secret(
        &self,
        app_id: Uuid,
        secret_id: Uuid,
    ) -> Result<bool, StoreError> {
        let id = app_id.to_string();
        let mut tx = self.write.begin().await?;
        let n = sqlx::query("DELETE FROM service_principal_secrets WHERE app_id = $1 AND id = $2")
            .bind(&id)
            .bind(secret_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            bump_generation(&mut tx, "service_principals", "app_id", &id, now_ms()).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Remove every client secret of a service principal and bump its
    /// generation. Returns how many were removed;
    /// [`StoreError::NotFound`] if the principal does not exist.
    pub async fn remove_all_service_principal_secrets(
        &self,
        app_id: Uuid,
    ) -> Result<u64, StoreError> {
        let id = app_id.to_string();
        let mut tx = self.write.begin().await?;
        let n = sqlx::query("DELETE FROM service_principal_secrets WHERE app_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let found = bump_generation(&mut tx, "service_principals", "app_id", &id, now_ms()).await?;
        if found == 0 {
            return Err(not_found(format!("service principal {app_id}")));
        }
        tx.commit().await?;
        Ok(n)
    }
}
