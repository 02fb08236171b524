//! What the web portal (`/ui/`) keeps and reads besides the management
//! API's data: sign-in sessions (`migrations/*/0010_portal_sessions.sql`)
//! and the repository overview (tag counts, sizes, last push).
//!
//! Sessions live in the metadata database so that every replica sharing it
//! knows them. A session row is keyed by the SHA-256 of the cookie's token;
//! the token itself is never stored.

use sqlx::{AnyPool, Row};

use crate::error::StoreError;
use crate::meta::MetaStore;

/// A stored portal session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// SHA-256 (hex) of the cookie token.
    pub id: String,
    /// The signed-in principal (`user:<uuid>`, `sp:<uuid>`).
    pub principal: String,
    /// The identity's credential generation at sign-in: a later password
    /// change or secret reset ends the session.
    pub generation: u64,
    /// The session's CSRF token (every form carries it).
    pub csrf: String,
    /// Sign-in time, unix ms.
    pub created_at: i64,
    /// Last request, unix ms (updated at most once a minute).
    pub last_seen_at: i64,
    /// Hard end, unix ms.
    pub expires_at: i64,
}

/// One repository in the portal's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySummary {
    /// Repository name.
    pub name: String,
    /// Number of tags.
    pub tags: i64,
    /// Number of manifests.
    pub manifests: i64,
    /// Bytes of the blobs linked to it plus its manifests.
    pub size: i64,
    /// Newest manifest push or tag move, unix ms (0: never).
    pub last_push: i64,
}

/// Portal sessions and overview queries over the metadata database.
#[derive(Debug, Clone)]
pub struct PortalStore {
    read: AnyPool,
    write: AnyPool,
}

impl PortalStore {
    /// The portal tables of `meta`'s database.
    pub fn new(meta: &MetaStore) -> Self {
        PortalStore {
            read: meta.read_pool().clone(),
            write: meta.write_pool().clone(),
        }
    }

    /// Store a new session.
    pub async fn create_session(&self, s: &PortalSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO portal_sessions (id, principal, generation, csrf, created_at, \
             last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(s.id.clone())
        .bind(s.principal.clone())
        .bind(i64::try_from(s.generation).unwrap_or(i64::MAX))
        .bind(s.csrf.clone())
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The session with `id`, if it exists (expired or not).
    pub async fn session(&self, id: &str) -> Result<Option<PortalSession>, StoreError> {
        let row = sqlx::query(
            "SELECT id, principal, generation, csrf, created_at, last_seen_at, expires_at \
             FROM portal_sessions WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(PortalSession {
            id: r.try_get(0)?,
            principal: r.try_get(1)?,
            generation: u64::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
            csrf: r.try_get(3)?,
            created_at: r.try_get(4)?,
            last_seen_at: r.try_get(5)?,
            expires_at: r.try_get(6)?,
        }))
    }

    /// Record activity on a session.
    pub async fn touch_session(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id.to_string())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// End a session (sign-out). Returns whether it existed.
    pub async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM portal_sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Delete sessions that ended before `now_ms` or were idle since
    /// `idle_before_ms`. Returns how many.
    pub async fn purge_sessions(
        &self,
        now_ms: i64,
        idle_before_ms: i64,
    ) -> Result<u64, StoreError> {
        let r =
            sqlx::query("DELETE FROM portal_sessions WHERE expires_at < $1 OR last_seen_at < $2")
                .bind(now_ms)
                .bind(idle_before_ms)
                .execute(&self.write)
                .await?;
        Ok(r.rows_affected())
    }

    /// Every repository with its tag and manifest counts, size and last
    /// push, by name; `filter` keeps names containing it (case-insensitive).
    pub async fn repository_summaries(
        &self,
        filter: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepositorySummary>, StoreError> {
        let pattern = filter
            .filter(|f| !f.is_empty())
            .map(|f| format!("%{}%", escape_like(&f.to_lowercase())));
        let rows = sqlx::query(
            "SELECT r.name, \
               (SELECT COUNT(*) FROM tags t WHERE t.repository_id = r.id), \
               (SELECT COUNT(*) FROM manifests m WHERE m.repository_id = r.id), \
               CAST((SELECT COALESCE(SUM(b.size), 0) FROM repository_blobs rb \
                  JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = r.id) \
               + (SELECT COALESCE(SUM(m.size), 0) FROM manifests m WHERE m.repository_id = r.id) \
               AS BIGINT), \
               (SELECT COALESCE(MAX(m.created_at), 0) FROM manifests m WHERE m.repository_id = r.id), \
               (SELECT COALESCE(MAX(t.updated_at), 0) FROM tags t WHERE t.repository_id = r.id) \
             FROM repositories r \
             WHERE ($1 IS NULL OR LOWER(r.name) LIKE $1 ESCAPE '\\') \
             ORDER BY r.name LIMIT $2",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| -> Result<RepositorySummary, StoreError> {
                let pushed: i64 = r.try_get(4)?;
                let moved: i64 = r.try_get(5)?;
                Ok(RepositorySummary {
                    name: r.try_get(0)?,
                    tags: r.try_get(1)?,
                    manifests: r.try_get(2)?,
                    size: r.try_get(3)?,
                    last_push: pushed.max(moved),
                })
            })
            .collect()
    }
}

/// Escape `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
    }
}
