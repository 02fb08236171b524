//! The metadata store: repositories, blob links, manifests, tags and upload
//! sessions in SQL.
//!
//! Queries use `$N` placeholders and portable SQL (`ON CONFLICT`,
//! `RETURNING`) through sqlx's `Any` driver so that the PostgreSQL backend
//! can share them. SQLite runs in WAL mode with `synchronous=FULL`; writes go
//! through a single connection so that transactions never fail on a busy
//! database within one process, reads through a small pool. On PostgreSQL
//! (`--database-url`) one pool serves both, migrations take PostgreSQL's
//! advisory lock so replicas starting together run them once, and every
//! manifest/tag write announces itself to the other replicas
//! ([`crate::changes`]).

use std::path::Path;
use std::sync::Arc;

use berth_core::{Descriptor, Digest, ManifestInfo};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::changes::ChangeHub;
use crate::database_url::DatabaseUrl;
use crate::error::StoreError;
use crate::manifest_cache::{Lookup, ManifestCache};
use crate::now_ms;
use crate::object::upload::ObjectUploadState;
use crate::resume_hash::ResumableHasher;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connections to PostgreSQL per replica.
const POSTGRES_POOL_SIZE: u32 = 16;

/// The database engine behind a [`MetaStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in the data directory (one process).
    Sqlite,
    /// PostgreSQL, possibly shared by several replicas.
    Postgres,
}

/// A manifest row as stored.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    /// Digest of the content.
    pub digest: String,
    /// Media type sent back as `Content-Type`.
    pub media_type: String,
    /// The exact bytes that were pushed.
    pub content: bytes::Bytes,
}

/// An upload session row.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRow {
    /// Session id.
    pub id: String,
    /// Repository the session belongs to.
    pub repository: String,
    /// Acknowledged length.
    pub size: u64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// Object-storage state (empty on the filesystem backend).
    pub object: ObjectUploadState,
}

const UPLOAD_COLUMNS: &str =
    "id, repository, size, updated_at, multipart_id, parts, tail_key, tail_size, hash_state";

fn upload_row(r: &AnyRow) -> Result<UploadRow, StoreError> {
    let parts: String = r.get(5);
    let parts = serde_json::from_str(&parts)
        .map_err(|e| anyhow::anyhow!("upload row has unreadable parts: {e}"))?;
    let hash = match r.get::<Option<Vec<u8>>, _>(8) {
        None => None,
        Some(b) => Some(
            ResumableHasher::from_bytes(&b)
                .ok_or_else(|| anyhow::anyhow!("upload row has an unreadable hash state"))?,
        ),
    };
    Ok(UploadRow {
        id: r.get(0),
        repository: r.get(1),
        size: r.get::<i64, _>(2) as u64,
        updated_at: r.get(3),
        object: ObjectUploadState {
            multipart_id: r.get(4),
            parts,
            tail_key: r.get(6),
            tail_size: r.get::<i64, _>(7) as u64,
            hash,
        },
    })
}

/// `s` up to its first NUL (a pagination bound PostgreSQL can compare).
fn before_nul(s: &str) -> &str {
    s.split('\0').next().unwrap_or("")
}

/// Connection pools to the metadata database.
#[derive(Debug, Clone)]
pub struct MetaStore {
    read: AnyPool,
    write: AnyPool,
    manifests: Arc<ManifestCache>,
    backend: Backend,
    changes: Arc<ChangeHub>,
    listener: Option<Arc<tokio::task::JoinHandle<()>>>,
}

impl MetaStore {
    /// Open (creating and migrating) the embedded SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(sqlite_pragmas)
            .connect(&url)
            .await?;
        SQLITE_MIGRATIONS
            .run(&write)
            .await
            .map_err(|e| anyhow::anyhow!("migrating {}: {e}", path.display()))?;
        let read = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(2)
            .after_connect(sqlite_pragmas)
            .connect(&url)
            .await?;
        Ok(MetaStore {
            read,
            write,
            manifests: Arc::default(),
            backend: Backend::Sqlite,
            changes: Arc::new(ChangeHub::local()),
            listener: None,
        })
    }

    /// Connect to PostgreSQL at `url`, run the migrations (under
    /// PostgreSQL's advisory lock, so replicas starting at once run them
    /// once) and start listening for other replicas' changes. Errors never
    /// contain the URL's password.
    pub async fn open_postgres(url: &DatabaseUrl) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(POSTGRES_POOL_SIZE)
            .min_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url.expose())
            .await
            .map_err(|e| anyhow::anyhow!("connecting to {url}: {}", url.scrub(&e.to_string())))?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("migrating {url}: {}", url.scrub(&e.to_string())))?;
        let manifests: Arc<ManifestCache> = Arc::default();
        let changes = Arc::new(ChangeHub::shared(pool.clone()));
        let listener = crate::changes::listen(url, changes.clone(), manifests.clone())
            .await
            .map_err(|e| anyhow::anyhow!("listening for changes on {url}: {e}"))?;
        Ok(MetaStore {
            read: pool.clone(),
            write: pool,
            manifests,
            backend: Backend::Postgres,
            changes,
            listener: Some(Arc::new(listener)),
        })
    }

    /// The database engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where changes are announced to (and heard from) other replicas.
    pub fn changes(&self) -> &Arc<ChangeHub> {
        &self.changes
    }

    /// A cheap query, for the readiness check.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.read).await?;
        Ok(())
    }

    /// Invalidate `repository`'s cached manifests here and, on PostgreSQL,
    /// on every replica when `tx` commits.
    pub(crate) async fn announce_manifests(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        repository: &str,
    ) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            crate::changes::notify_manifests_in(tx, repository).await?;
        }
        Ok(())
    }

    /// The pool for reads.
    pub fn read_pool(&self) -> &AnyPool {
        &self.read
    }

    /// Forget the cached manifests of `repository` (after a change).
    pub(crate) fn invalidate_manifests(&self, repository: &str) {
        self.manifests.invalidate(repository);
    }

    /// The pool for writes (one connection on SQLite: write transactions
    /// never contend within a process).
    pub fn write_pool(&self) -> &AnyPool {
        &self.write
    }

    /// Close all connections.
    pub async fn close(&self) {
        if let Some(l) = &self.listener {
            l.abort();
        }
        self.read.close().await;
        self.write.close().await;
    }

    // ---- repositories -------------------------------------------------

    /// Id of an existing repository.
    pub async fn repository_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0)))
    }

    /// Repository names after `last`, at most `n`.
    pub async fn list_repositories(
        &self,
        last: Option<&str>,
        n: i64,
    ) -> Result<Vec<String>, StoreError> {
        // PostgreSQL text cannot hold NUL and names never contain one: the
        // names after `a\0…` are exactly the names after `a`.
        let last = last.map(before_nul);
        let rows =
            sqlx::query("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(last.unwrap_or(""))
                .bind(n)
                .fetch_all(&self.read)
                .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    // ---- blobs ---------------------------------------------------------

    /// Size of a blob if it is linked to the repository.
    pub async fn linked_blob_size(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query(
            "SELECT b.size FROM repository_blobs l \
             JOIN repositories r ON r.id = l.repository_id \
             JOIN blobs b ON b.digest = l.digest \
             WHERE r.name = $1 AND l.digest = $2",
        )
        .bind(repository)
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64))
    }

    /// Record a committed blob and link it to `repository` (created if new).
    ///
    /// `verify` runs inside the transaction once the blob's row is held (on
    /// PostgreSQL `FOR SHARE`; on SQLite the single writer serializes), so
    /// the collector, which deletes bytes only while holding the same row
    /// `FOR UPDATE`, cannot delete them between the check and the commit.
    /// `verify` answers whether the bytes are present (it may put them in
    /// place first); when they are not, nothing is written and the upload
    /// fails with `BLOB_UPLOAD_INVALID`.
    pub async fn commit_blob<F, Fut>(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        finished_upload: Option<&str>,
        verify: F,
    ) -> Result<(), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<bool, StoreError>>,
    {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        self.hold_blob_row(&mut tx, digest, size, now).await?;
        if !verify().await? {
            return Err(StoreError::Oci(berth_core::OciError::with_message(
                berth_core::ErrorCode::BlobUploadInvalid,
                format!("blob {digest} was removed by garbage collection while its upload finished; upload it again"),
            )));
        }
        let repo_id = ensure_repository(&mut tx, repository, now).await?;
        link(&mut tx, repo_id, digest, now).await?;
        if let Some(id) = finished_upload {
            sqlx::query("DELETE FROM uploads WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Insert `digest`'s blob row if absent and hold it for the rest of
    /// `tx` (PostgreSQL: `FOR SHARE`, retried when the collector deleted the
    /// row while this transaction waited for it).
    async fn hold_blob_row(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        digest: &Digest,
        size: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        for _ in 0..5 {
            sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING")
                .bind(digest.to_string())
                .bind(size as i64)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            if self.backend == Backend::Sqlite {
                return Ok(());
            }
            let held = sqlx::query("SELECT 1 FROM blobs WHERE digest = $1 FOR SHARE")
                .bind(digest.to_string())
                .fetch_optional(&mut **tx)
                .await?;
            if held.is_some() {
                return Ok(());
            }
        }
        Err(anyhow::anyhow!("blob row {digest} kept vanishing under the collector").into())
    }

    /// Link a blob already linked to `from` into `repository`. Returns
    /// whether `from` had it.
    pub async fn mount_blob(
        &self,
        repository: &str,
        from: &str,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        // On PostgreSQL the source link is held FOR SHARE, so the collector
        // cannot sweep it (and then the blob) before the new link exists.
        let sql = if self.backend == Backend::Postgres {
            "SELECT 1 FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id \
             WHERE r.name = $1 AND l.digest = $2 FOR SHARE OF l"
        } else {
            "SELECT 1 FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id \
             WHERE r.name = $1 AND l.digest = $2"
        };
        let present = sqlx::query(sql)
            .bind(from)
            .bind(digest.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !present {
            return Ok(false);
        }
        let repo_id = ensure_repository(&mut tx, repository, now).await?;
        match link(&mut tx, repo_id, digest, now).await {
            Err(e) if is_foreign_key_violation(&e) => return Ok(false),
            r => r?,
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Remove a blob's link from a repository. Returns whether it was linked.
    /// An explicit request: manifests of the repository that reference the
    /// blob lose it (as before garbage collection existed).
    pub async fn unlink_blob(&self, repository: &str, digest: &Digest) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM manifest_blobs WHERE digest = $1 AND repository_id = \
             (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(digest.to_string())
        .bind(repository)
        .execute(&mut *tx)
        .await?;
        let res = sqlx::query(
            "DELETE FROM repository_blobs WHERE digest = $1 AND repository_id = \
             (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(digest.to_string())
        .bind(repository)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(res.rows_affected() > 0)
    }

    // ---- manifests -----------------------------------------------------

    /// A manifest by digest.
    pub async fn manifest_by_digest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<ManifestRow>, StoreError> {
        let digest = digest.to_string();
        self.manifest_lookup(
            repository,
            Lookup::Digest(&digest),
            "SELECT m.digest, m.media_type, m.content FROM manifests m \
             JOIN repositories r ON r.id = m.repository_id \
             WHERE r.name = $1 AND m.digest = $2",
        )
        .await
    }

    /// A manifest by tag.
    pub async fn manifest_by_tag(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<ManifestRow>, StoreError> {
        self.manifest_lookup(
            repository,
            Lookup::Tag(tag),
            "SELECT m.digest, m.media_type, m.content FROM tags t \
             JOIN repositories r ON r.id = t.repository_id \
             JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest \
             WHERE r.name = $1 AND t.name = $2",
        )
        .await
    }

    /// A manifest from the cache, or from `sql` (bound to the repository and
    /// the tag or digest) and then cached.
    async fn manifest_lookup(
        &self,
        repository: &str,
        lookup: Lookup<'_>,
        sql: &str,
    ) -> Result<Option<ManifestRow>, StoreError> {
        // Replicas: a tag may have moved through another replica a moment
        // ago, and its NOTIFY may still be on the way; so on PostgreSQL tags
        // are always read from the database (the very next request on any
        // replica sees a push). Content by digest never changes; only its
        // deletion travels by NOTIFY (and the cache's TTL bounds it).
        let cacheable = self.backend == Backend::Sqlite || matches!(lookup, Lookup::Digest(_));
        if !cacheable {
            let (Lookup::Tag(key) | Lookup::Digest(key)) = lookup;
            return Ok(sqlx::query(sql)
                .bind(repository)
                .bind(key)
                .fetch_optional(&self.read)
                .await?
                .map(manifest_row));
        }
        if let Some(row) = self.manifests.get(repository, lookup) {
            return Ok(Some(row));
        }
        let generation = self.manifests.generation();
        let (Lookup::Tag(key) | Lookup::Digest(key)) = lookup;
        let row = sqlx::query(sql)
            .bind(repository)
            .bind(key)
            .fetch_optional(&self.read)
            .await?
            .map(manifest_row);
        if let Some(r) = &row {
            self.manifests.insert(repository, lookup, r, generation);
        }
        Ok(row)
    }

    /// Store a validated manifest (and point `tags` at it) atomically.
    /// Fails with the first missing blob or child manifest, writing nothing.
    pub async fn put_manifest(
        &self,
        repository: &str,
        digest: &Digest,
        info: &ManifestInfo,
        optional: &[Digest],
        content: &[u8],
        tags: &[&str],
    ) -> Result<(), PutManifestError> {
        // Retried when the collector deleted the (untagged, expired)
        // manifest between this PUT's insert and its hold on the row.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .put_manifest_once(repository, digest, info, optional, content, tags)
                .await
            {
                Err(PutManifestError::Store(StoreError::Conflict(_))) if attempt < 3 => continue,
                r => return r,
            }
        }
    }

    async fn put_manifest_once(
        &self,
        repository: &str,
        digest: &Digest,
        info: &ManifestInfo,
        optional: &[Digest],
        content: &[u8],
        tags: &[&str],
    ) -> Result<(), PutManifestError> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let repo_id = ensure_repository(&mut tx, repository, now).await?;
        for blob in &info.blobs {
            let found = sqlx::query(
                "SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2",
            )
            .bind(repo_id)
            .bind(blob.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Err(PutManifestError::MissingBlob(blob.clone()));
            }
        }
        for child in &info.manifests {
            let found =
                sqlx::query("SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2")
                    .bind(repo_id)
                    .bind(child.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(PutManifestError::MissingManifest(child.clone()));
            }
        }
        let annotations = info
            .annotations
            .as_ref()
            .map(|a| serde_json::Value::Object(a.clone()).to_string());
        let inserted = sqlx::query(
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, \
             annotations, size, content, created_at, untagged_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .bind(info.media_type.clone())
        .bind(info.artifact_type.clone())
        .bind(info.subject.as_ref().map(|s| s.to_string()))
        .bind(annotations)
        .bind(content.len() as i64)
        .bind(content.to_vec())
        .bind(now)
        // Pushed without a tag: untagged since now (retention counts from here).
        .bind(if tags.is_empty() { Some(now) } else { None })
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Pushed again: hold the row (so a retention DELETE waits for
            // this transaction and then re-checks it) and restart its
            // retention clock, or end it when tagged.
            let held = sqlx::query(
                "UPDATE manifests SET untagged_at = CASE WHEN untagged_at IS NULL THEN NULL \
                 ELSE $3 END WHERE repository_id = $1 AND digest = $2",
            )
            .bind(repo_id)
            .bind(digest.to_string())
            .bind(if tags.is_empty() { Some(now) } else { None })
            .execute(&mut *tx)
            .await?;
            if held.rows_affected() == 0 {
                // Deleted by the collector since the insert looked: again.
                return Err(PutManifestError::Store(StoreError::Conflict(
                    "manifest deleted concurrently".into(),
                )));
            }
        }
        // The references, checked by their foreign keys: a link or child
        // the collector deleted since the checks above fails the PUT here.
        // In digest order, the order the collector sweeps links in, so the
        // two never wait for each other in a cycle on PostgreSQL.
        let mut blobs: Vec<&Digest> = info.blobs.iter().collect();
        blobs.sort_by_key(|d| d.to_string());
        blobs.dedup();
        for blob in blobs {
            let res = sqlx::query(
                "INSERT INTO manifest_blobs (repository_id, manifest_digest, digest) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(digest.to_string())
            .bind(blob.to_string())
            .execute(&mut *tx)
            .await;
            match res {
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(PutManifestError::MissingBlob((*blob).clone()))
                }
                r => r?,
            };
        }
        for child in &info.manifests {
            let res = sqlx::query(
                "INSERT INTO manifest_children (repository_id, parent_digest, child_digest) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(digest.to_string())
            .bind(child.to_string())
            .execute(&mut *tx)
            .await;
            match res {
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(PutManifestError::MissingManifest(child.clone()))
                }
                r => r?,
            };
        }
        // A sparse manifest's optional references that are linked anyway
        // are protected like required ones.
        for d in optional {
            let res = sqlx::query(
                "INSERT INTO manifest_blobs (repository_id, manifest_digest, digest) \
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM repository_blobs \
                 WHERE repository_id = $1 AND digest = $3) ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(digest.to_string())
            .bind(d.to_string())
            .execute(&mut *tx)
            .await;
            match res {
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(PutManifestError::MissingBlob(d.clone()))
                }
                r => r?,
            };
        }
        sqlx::query(
            "UPDATE manifests SET refs_recorded = 1 \
             WHERE repository_id = $1 AND digest = $2 AND refs_recorded = 0",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .execute(&mut *tx)
        .await?;
        // The manifests these tags pointed at before: those left without a
        // tag become untagged now (retention).
        let mut previous: Vec<String> = Vec::new();
        for tag in tags {
            if let Some(r) =
                sqlx::query("SELECT digest FROM tags WHERE repository_id = $1 AND name = $2")
                    .bind(repo_id)
                    .bind(*tag)
                    .fetch_optional(&mut *tx)
                    .await?
            {
                let d: String = r.try_get(0)?;
                if d != digest.to_string() && !previous.contains(&d) {
                    previous.push(d);
                }
            }
        }
        for tag in tags {
            sqlx::query(
                "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, \
                 updated_at = excluded.updated_at",
            )
            .bind(repo_id)
            .bind(*tag)
            .bind(digest.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if !tags.is_empty() {
            // Tagged again: out of the retention's reach. Updating the row
            // also makes a concurrent retention DELETE of it re-check (and
            // keep) it on PostgreSQL.
            sqlx::query(
                "UPDATE manifests SET untagged_at = NULL WHERE repository_id = $1 \
                 AND digest = $2 AND untagged_at IS NOT NULL",
            )
            .bind(repo_id)
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?;
        }
        for d in &previous {
            mark_untagged(&mut tx, repo_id, d, now).await?;
        }
        self.announce_manifests(&mut tx, repository).await?;
        tx.commit().await?;
        self.manifests.invalidate(repository);
        Ok(())
    }

    /// Delete a manifest and every tag pointing at it. Returns whether it existed.
    pub async fn delete_manifest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let Some(repo_id) = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(repository)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get::<i64, _>(0))
        else {
            return Ok(false);
        };
        // An explicit delete: an index referencing this manifest loses the
        // reference (the spec allows deleting a child of an index).
        sqlx::query("DELETE FROM manifest_children WHERE repository_id = $1 AND child_digest = $2")
            .bind(repo_id)
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?;
        let res = sqlx::query("DELETE FROM manifests WHERE repository_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tags WHERE repository_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?;
        self.announce_manifests(&mut tx, repository).await?;
        tx.commit().await?;
        self.manifests.invalidate(repository);
        Ok(res.rows_affected() > 0)
    }

    /// Remove a tag. Returns whether it existed.
    pub async fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "SELECT t.repository_id, t.digest FROM tags t JOIN repositories r \
             ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repository)
        .bind(tag)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let repo_id: i64 = row.try_get(0)?;
        let digest: String = row.try_get(1)?;
        let res = sqlx::query("DELETE FROM tags WHERE repository_id = $1 AND name = $2")
            .bind(repo_id)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        mark_untagged(&mut tx, repo_id, &digest, now_ms()).await?;
        tx.commit().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::changes::MANIFESTS_CHANNEL)
                .bind(repository)
                .execute(&self.write)
                .await?;
        }
        self.manifests.invalidate(repository);
        Ok(res.rows_affected() > 0)
    }

    /// Tags after `last`, at most `n`, in the spec's lexical order
    /// (case-insensitive; ties broken by the exact bytes).
    pub async fn list_tags(
        &self,
        repo_id: i64,
        last: Option<&str>,
        n: i64,
    ) -> Result<Vec<String>, StoreError> {
        // PostgreSQL text cannot hold NUL and tags never contain one: the
        // tags after `a\0…` are those whose lowercase form sorts after `a`'s.
        let (last, strict) = match last {
            Some(l) if l.contains('\0') => (Some(before_nul(l)), true),
            other => (other, false),
        };
        let sql = if strict {
            "SELECT name FROM tags WHERE repository_id = $1 AND LOWER(name) > LOWER($2) \
             ORDER BY LOWER(name), name LIMIT $3"
        } else {
            "SELECT name FROM tags WHERE repository_id = $1 AND \
             (LOWER(name) > LOWER($2) OR (LOWER(name) = LOWER($2) AND name > $2)) \
             ORDER BY LOWER(name), name LIMIT $3"
        };
        let rows = sqlx::query(sql)
            .bind(repo_id)
            .bind(last.unwrap_or(""))
            .bind(n)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// Manifests in `repository` whose subject is `subject`.
    pub async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m \
             JOIN repositories r ON r.id = m.repository_id \
             WHERE r.name = $1 AND m.subject = $2 AND ($3 IS NULL OR m.artifact_type = $3) \
             ORDER BY m.created_at, m.digest",
        )
        .bind(repository)
        .bind(subject.to_string())
        .bind(artifact_type.map(str::to_string))
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let digest: String = r.get(0);
            let digest = digest
                .parse::<Digest>()
                .map_err(|e| anyhow::anyhow!("stored digest {digest} is invalid: {e}"))?;
            let annotations: Option<String> = r.get(4);
            out.push(Descriptor {
                media_type: r.get(1),
                digest,
                size: r.get(2),
                artifact_type: r.get(3),
                annotations: annotations
                    .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
                    .and_then(|v| v.as_object().cloned()),
            });
        }
        Ok(out)
    }

    // ---- upload sessions ----------------------------------------------

    /// Create an upload session.
    pub async fn create_upload(&self, id: &str, repository: &str) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO uploads (id, repository, size, created_at, updated_at) VALUES ($1, $2, 0, $3, $3)",
        )
        .bind(id)
        .bind(repository)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// An upload session.
    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.write)
        .await?;
        row.as_ref().map(upload_row).transpose()
    }

    /// Every upload session.
    pub async fn uploads(&self) -> Result<Vec<UploadRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(upload_row).collect()
    }

    /// Record the multipart upload of an object-storage session that has
    /// none yet; false if it already has one.
    pub async fn set_upload_multipart(
        &self,
        id: &str,
        multipart_id: &str,
    ) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE uploads SET multipart_id = $1, updated_at = $2 WHERE id = $3 AND multipart_id IS NULL",
        )
        .bind(multipart_id)
        .bind(now_ms())
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Move an object-storage session from size `from` to `to` with its new
    /// state; false if another writer moved it first.
    pub async fn save_object_upload(
        &self,
        id: &str,
        from: u64,
        to: u64,
        state: &ObjectUploadState,
    ) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE uploads SET size = $1, updated_at = $2, multipart_id = $3, parts = $4, \
             tail_key = $5, tail_size = $6, hash_state = $7 WHERE id = $8 AND size = $9",
        )
        .bind(to as i64)
        .bind(now_ms())
        .bind(state.multipart_id.clone())
        .bind(state.parts_json())
        .bind(state.tail_key.clone())
        .bind(state.tail_size as i64)
        .bind(state.hash.as_ref().map(ResumableHasher::to_bytes))
        .bind(id)
        .bind(from as i64)
        .execute(&self.write)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Move a session's acknowledged size from `from` to `to`; false if
    /// another writer moved it first.
    pub async fn advance_upload(&self, id: &str, from: u64, to: u64) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE uploads SET size = $1, updated_at = $2 WHERE id = $3 AND size = $4",
        )
        .bind(to as i64)
        .bind(now_ms())
        .bind(id)
        .bind(from as i64)
        .execute(&self.write)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Delete a session. Returns whether it existed.
    pub async fn delete_upload(&self, id: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Ids of all sessions and of those idle since before `idle_before_ms`.
    pub async fn upload_ids(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, updated_at FROM uploads")
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect())
    }

    // ---- management listings -------------------------------------------

    /// Every tag of `repository` with its manifest's digest, size, media type
    /// and times, in tag order (`None` when the repository does not exist).
    pub async fn tag_details(
        &self,
        repository: &str,
    ) -> Result<Option<Vec<TagDetail>>, StoreError> {
        let Some(repo_id) = self.repository_id(repository).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT t.name, t.digest, m.size, m.media_type, m.created_at, t.updated_at \
             FROM tags t LEFT JOIN manifests m \
             ON m.repository_id = t.repository_id AND m.digest = t.digest \
             WHERE t.repository_id = $1 ORDER BY LOWER(t.name), t.name",
        )
        .bind(repo_id)
        .fetch_all(&self.read)
        .await?;
        let tags = rows
            .iter()
            .map(|r| -> Result<TagDetail, sqlx::Error> {
                Ok(TagDetail {
                    name: r.try_get(0)?,
                    digest: r.try_get(1)?,
                    size: r.try_get::<Option<i64>, _>(2)?.unwrap_or(0),
                    media_type: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
                    created_at: r.try_get::<Option<i64>, _>(4)?.unwrap_or(0),
                    updated_at: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(tags))
    }

    /// Every manifest of `repository`, newest first (`None` when the
    /// repository does not exist).
    pub async fn manifest_details(
        &self,
        repository: &str,
    ) -> Result<Option<Vec<ManifestDetail>>, StoreError> {
        let Some(repo_id) = self.repository_id(repository).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT digest, media_type, artifact_type, size, created_at FROM manifests \
             WHERE repository_id = $1 ORDER BY created_at DESC, digest",
        )
        .bind(repo_id)
        .fetch_all(&self.read)
        .await?;
        let tag_rows =
            sqlx::query("SELECT digest, name FROM tags WHERE repository_id = $1 ORDER BY name")
                .bind(repo_id)
                .fetch_all(&self.read)
                .await?;
        let mut out = rows
            .iter()
            .map(|r| -> Result<ManifestDetail, sqlx::Error> {
                Ok(ManifestDetail {
                    digest: r.try_get(0)?,
                    media_type: r.try_get(1)?,
                    artifact_type: r.try_get(2)?,
                    size: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    tags: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for r in &tag_rows {
            let digest: String = r.try_get(0)?;
            let name: String = r.try_get(1)?;
            if let Some(m) = out.iter_mut().find(|m| m.digest == digest) {
                m.tags.push(name);
            }
        }
        Ok(Some(out))
    }

    /// Delete a repository with its tags, manifests, blob links and upload
    /// sessions (blob bytes stay for garbage collection). Returns whether
    /// it existed.
    pub async fn delete_repository(&self, repository: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let Some(repo_id) = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(repository)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get::<i64, _>(0))
        else {
            return Ok(false);
        };
        for table in [
            "tags",
            "manifest_children",
            "manifest_blobs",
            "manifests",
            "repository_blobs",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE repository_id = $1"))
                .bind(repo_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM uploads WHERE repository = $1")
            .bind(repository)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM repositories WHERE id = $1")
            .bind(repo_id)
            .execute(&mut *tx)
            .await?;
        self.announce_manifests(&mut tx, repository).await?;
        tx.commit().await?;
        self.manifests.invalidate(repository);
        Ok(true)
    }
}

/// A tag as the management API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDetail {
    /// Tag name.
    pub name: String,
    /// Digest of the tagged manifest.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: i64,
    /// Manifest media type.
    pub media_type: String,
    /// When the manifest was pushed, unix milliseconds.
    pub created_at: i64,
    /// When the tag last moved, unix milliseconds.
    pub updated_at: i64,
}

/// A manifest as the management API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDetail {
    /// Digest.
    pub digest: String,
    /// Media type.
    pub media_type: String,
    /// Artifact type, when set.
    pub artifact_type: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// When it was pushed, unix milliseconds.
    pub created_at: i64,
    /// Tags pointing at it.
    pub tags: Vec<String>,
}

/// Why a manifest could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PutManifestError {
    /// A referenced blob is not linked to the repository.
    #[error("blob {0} is not in the repository")]
    MissingBlob(Digest),
    /// A child manifest of an index is not in the repository.
    #[error("manifest {0} is not in the repository")]
    MissingManifest(Digest),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PutManifestError {
    fn from(e: sqlx::Error) -> Self {
        PutManifestError::Store(e.into())
    }
}

/// Whether `e` is a deadlock or serialization failure (PostgreSQL aborted
/// the transaction; trying again, or later, is right).
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if matches!(d.code().as_deref(), Some("40P01") | Some("40001")))
}

/// Whether `e` is a foreign-key violation (the race rule of the collector:
/// a reference to a link or manifest deleted meanwhile).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

fn sqlite_pragmas(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        for p in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA busy_timeout = 10000",
            "PRAGMA foreign_keys = ON",
        ] {
            sqlx::query(p).execute(&mut *conn).await?;
        }
        Ok(())
    })
}

fn manifest_row(r: AnyRow) -> ManifestRow {
    ManifestRow {
        digest: r.get(0),
        media_type: r.get(1),
        content: bytes::Bytes::from(r.get::<Vec<u8>, _>(2)),
    }
}

async fn ensure_repository(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query("SELECT id FROM repositories WHERE name = $1")
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.get::<i64, _>(0))
}

async fn link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    repo_id: i64,
    digest: &Digest,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, digest) DO NOTHING",
    )
    .bind(repo_id)
    .bind(digest.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Mark manifest `digest` of repository `repo_id` untagged since `now` if
/// no tag points at it any more (and it was tagged until now).
pub(crate) async fn mark_untagged(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    repo_id: i64,
    digest: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE manifests SET untagged_at = $3 WHERE repository_id = $1 AND digest = $2 \
         AND untagged_at IS NULL AND NOT EXISTS (SELECT 1 FROM tags t \
         WHERE t.repository_id = $1 AND t.digest = $2)",
    )
    .bind(repo_id)
    .bind(digest)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
