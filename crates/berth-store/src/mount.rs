//! A mount that names no source repository (`POST
//! /v2/<name>/blobs/uploads/?mount=<digest>` without `from`): link the blob
//! from some repository that holds it and that the caller may read.

use berth_core::{Digest, RepositoryName};
use sqlx::Row;

use crate::error::StoreError;
use crate::meta::MetaStore;
use crate::registry::Registry;

/// Most repositories a mount without `from` considers as its source (the
/// first ones by name; past them the mount falls back to an upload).
pub const MOUNT_CANDIDATES: i64 = 1000;

impl MetaStore {
    /// Repositories a blob is linked to, by name, at most `limit`.
    pub async fn repositories_holding(
        &self,
        digest: &Digest,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.name FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id \
             WHERE l.digest = $1 ORDER BY r.name LIMIT $2",
        )
        .bind(digest.to_string())
        .bind(limit)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }
}

impl Registry {
    /// Link `digest` into `repo` from the first repository holding it for
    /// which `may_pull` says yes (`repo` itself included). Returns whether
    /// it was mounted; a blob only unreadable repositories hold is not.
    pub async fn mount_from_readable(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        may_pull: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<bool, StoreError> {
        let holders = self
            .meta()
            .repositories_holding(digest, MOUNT_CANDIDATES)
            .await?;
        if holders.iter().any(|h| h == repo.as_str()) {
            return Ok(true);
        }
        for holder in holders.iter().filter(|h| may_pull(h)) {
            let Ok(from) = holder.parse::<RepositoryName>() else {
                continue;
            };
            if self.mount_blob(repo, &from, digest).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
