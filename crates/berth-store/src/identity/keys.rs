//! Token signing keys, shared through the database so that every replica
//! verifies every token.

use std::collections::HashMap;

use berth_auth::jwt::StoredKey;
use sqlx::Row;

use super::{flag, opt_to_i64, opt_to_u64, unique_or, IdentityRepo, Tx};
use crate::error::StoreError;
use crate::meta::Backend;
use crate::now_ms;

impl IdentityRepo {
    /// Every stored key: the active key first, then the retired ones,
    /// oldest first. Empty on a new registry.
    pub async fn load_signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, pkcs8_pem, active, retire_after FROM signing_keys \
             ORDER BY active DESC, created_at, kid",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: r.try_get(0)?,
                    pkcs8_pem: r.try_get(1)?,
                    active: r.try_get::<i64, _>(2)? != 0,
                    retire_after: opt_to_u64(r.try_get(3)?, "key retire_after")?,
                })
            })
            .collect()
    }

    /// The stored keys, or — on a new registry — `generate()`'s keys,
    /// stored first. Replicas starting together on one PostgreSQL database
    /// agree on one key set: the first to take the table lock stores its
    /// keys and the others read them.
    pub async fn load_or_init_signing_keys(
        &self,
        generate: impl FnOnce() -> Result<Vec<StoredKey>, StoreError>,
    ) -> Result<(Vec<StoredKey>, bool), StoreError> {
        let existing = self.load_signing_keys().await?;
        if !existing.is_empty() {
            return Ok((existing, false));
        }
        let mut tx = self.write.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE signing_keys IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM signing_keys")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if count > 0 {
            tx.rollback().await?;
            return Ok((self.load_signing_keys().await?, false));
        }
        let keys = generate()?;
        insert_keys(&mut tx, &keys, &HashMap::new(), now_ms()).await?;
        tx.commit().await?;
        Ok((keys, true))
    }

    /// Replace every stored key with `keys` (a `KeySet::export`) in one
    /// transaction. Keys that were already stored keep their creation time.
    pub async fn save_signing_keys(&self, keys: &[StoredKey]) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let mut created: HashMap<String, i64> = HashMap::new();
        for r in sqlx::query("SELECT kid, created_at FROM signing_keys")
            .fetch_all(&mut *tx)
            .await?
        {
            created.insert(r.try_get(0)?, r.try_get(1)?);
        }
        sqlx::query("DELETE FROM signing_keys")
            .execute(&mut *tx)
            .await?;
        insert_keys(&mut tx, keys, &created, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Insert `keys`, keeping the creation times in `created`.
async fn insert_keys(
    tx: &mut Tx<'_>,
    keys: &[StoredKey],
    created: &HashMap<String, i64>,
    now: i64,
) -> Result<(), StoreError> {
    for k in keys {
        sqlx::query(
            "INSERT INTO signing_keys (kid, pkcs8_pem, active, created_at, retire_after) \
                 VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.kid)
        .bind(&k.pkcs8_pem)
        .bind(flag(k.active))
        .bind(created.get(&k.kid).copied().unwrap_or(now))
        .bind(opt_to_i64(k.retire_after, "retire_after")?)
        .execute(&mut **tx)
        .await
        .map_err(|e| unique_or(e, || format!("key {} appears twice", k.kid)))?;
    }
    Ok(())
}
