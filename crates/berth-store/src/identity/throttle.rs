//! Failed-login counters in the metadata database, so every replica that
//! shares it throttles on the same numbers (`migrations/*/0008_login_throttle.sql`).
//!
//! Only failures write: [`IdentityRepo::record_login_failures`] counts one
//! failure against each key in one transaction and answers each key's
//! window as it now stands, which the server keeps in memory to decide
//! without a database read.

use sqlx::Row;

use super::IdentityRepo;
use crate::error::StoreError;

/// A key's fixed window as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleWindow {
    /// Start of the window, unix milliseconds.
    pub start_ms: i64,
    /// Failures counted in it.
    pub failures: i64,
}

impl IdentityRepo {
    /// Count one failed login against every key (a window that ended
    /// `window_ms` after its start restarts at `now_ms`). Returns each
    /// key's window after the update, in the order of `keys`.
    pub async fn record_login_failures(
        &self,
        keys: &[String],
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Vec<ThrottleWindow>, StoreError> {
        let mut tx = self.write.begin().await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let row = sqlx::query(
                "INSERT INTO login_throttle (key, window_start, failures) VALUES ($1, $2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN login_throttle.window_start + $3 <= $2 THEN 1 \
                                   ELSE login_throttle.failures + 1 END, \
                   window_start = CASE WHEN login_throttle.window_start + $3 <= $2 THEN $2 \
                                       ELSE login_throttle.window_start END \
                 RETURNING window_start, failures",
            )
            .bind(key)
            .bind(now_ms)
            .bind(window_ms)
            .fetch_one(&mut *tx)
            .await?;
            out.push(ThrottleWindow {
                start_ms: row.try_get(0)?,
                failures: row.try_get(1)?,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Delete windows that started before `before_ms`; returns how many.
    pub async fn prune_login_throttle(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM login_throttle WHERE window_start < $1")
                .bind(before_ms)
                .execute(&self.write)
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::MetaStore;

    #[tokio::test]
    async fn counts_restart_and_prune() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open_sqlite(&dir.path().join("meta.db"))
            .await
            .expect("open");
        let repo = IdentityRepo::new(&meta);
        let keys = vec!["a:10.0.0.1".to_string(), "u:bob".to_string()];
        let w = repo
            .record_login_failures(&keys, 1_000, 60_000)
            .await
            .expect("1");
        assert_eq!(
            w[0],
            ThrottleWindow {
                start_ms: 1_000,
                failures: 1
            }
        );
        let w = repo
            .record_login_failures(&keys, 2_000, 60_000)
            .await
            .expect("2");
        assert_eq!(
            w[1],
            ThrottleWindow {
                start_ms: 1_000,
                failures: 2
            }
        );
        // The window ended: it restarts at the new time.
        let w = repo
            .record_login_failures(&keys[..1], 61_000, 60_000)
            .await
            .expect("3");
        assert_eq!(
            w[0],
            ThrottleWindow {
                start_ms: 61_000,
                failures: 1
            }
        );
        assert_eq!(repo.prune_login_throttle(2_000).await.expect("prune"), 1);
    }
}
