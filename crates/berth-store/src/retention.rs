//! Deleting untagged manifests: the rule the collector's retention phase
//! and `berth repository purge` share (docs/architecture.md, "Retention and
//! purge").
//!
//! An untagged manifest `m` (one whose `untagged_at` is set) may be deleted
//! when it has been untagged since before the cutoff and none of these
//! holds:
//!
//! 1. a tag points at it (re-checked inside the deleting statement);
//! 2. an index of its repository lists it (`manifest_children`);
//! 3. a referrer of it (a manifest whose `subject` is `m`) is tagged;
//! 4. it is itself a referrer and its subject is still in the repository
//!    (signatures, SBOMs and attestations stay as long as their image);
//! 5. its repository still has a manifest whose references are not yet
//!    recorded (what that one lists is unknown).
//!
//! Deleting `m` can free what it protected (the children of an index, the
//! referrers of a subject); the collector repeats the pass until nothing
//! more goes.
//!
//! The deleting statement carries the whole condition, so it is decided
//! against the committed state while the row is held: a PUT that tags `m`
//! (or pushes it again) updates the row, and on PostgreSQL the DELETE then
//! re-checks `untagged_at` and keeps it; on SQLite the two take turns at
//! the single writer. An index pushed meanwhile that lists `m` makes the
//! DELETE fail on `manifest_children`'s foreign key, and `m` stays.

use sqlx::Row;

use crate::meta::{is_foreign_key_violation, is_retryable, MetaStore};

/// One manifest that may be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expired {
    /// Repository id.
    pub repository_id: i64,
    /// Repository name.
    pub repository: String,
    /// Manifest digest.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: u64,
    /// When it lost its last tag (unix ms).
    pub untagged_at: i64,
    /// The manifest it refers to, when it is a referrer.
    pub subject: Option<String>,
}

/// The condition for manifest alias `x` (with the cutoff as `$1`).
fn deletable(x: &str) -> String {
    format!(
        "{x}.untagged_at IS NOT NULL AND {x}.untagged_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = {x}.repository_id \
         AND t.digest = {x}.digest) \
         AND NOT EXISTS (SELECT 1 FROM manifest_children c \
         WHERE c.repository_id = {x}.repository_id AND c.child_digest = {x}.digest) \
         AND NOT EXISTS (SELECT 1 FROM manifests rf JOIN tags rt ON rt.repository_id = \
         rf.repository_id AND rt.digest = rf.digest WHERE rf.repository_id = {x}.repository_id \
         AND rf.subject = {x}.digest) \
         AND ({x}.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s \
         WHERE s.repository_id = {x}.repository_id AND s.digest = {x}.subject)) \
         AND NOT EXISTS (SELECT 1 FROM manifests u WHERE u.repository_id = {x}.repository_id \
         AND u.refs_recorded = 0)"
    )
}

/// Manifests untagged since before `cutoff` (unix ms) that may be deleted,
/// in every repository or in `repository_id` alone, in (repository,
/// digest) order.
pub(crate) async fn expired(
    meta: &MetaStore,
    cutoff: i64,
    repository_id: Option<i64>,
) -> Result<Vec<Expired>, sqlx::Error> {
    let scope = if repository_id.is_some() {
        " AND m.repository_id = $2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT m.repository_id, r.name, m.digest, m.size, m.untagged_at, m.subject \
         FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE {}{scope} \
         ORDER BY m.repository_id, m.digest",
        deletable("m")
    );
    let mut q = sqlx::query(&sql).bind(cutoff);
    if let Some(id) = repository_id {
        q = q.bind(id);
    }
    let rows = q.fetch_all(meta.read_pool()).await?;
    rows.iter().map(expired_row).collect()
}

/// Delete those of `batch` that may still be deleted, in one transaction;
/// those deleted. A batch that fails on a concurrent index or a deadlock
/// (PostgreSQL) is retried one manifest per transaction, skipping the ones
/// that fail again (the next run sees them).
pub(crate) async fn delete(
    meta: &MetaStore,
    cutoff: i64,
    batch: &[Expired],
) -> Result<Vec<Expired>, sqlx::Error> {
    match delete_once(meta, cutoff, batch).await {
        Ok(d) => Ok(d),
        Err(e) if is_foreign_key_violation(&e) || is_retryable(&e) => {
            let mut deleted = Vec::new();
            for one in batch {
                match delete_once(meta, cutoff, std::slice::from_ref(one)).await {
                    Ok(d) => deleted.extend(d),
                    Err(e) if is_foreign_key_violation(&e) || is_retryable(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(deleted)
        }
        Err(e) => Err(e),
    }
}

async fn delete_once(
    meta: &MetaStore,
    cutoff: i64,
    batch: &[Expired],
) -> Result<Vec<Expired>, sqlx::Error> {
    let mut tx = meta.write_pool().begin().await?;
    let deleted = delete_in(&mut tx, cutoff, batch).await?;
    let mut repos: Vec<&str> = deleted.iter().map(|m| m.repository.as_str()).collect();
    repos.dedup();
    for r in &repos {
        meta.announce_manifests(&mut tx, r).await?;
    }
    tx.commit().await?;
    for r in repos {
        meta.invalidate_manifests(r);
    }
    Ok(deleted)
}

/// Delete those of `batch` that may still be deleted, inside `tx`.
pub(crate) async fn delete_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    cutoff: i64,
    batch: &[Expired],
) -> Result<Vec<Expired>, sqlx::Error> {
    let sql = format!(
        "DELETE FROM manifests AS d WHERE d.repository_id = $2 AND d.digest = $3 AND {}",
        deletable("d")
    );
    let mut deleted = Vec::new();
    for m in batch {
        let res = sqlx::query(&sql)
            .bind(cutoff)
            .bind(m.repository_id)
            .bind(&m.digest)
            .execute(&mut **tx)
            .await?;
        if res.rows_affected() > 0 {
            deleted.push(m.clone());
        }
    }
    Ok(deleted)
}

/// [`expired`] inside a transaction (seeing its own deletions).
pub(crate) async fn expired_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    cutoff: i64,
    repository_id: i64,
) -> Result<Vec<Expired>, sqlx::Error> {
    let sql = format!(
        "SELECT m.repository_id, r.name, m.digest, m.size, m.untagged_at, m.subject \
         FROM manifests m JOIN repositories r ON r.id = m.repository_id \
         WHERE {} AND m.repository_id = $2 ORDER BY m.digest",
        deletable("m")
    );
    let rows = sqlx::query(&sql)
        .bind(cutoff)
        .bind(repository_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(expired_row).collect()
}

fn expired_row(r: &sqlx::any::AnyRow) -> Result<Expired, sqlx::Error> {
    Ok(Expired {
        repository_id: r.try_get(0)?,
        repository: r.try_get(1)?,
        digest: r.try_get(2)?,
        size: r.try_get::<i64, _>(3)?.max(0) as u64,
        untagged_at: r.try_get::<Option<i64>, _>(4)?.unwrap_or(0),
        subject: r.try_get(5)?,
    })
}
