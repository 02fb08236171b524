//! Insufficient-scope strikes shared by replicas (see the `token_strikes`
//! table): whether a token was already told to fetch a new token for a
//! scope, on any replica.

use sqlx::Row;

use super::IdentityRepo;
use crate::error::StoreError;
use crate::meta::Backend;

impl IdentityRepo {
    /// Whether strikes must be shared (several replicas on PostgreSQL).
    pub fn shares_strikes(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Record that token `jti` was told (at unix second `now`) to fetch a
    /// token for `scope`; returns whether it had been told so within
    /// `ttl_secs` already, by any replica. Strikes older than that are
    /// removed on the way.
    pub async fn strike_token(
        &self,
        jti: &str,
        scope: &str,
        now: u64,
        ttl_secs: u64,
    ) -> Result<bool, StoreError> {
        let now = now as i64;
        let oldest = now - ttl_secs as i64;
        sqlx::query("DELETE FROM token_strikes WHERE struck_at < $1")
            .bind(oldest)
            .execute(&self.write)
            .await?;
        let prior: Option<i64> =
            sqlx::query("SELECT struck_at FROM token_strikes WHERE jti = $1 AND scope = $2")
                .bind(jti)
                .bind(scope)
                .fetch_optional(&self.write)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        sqlx::query(
            "INSERT INTO token_strikes (jti, scope, struck_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti, scope) DO UPDATE SET struck_at = EXCLUDED.struck_at",
        )
        .bind(jti)
        .bind(scope)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(prior.is_some_and(|t| t >= oldest))
    }
}
