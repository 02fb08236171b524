//! Absent references of sparse manifests: what a manifest accepted under
//! [`ManifestValidation`](crate::validation::ManifestValidation)'s sparse
//! setting references without the content being in its repository, so a
//! pull of such a digest can answer that it was never pushed.
//!
//! Written only when a sparse manifest skips a check (never under strict
//! validation) and read only on a pull's 404 path, so neither manifest GET
//! nor strict pushes pay for it.

use berth_core::Digest;
use sqlx::Row;

use crate::error::StoreError;
use crate::meta::MetaStore;
use crate::now_ms;

impl MetaStore {
    /// Remember which of `references` (layers or children of `manifest`)
    /// are not in `repository` now.
    pub async fn record_absent_references(
        &self,
        repository: &str,
        manifest: &Digest,
        references: &[Digest],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.write_pool().begin().await?;
        for digest in references {
            // WHERE on the SELECT also keeps SQLite from reading ON CONFLICT
            // as a join constraint.
            sqlx::query(
                "INSERT INTO absent_references (repository_id, digest, manifest_digest, created_at) \
                 SELECT r.id, $2, $3, $4 FROM repositories r WHERE r.name = $1 \
                 AND NOT EXISTS (SELECT 1 FROM repository_blobs l WHERE l.repository_id = r.id AND l.digest = $2) \
                 AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id AND m.digest = $2) \
                 ON CONFLICT (repository_id, digest, manifest_digest) DO NOTHING",
            )
            .bind(repository)
            .bind(digest.to_string())
            .bind(manifest.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A manifest still in `repository` that was accepted without `digest`
    /// being pushed, if any.
    pub async fn absent_reference_of(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Digest>, StoreError> {
        let row = sqlx::query(
            "SELECT a.manifest_digest FROM absent_references a \
             JOIN repositories r ON r.id = a.repository_id \
             JOIN manifests m ON m.repository_id = a.repository_id AND m.digest = a.manifest_digest \
             WHERE r.name = $1 AND a.digest = $2 ORDER BY a.created_at LIMIT 1",
        )
        .bind(repository)
        .bind(digest.to_string())
        .fetch_optional(self.read_pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let raw: String = row.try_get(0)?;
        let parsed = raw
            .parse::<Digest>()
            .map_err(|e| anyhow::anyhow!("stored digest {raw} is invalid: {e}"))?;
        Ok(Some(parsed))
    }
}

impl crate::registry::Registry {
    /// For a pull of `digest` that found nothing in `repo`: the sparse
    /// manifest of `repo` that references it without it ever having been
    /// pushed, if there is one.
    pub async fn sparse_referrer_of(
        &self,
        repo: &berth_core::RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Digest>, StoreError> {
        self.meta().absent_reference_of(repo.as_str(), digest).await
    }
}
