//! The admin account: one row, disabled and without passwords until
//! configured.

use berth_auth::credential::{AdminAccount, StoredSecret};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::users::validate_phc;
use super::{flag, password_slot, to_u64, IdentityRepo, SecretInfo};
use crate::error::StoreError;
use crate::now_ms;

/// The admin account as the management API shows it (no hashes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminInfo {
    /// Enabled? (off by default)
    pub enabled: bool,
    /// Credential generation.
    pub generation: u64,
    /// The passwords that are set (`password1`, `password2`).
    pub passwords: Vec<SecretInfo>,
    /// Last changed, unix milliseconds (0: never).
    pub updated_at: i64,
}

struct AdminRow {
    enabled: bool,
    generation: u64,
    /// (slot name, phc, created_at)
    passwords: Vec<(&'static str, String, i64)>,
    updated_at: i64,
}

fn admin_row(r: &AnyRow) -> Result<AdminRow, StoreError> {
    let mut passwords = Vec::new();
    for (slot, phc_col, at_col) in [("password1", 1, 2), ("password2", 3, 4)] {
        if let Some(phc) = r.try_get::<Option<String>, _>(phc_col)? {
            let at: Option<i64> = r.try_get(at_col)?;
            passwords.push((slot, phc, at.unwrap_or(0)));
        }
    }
    Ok(AdminRow {
        enabled: r.try_get::<i64, _>(0)? != 0,
        passwords,
        generation: to_u64(r.try_get(5)?, "admin generation")?,
        updated_at: r.try_get(6)?,
    })
}

impl IdentityRepo {
    async fn admin_row(&self) -> Result<AdminRow, StoreError> {
        let row = sqlx::query(
            "SELECT enabled, password1_phc, password1_created_at, password2_phc, \
             password2_created_at, generation, updated_at FROM admin_account WHERE id = 1",
        )
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(r) => admin_row(&r),
            None => Ok(AdminRow {
                enabled: false,
                generation: 1,
                passwords: Vec::new(),
                updated_at: 0,
            }),
        }
    }

    /// The record berth-auth verifies admin logins against.
    pub(super) async fn load_admin_account(&self) -> Result<AdminAccount, StoreError> {
        let a = self.admin_row().await?;
        Ok(AdminAccount {
            enabled: a.enabled,
            secrets: a
                .passwords
                .into_iter()
                .map(|(slot, phc, _)| StoredSecret {
                    name: slot.to_string(),
                    phc,
                    expires_at: None,
                })
                .collect(),
            generation: a.generation,
        })
    }

    /// The admin account for the management API.
    pub async fn get_admin(&self) -> Result<AdminInfo, StoreError> {
        let a = self.admin_row().await?;
        Ok(AdminInfo {
            enabled: a.enabled,
            generation: a.generation,
            passwords: a
                .passwords
                .into_iter()
                .map(|(slot, _, at)| SecretInfo {
                    name: slot.to_string(),
                    expires_at: None,
                    created_at: at,
                })
                .collect(),
            updated_at: a.updated_at,
        })
    }

    async fn update_admin(&self, set: &str, binds: AdminBinds<'_>) -> Result<(), StoreError> {
        let now = now_ms();
        // The row is created by the migration; recreate it if it was lost.
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO admin_account (id, enabled, generation, updated_at) VALUES (1, 0, 1, $1) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let q = format!("UPDATE admin_account SET {set}, updated_at = $1 WHERE id = 1");
        let q = sqlx::query(&q).bind(now);
        let q = match binds {
            AdminBinds::Flag(v) => q.bind(v),
            AdminBinds::Phc(phc) => q.bind(phc),
            AdminBinds::None => q,
        };
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enable or disable the admin account. Disabling bumps the generation.
    pub async fn set_admin_enabled(&self, enabled: bool) -> Result<(), StoreError> {
        let set = if enabled {
            "enabled = $2"
        } else {
            "enabled = $2, generation = generation + 1"
        };
        self.update_admin(set, AdminBinds::Flag(flag(enabled)))
            .await
    }

    /// Set (regenerate) admin password `which` (1 or 2) to an argon2id PHC
    /// and bump the generation: tokens minted from the old password stop.
    pub async fn set_admin_password(&self, which: u8, phc: &str) -> Result<(), StoreError> {
        let slot = password_slot(which)?;
        validate_phc(phc)?;
        let set = format!("{slot}_phc = $2, {slot}_created_at = $1, generation = generation + 1");
        self.update_admin(&set, AdminBinds::Phc(phc)).await
    }

    /// Remove admin password `which` (1 or 2) and bump the generation.
    pub async fn remove_admin_password(&self, which: u8) -> Result<(), StoreError> {
        let slot = password_slot(which)?;
        let set =
            format!("{slot}_phc = NULL, {slot}_created_at = NULL, generation = generation + 1");
        self.update_admin(&set, AdminBinds::None).await
    }
}

enum AdminBinds<'a> {
    Flag(i64),
    Phc(&'a str),
    None,
}
