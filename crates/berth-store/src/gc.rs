//! Online garbage collection: mark what manifests reference, sweep blob
//! links nothing references and blobs no link names, while pushes and pulls
//! continue.
//!
//! The race rules (docs/architecture.md, "Garbage collection"):
//!
//! * **Links.** Every manifest's blob references are rows of
//!   `manifest_blobs` with a foreign key to the repository's link. A link
//!   is deleted by one `DELETE … WHERE NOT EXISTS (reference)` statement;
//!   a manifest PUT writes its references in its own transaction. Both
//!   serialize on the link's row (SQLite: the single writer; PostgreSQL:
//!   the foreign key's row lock and its re-check at commit), so either the
//!   PUT commits first and the link stays, or the sweep commits first and
//!   the PUT fails with `MANIFEST_BLOB_UNKNOWN`.
//! * **Blobs.** A blob's bytes are deleted only inside the transaction that
//!   deletes its row, while that row is held `FOR UPDATE` (PostgreSQL) or
//!   the single writer is held (SQLite). Every path that creates a link
//!   holds the same row (`FOR SHARE` on upload commit, the foreign key's
//!   `KEY SHARE` on mount) and checks the bytes under it. A crash after the
//!   bytes went but before the commit leaves a row without bytes and
//!   without links, which no pull can reach; the next run removes it.
//! * **Grace.** A link younger than the grace period is never swept, so a
//!   client's layers wait for its manifest; bytes without any row are
//!   removed only when older than the grace period.
//! * **One collector.** PostgreSQL: a session advisory lock on a dedicated
//!   connection (released when the replica dies). SQLite: one process, a
//!   mutex.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::manifest::parse_manifest;
use berth_core::Digest;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::backend::BlobBackend;
use crate::error::StoreError;
use crate::meta::{is_foreign_key_violation, is_retryable, Backend, MetaStore};
use crate::now_ms;

/// The default grace period (`--gc-grace`).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The PostgreSQL advisory lock key of the collector (`berthgc` in ASCII).
pub const ADVISORY_LOCK_KEY: i64 = 0x0062_6572_7468_6763;

/// Most links or manifests deleted per transaction.
const LINK_BATCH: usize = 256;
/// Most blobs deleted per transaction on the filesystem (each one an
/// unlink while the writer is held).
const FS_BLOB_BATCH: usize = 128;
/// Most blobs deleted per transaction on object storage (deleted
/// concurrently, one request each).
const OBJECT_BLOB_BATCH: usize = 16;
/// How long one deleting transaction should hold the writer: batches
/// shrink and grow to stay near it (see [`Pacer`]).
const BATCH_TARGET: Duration = Duration::from_millis(20);
/// The pause between two deleting transactions, so that pushes waiting
/// for the writer go first.
const BATCH_PAUSE: Duration = Duration::from_millis(2);
/// Most passes of the retention phase (each can free the children of an
/// index or the referrers of a subject the previous one deleted).
const RETENTION_PASSES: usize = 8;
/// Most deletions listed in a report (the counters always count all).
pub const MAX_LISTED: usize = 1000;
/// How often a running collection writes its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// What kind of object a collection deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GcKind {
    /// An untagged manifest (retention).
    Manifest,
    /// A repository's link to a blob.
    BlobLink,
    /// A blob's bytes and row.
    Blob,
}

impl GcKind {
    /// The audit operation of a deletion of this kind.
    pub fn operation(self) -> &'static str {
        match self {
            GcKind::Manifest => "gc_delete_manifest",
            GcKind::BlobLink => "gc_unlink_blob",
            GcKind::Blob => "gc_delete_blob",
        }
    }
}

/// One deletion (or, in a dry run, one that would be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcDeletion {
    /// What was deleted.
    pub kind: GcKind,
    /// The repository (`None` for a blob: bytes are shared by all).
    pub repository: Option<String>,
    /// Digest of the blob or manifest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// Called for every deletion as it commits (the server records an audit
/// event and counts it).
pub type DeletionSink = Arc<dyn Fn(&GcDeletion) + Send + Sync>;

/// How to collect.
#[derive(Clone)]
pub struct GcOptions {
    /// Links younger than this, and unreferenced bytes younger than this,
    /// stay.
    pub grace: Duration,
    /// Only report what would be deleted.
    pub dry_run: bool,
    /// Told of every deletion.
    pub sink: Option<DeletionSink>,
    /// Who asked (stored with the run: a principal, or `interval`).
    pub requested_by: String,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GRACE,
            dry_run: false,
            sink: None,
            requested_by: String::new(),
        }
    }
}

impl std::fmt::Debug for GcOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcOptions")
            .field("grace", &self.grace)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

/// A collection's state and counters, as stored in `gc_runs` (every replica
/// reads the same).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcRun {
    /// Run id.
    pub id: String,
    /// Which replica ran it (host name and process id).
    pub replica: String,
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// `running`, `finished`, `failed` or `interrupted` (its replica died).
    pub state: String,
    /// `references`, `manifests` (retention), `links`, `blobs`, `orphans` or `done`.
    pub phase: String,
    /// Start, unix milliseconds.
    pub started_at: i64,
    /// Last progress, unix milliseconds.
    pub updated_at: i64,
    /// End, unix milliseconds.
    pub finished_at: Option<i64>,
    /// Manifests deleted.
    pub manifests: u64,
    /// Repository blob links deleted.
    pub links: u64,
    /// Blobs deleted (rows with their bytes, and bytes no row named).
    pub blobs: u64,
    /// Bytes of the deleted blobs.
    pub bytes_freed: u64,
    /// Duration so far or in all, milliseconds.
    pub duration_ms: i64,
    /// The failure, when `failed`.
    pub error: Option<String>,
    /// The deletions (at most [`MAX_LISTED`]; set once finished).
    pub deleted: Vec<GcDeletion>,
    /// Whether `deleted` lists fewer than were made.
    pub truncated: bool,
}

/// Why a collection did not start.
#[derive(Debug)]
pub enum GcStart {
    /// It ran; here is its final record.
    Ran(Box<GcRun>),
    /// Another collection holds the lock (its record, when known).
    Busy(Option<Box<GcRun>>),
}

/// The collector of one registry process.
pub struct Collector {
    meta: MetaStore,
    blobs: BlobBackend,
    local: tokio::sync::Mutex<()>,
    replica: String,
}

struct Progress {
    id: String,
    manifests: u64,
    links: u64,
    blobs: u64,
    bytes: u64,
    listed: Vec<GcDeletion>,
    truncated: bool,
    last_write: Instant,
    started: Instant,
}

impl Progress {
    fn add(&mut self, d: GcDeletion, sink: Option<&DeletionSink>) {
        match d.kind {
            GcKind::Manifest => self.manifests += 1,
            GcKind::BlobLink => self.links += 1,
            GcKind::Blob => {
                self.blobs += 1;
                self.bytes += d.size;
            }
        }
        if let Some(s) = sink {
            s(&d);
        }
        if self.listed.len() < MAX_LISTED {
            self.listed.push(d);
        } else {
            self.truncated = true;
        }
    }
}

impl Collector {
    /// A collector over `meta` and `blobs`.
    pub fn new(meta: MetaStore, blobs: BlobBackend) -> Collector {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Collector {
            meta,
            blobs,
            local: tokio::sync::Mutex::new(()),
            replica: format!("{host}:{}", std::process::id()),
        }
    }

    /// Run one collection now, unless another is running (in this process
    /// or, on PostgreSQL, on any replica).
    pub async fn run(&self, options: &GcOptions) -> Result<GcStart, StoreError> {
        let Ok(_local) = self.local.try_lock() else {
            return Ok(GcStart::Busy(self.running().await?.map(Box::new)));
        };
        let mut lock_conn = None;
        if self.meta.backend() == Backend::Postgres {
            let mut conn = self.meta.write_pool().acquire().await?.detach();
            let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                .bind(ADVISORY_LOCK_KEY)
                .fetch_one(&mut conn)
                .await?
                .try_get(0)?;
            if !got {
                let _ = sqlx::Connection::close(conn).await;
                return Ok(GcStart::Busy(self.running().await?.map(Box::new)));
            }
            // Detached from the pool: closing it (or the process dying)
            // releases the lock.
            lock_conn = Some(conn);
        }
        let result = self.run_locked(options).await;
        if let Some(mut conn) = lock_conn {
            // Unlock before closing: the server ends a closed session (and
            // releases its locks) only after the client has moved on, so a
            // collection right after this one could find the lock held.
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(ADVISORY_LOCK_KEY)
                .execute(&mut conn)
                .await;
            let _ = sqlx::Connection::close(conn).await;
        }
        result.map(|r| GcStart::Ran(Box::new(r)))
    }

    async fn run_locked(&self, options: &GcOptions) -> Result<GcRun, StoreError> {
        let now = now_ms();
        // Holding the lock: a run still marked running died with its replica.
        sqlx::query("UPDATE gc_runs SET state = 'interrupted' WHERE state = 'running'")
            .execute(self.meta.write_pool())
            .await?;
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO gc_runs (id, replica, dry_run, state, phase, started_at, updated_at) \
             VALUES ($1, $2, $3, 'running', 'references', $4, $4)",
        )
        .bind(&id)
        .bind(format!("{} ({})", self.replica, options.requested_by))
        .bind(i64::from(options.dry_run))
        .bind(now)
        .execute(self.meta.write_pool())
        .await?;
        let mut p = Progress {
            id: id.clone(),
            manifests: 0,
            links: 0,
            blobs: 0,
            bytes: 0,
            listed: Vec::new(),
            truncated: false,
            last_write: Instant::now(),
            started: Instant::now(),
        };
        let res = self.phases(options, &mut p).await;
        let (state, error) = match &res {
            Ok(()) => ("finished", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        let report = serde_json::json!({"deleted": p.listed, "truncated": p.truncated}).to_string();
        sqlx::query(
            "UPDATE gc_runs SET state = $1, phase = 'done', updated_at = $2, finished_at = $2, \
             manifests = $3, links = $4, blobs = $5, bytes_freed = $6, error = $7, report = $8 \
             WHERE id = $9",
        )
        .bind(state)
        .bind(now_ms())
        .bind(p.manifests as i64)
        .bind(p.links as i64)
        .bind(p.blobs as i64)
        .bind(p.bytes as i64)
        .bind(error)
        .bind(report)
        .bind(&id)
        .execute(self.meta.write_pool())
        .await?;
        res?;
        self.get(&id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("gc run {id} vanished").into())
    }

    async fn progress(&self, p: &mut Progress, phase: &str, force: bool) -> Result<(), StoreError> {
        if !force && p.last_write.elapsed() < PROGRESS_EVERY {
            return Ok(());
        }
        p.last_write = Instant::now();
        sqlx::query(
            "UPDATE gc_runs SET phase = $1, updated_at = $2, manifests = $3, links = $4, \
             blobs = $5, bytes_freed = $6 WHERE id = $7",
        )
        .bind(phase)
        .bind(now_ms())
        .bind(p.manifests as i64)
        .bind(p.links as i64)
        .bind(p.blobs as i64)
        .bind(p.bytes as i64)
        .bind(&p.id)
        .execute(self.meta.write_pool())
        .await?;
        Ok(())
    }

    async fn phases(&self, options: &GcOptions, p: &mut Progress) -> Result<(), StoreError> {
        let cutoff = now_ms() - i64::try_from(options.grace.as_millis()).unwrap_or(i64::MAX);
        self.backfill_references().await?;
        let settings = crate::IdentityRepo::new(&self.meta)
            .registry_config()
            .await?;
        if settings.retention_enabled {
            self.progress(p, "manifests", true).await?;
            let days = i64::from(settings.retention_untagged_days);
            self.sweep_manifests(options, now_ms() - days * 86_400_000, p)
                .await?;
        }
        self.progress(p, "links", true).await?;
        self.sweep_links(options, cutoff, p).await?;
        self.progress(p, "blobs", true).await?;
        self.sweep_blobs(options, cutoff, p).await?;
        self.progress(p, "orphans", true).await?;
        self.sweep_orphans(options, cutoff, p).await?;
        tracing::info!(run = %p.id, dry_run = options.dry_run, links = p.links, blobs = p.blobs,
            bytes_freed = p.bytes, duration_ms = p.started.elapsed().as_millis() as u64,
            "garbage collection finished");
        Ok(())
    }

    /// Record the references of manifests pushed before references were
    /// recorded (metadata only, so a dry run does it too). A manifest whose
    /// content cannot be parsed stays unrecorded, which keeps every link of
    /// its repository.
    async fn backfill_references(&self) -> Result<(), StoreError> {
        loop {
            let rows = sqlx::query(
                "SELECT repository_id, digest, media_type, content FROM manifests \
                 WHERE refs_recorded = 0 LIMIT 200",
            )
            .fetch_all(self.meta.read_pool())
            .await?;
            if rows.is_empty() {
                return Ok(());
            }
            let mut progressed = false;
            let mut tx = self.meta.write_pool().begin().await?;
            for r in &rows {
                let repo_id: i64 = r.try_get(0)?;
                let digest: String = r.try_get(1)?;
                let media_type: String = r.try_get(2)?;
                let content: Vec<u8> = r.try_get(3)?;
                let Ok(info) = parse_manifest(Some(&media_type), &content) else {
                    tracing::warn!(repository_id = repo_id, manifest = %digest,
                        "garbage collection: stored manifest does not parse; its repository's links are kept");
                    continue;
                };
                for b in &info.blobs {
                    sqlx::query(
                        "INSERT INTO manifest_blobs (repository_id, manifest_digest, digest) \
                         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM repository_blobs \
                         WHERE repository_id = $1 AND digest = $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(repo_id)
                    .bind(&digest)
                    .bind(b.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                for c in &info.manifests {
                    sqlx::query(
                        "INSERT INTO manifest_children (repository_id, parent_digest, child_digest) \
                         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM manifests \
                         WHERE repository_id = $1 AND digest = $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(repo_id)
                    .bind(&digest)
                    .bind(c.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE manifests SET refs_recorded = 1 WHERE repository_id = $1 AND digest = $2",
                )
                .bind(repo_id)
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
                progressed = true;
            }
            tx.commit().await?;
            if !progressed {
                return Ok(());
            }
        }
    }

    /// Retention: delete manifests untagged since before `untagged_before`
    /// that nothing protects ([`crate::retention`]), pass after pass.
    async fn sweep_manifests(
        &self,
        options: &GcOptions,
        untagged_before: i64,
        p: &mut Progress,
    ) -> Result<(), StoreError> {
        for _ in 0..RETENTION_PASSES {
            let candidates = crate::retention::expired(&self.meta, untagged_before, None).await?;
            if options.dry_run {
                // Only the first pass: what it would free is found by the
                // run after it (docs/architecture.md).
                for m in candidates {
                    p.add(manifest_deletion(m), None);
                }
                return Ok(());
            }
            if candidates.is_empty() {
                return Ok(());
            }
            let mut deleted_any = false;
            let mut pacer = Pacer::new(LINK_BATCH);
            let mut rest = &candidates[..];
            while !rest.is_empty() {
                let (batch, tail) = rest.split_at(pacer.size().min(rest.len()));
                rest = tail;
                let started = Instant::now();
                let deleted = crate::retention::delete(&self.meta, untagged_before, batch).await?;
                pacer.record(started.elapsed(), batch.len()).await;
                for m in deleted {
                    deleted_any = true;
                    p.add(manifest_deletion(m), options.sink.as_ref());
                }
                self.progress(p, "manifests", false).await?;
            }
            if !deleted_any {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Delete links no manifest of their repository references, older than
    /// the grace period.
    async fn sweep_links(
        &self,
        options: &GcOptions,
        cutoff: i64,
        p: &mut Progress,
    ) -> Result<(), StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT l.repository_id, r.name, l.digest, b.size FROM repository_blobs l \
             JOIN repositories r ON r.id = l.repository_id JOIN blobs b ON b.digest = l.digest \
             WHERE {GARBAGE_LINK} ORDER BY l.repository_id, l.digest"
        ))
        .bind(cutoff)
        .fetch_all(self.meta.read_pool())
        .await?;
        let mut candidates = Vec::with_capacity(rows.len());
        for r in &rows {
            candidates.push((
                r.try_get::<i64, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?,
                r.try_get::<i64, _>(3)? as u64,
            ));
        }
        if options.dry_run {
            for (_, repo, digest, size) in candidates {
                p.add(
                    GcDeletion {
                        kind: GcKind::BlobLink,
                        repository: Some(repo),
                        digest,
                        size,
                    },
                    None,
                );
            }
            return Ok(());
        }
        let delete_sql = format!(
            "DELETE FROM repository_blobs WHERE repository_id = $2 AND digest = $3 AND \
             EXISTS (SELECT 1 FROM repository_blobs l WHERE l.repository_id = $2 \
             AND l.digest = $3 AND {GARBAGE_LINK})"
        );
        let mut pacer = Pacer::new(LINK_BATCH);
        let mut rest = &candidates[..];
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(pacer.size().min(rest.len()));
            rest = tail;
            let started = Instant::now();
            let deleted = match self.delete_links(&delete_sql, cutoff, batch).await {
                Ok(d) => d,
                Err(e) if is_foreign_key_violation(&e) || is_retryable(&e) => {
                    // A manifest referencing one of them committed meanwhile,
                    // or a push deadlocked with the batch (PostgreSQL): one
                    // transaction each, skipping those (the next run sees
                    // them again).
                    let mut deleted = Vec::new();
                    for one in batch {
                        match self
                            .delete_links(&delete_sql, cutoff, std::slice::from_ref(one))
                            .await
                        {
                            Ok(d) => deleted.extend(d),
                            Err(e) if is_foreign_key_violation(&e) || is_retryable(&e) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    deleted
                }
                Err(e) => return Err(e.into()),
            };
            pacer.record(started.elapsed(), batch.len()).await;
            for (_, repo, digest, size) in deleted {
                p.add(
                    GcDeletion {
                        kind: GcKind::BlobLink,
                        repository: Some(repo),
                        digest,
                        size,
                    },
                    options.sink.as_ref(),
                );
            }
            self.progress(p, "links", false).await?;
        }
        Ok(())
    }

    /// Delete the given links in one transaction; those deleted.
    async fn delete_links(
        &self,
        sql: &str,
        cutoff: i64,
        batch: &[(i64, String, String, u64)],
    ) -> Result<Vec<(i64, String, String, u64)>, sqlx::Error> {
        let mut tx = self.meta.write_pool().begin().await?;
        let mut deleted = Vec::new();
        for entry in batch {
            let (repo_id, _, digest, _) = entry;
            let res = sqlx::query(sql)
                .bind(cutoff)
                .bind(*repo_id)
                .bind(digest)
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() > 0 {
                deleted.push(entry.clone());
            }
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Delete blobs no link names: the row and the bytes in one
    /// transaction, holding the row.
    async fn sweep_blobs(
        &self,
        options: &GcOptions,
        cutoff: i64,
        p: &mut Progress,
    ) -> Result<(), StoreError> {
        // In a dry run the links are still there: a blob counts when every
        // link it has is garbage.
        let rows = if options.dry_run {
            sqlx::query(&format!(
                "SELECT b.digest, b.size FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM \
                 repository_blobs l WHERE l.digest = b.digest AND NOT ({GARBAGE_LINK}))"
            ))
            .bind(cutoff)
            .fetch_all(self.meta.read_pool())
            .await?
        } else {
            sqlx::query(
                "SELECT b.digest, b.size FROM blobs b WHERE NOT EXISTS \
                 (SELECT 1 FROM repository_blobs l WHERE l.digest = b.digest) ORDER BY b.digest",
            )
            .fetch_all(self.meta.read_pool())
            .await?
        };
        let mut candidates = Vec::with_capacity(rows.len());
        for r in &rows {
            candidates.push((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)? as u64));
        }
        if options.dry_run {
            for (digest, size) in candidates {
                p.add(
                    GcDeletion {
                        kind: GcKind::Blob,
                        repository: None,
                        digest,
                        size,
                    },
                    None,
                );
            }
            return Ok(());
        }
        let mut pacer = Pacer::new(self.blob_batch());
        let mut rest = &candidates[..];
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(pacer.size().min(rest.len()));
            rest = tail;
            let started = Instant::now();
            let doomed = match self.delete_blob_batch(batch).await {
                Ok(d) => d,
                Err(e) if store_retryable(&e) => {
                    // Deadlocked with pushes (PostgreSQL): one at a time,
                    // skipping any that deadlock again.
                    let mut doomed = Vec::new();
                    for one in batch {
                        match self.delete_blob_batch(std::slice::from_ref(one)).await {
                            Ok(d) => doomed.extend(d),
                            Err(e) if store_retryable(&e) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    doomed
                }
                Err(e) => return Err(e),
            };
            pacer.record(started.elapsed(), batch.len()).await;
            for (d, size) in doomed {
                p.add(
                    GcDeletion {
                        kind: GcKind::Blob,
                        repository: None,
                        digest: d.to_string(),
                        size,
                    },
                    options.sink.as_ref(),
                );
            }
            self.progress(p, "blobs", false).await?;
        }
        Ok(())
    }

    /// Delete the rows of `batch` that no link names, and their bytes, in
    /// one transaction holding the rows; those deleted.
    async fn delete_blob_batch(
        &self,
        batch: &[(String, u64)],
    ) -> Result<Vec<(Digest, u64)>, StoreError> {
        let mut tx = self.meta.write_pool().begin().await?;
        let mut doomed = Vec::new();
        for (digest, size) in batch {
            if self.meta.backend() == Backend::Postgres {
                let held = sqlx::query("SELECT 1 FROM blobs WHERE digest = $1 FOR UPDATE")
                    .bind(digest)
                    .fetch_optional(&mut *tx)
                    .await?;
                if held.is_none() {
                    continue;
                }
            }
            let res = sqlx::query(
                "DELETE FROM blobs WHERE digest = $1 AND NOT EXISTS \
                 (SELECT 1 FROM repository_blobs l WHERE l.digest = $1)",
            )
            .bind(digest)
            .execute(&mut *tx)
            .await?;
            if res.rows_affected() > 0 {
                if let Ok(d) = digest.parse::<Digest>() {
                    doomed.push((d, *size));
                }
            }
        }
        // Bytes go while the rows are held; the commit follows. A crash in
        // between leaves rows without bytes and without links.
        self.delete_bytes(doomed.iter().map(|(d, _)| d)).await?;
        tx.commit().await?;
        Ok(doomed)
    }

    /// Delete bytes no row names (left by a crash between an upload's bytes
    /// and its row), older than the grace period. Each is claimed by
    /// inserting its row first, so an upload of the same digest waits.
    async fn sweep_orphans(
        &self,
        options: &GcOptions,
        cutoff: i64,
        p: &mut Progress,
    ) -> Result<(), StoreError> {
        let listed = self.blobs.list_blobs_with_times().await?;
        let known: HashSet<String> = sqlx::query("SELECT digest FROM blobs")
            .fetch_all(self.meta.read_pool())
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        let orphans: Vec<(Digest, u64)> = listed
            .into_iter()
            .filter(|(d, _, modified)| *modified < cutoff && !known.contains(&d.to_string()))
            .map(|(d, size, _)| (d, size))
            .collect();
        if options.dry_run {
            for (d, size) in orphans {
                p.add(
                    GcDeletion {
                        kind: GcKind::Blob,
                        repository: None,
                        digest: d.to_string(),
                        size,
                    },
                    None,
                );
            }
            return Ok(());
        }
        let mut pacer = Pacer::new(self.blob_batch());
        let mut rest = &orphans[..];
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(pacer.size().min(rest.len()));
            rest = tail;
            let started = Instant::now();
            let mut tx = self.meta.write_pool().begin().await?;
            let mut claimed = Vec::new();
            for (d, size) in batch {
                let res = sqlx::query(
                    "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, 0) \
                     ON CONFLICT (digest) DO NOTHING",
                )
                .bind(d.to_string())
                .bind(*size as i64)
                .execute(&mut *tx)
                .await?;
                if res.rows_affected() == 1 {
                    claimed.push((d.clone(), *size));
                }
            }
            self.delete_bytes(claimed.iter().map(|(d, _)| d)).await?;
            for (d, _) in &claimed {
                sqlx::query("DELETE FROM blobs WHERE digest = $1")
                    .bind(d.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            pacer.record(started.elapsed(), batch.len()).await;
            for (d, size) in claimed {
                p.add(
                    GcDeletion {
                        kind: GcKind::Blob,
                        repository: None,
                        digest: d.to_string(),
                        size,
                    },
                    options.sink.as_ref(),
                );
            }
            self.progress(p, "orphans", false).await?;
        }
        Ok(())
    }

    fn blob_batch(&self) -> usize {
        match self.blobs {
            BlobBackend::Filesystem(_) => FS_BLOB_BATCH,
            BlobBackend::ObjectStorage(_) => OBJECT_BLOB_BATCH,
        }
    }

    async fn delete_bytes<'a>(
        &self,
        digests: impl Iterator<Item = &'a Digest>,
    ) -> Result<(), StoreError> {
        let deletes = digests.map(|d| self.blobs.delete_blob(d));
        for r in futures::future::join_all(deletes).await {
            r?;
        }
        Ok(())
    }

    /// The record of run `id`.
    pub async fn get(&self, id: &str) -> Result<Option<GcRun>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM gc_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.meta.read_pool())
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// The running collection, if any.
    pub async fn running(&self) -> Result<Option<GcRun>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM gc_runs WHERE state = 'running' \
             ORDER BY started_at DESC LIMIT 1"
        ))
        .fetch_optional(self.meta.read_pool())
        .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// The latest `n` runs, newest first.
    pub async fn recent(&self, n: i64) -> Result<Vec<GcRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM gc_runs ORDER BY started_at DESC LIMIT $1"
        ))
        .bind(n)
        .fetch_all(self.meta.read_pool())
        .await?;
        rows.iter().map(run_row).collect()
    }
}

fn manifest_deletion(m: crate::retention::Expired) -> GcDeletion {
    GcDeletion {
        kind: GcKind::Manifest,
        repository: Some(m.repository),
        digest: m.digest,
        size: m.size,
    }
}

/// Sizes the deleting transactions so that each holds the writer for about
/// [`BATCH_TARGET`]: a batch that took longer shrinks the next one in
/// proportion, one that took less than half of it doubles the next (up to
/// the phase's maximum). Pushes wait for the writer at most about one
/// batch, whatever the machine, the backend or the load.
#[derive(Debug)]
pub(crate) struct Pacer {
    size: usize,
    max: usize,
}

impl Pacer {
    /// Start small (a quarter of `max`, at least 1).
    pub(crate) fn new(max: usize) -> Pacer {
        let max = max.max(1);
        Pacer {
            size: (max / 4).max(1),
            max,
        }
    }

    /// The size of the next batch.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Adjust to a batch of `n` that held the writer for `took`, then
    /// pause so that waiting writers go first.
    pub(crate) async fn record(&mut self, took: Duration, n: usize) {
        self.adjust(took, n);
        tokio::time::sleep(BATCH_PAUSE).await;
    }

    fn adjust(&mut self, took: Duration, n: usize) {
        let n = n.max(1);
        if took > BATCH_TARGET {
            let scaled = (n as u128 * BATCH_TARGET.as_micros()) / took.as_micros().max(1);
            self.size = (scaled as usize).clamp(1, self.max);
        } else if took < BATCH_TARGET / 2 && n >= self.size {
            self.size = (self.size * 2).min(self.max);
        }
    }
}

/// The garbage condition of a link `l`, with the cutoff as `$1`: older than
/// the grace period, no manifest of its repository references it, and every
/// manifest of the repository has its references recorded.
const GARBAGE_LINK: &str = "l.created_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.repository_id = l.repository_id \
     AND mb.digest = l.digest) \
     AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = l.repository_id \
     AND m.refs_recorded = 0)";

/// Whether a store error is a PostgreSQL deadlock or serialization failure.
fn store_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Internal(a) => a
            .chain()
            .filter_map(|c| c.downcast_ref::<sqlx::Error>())
            .any(is_retryable),
        _ => false,
    }
}

const RUN_COLUMNS: &str = "id, replica, dry_run, state, phase, started_at, updated_at, \
     finished_at, manifests, links, blobs, bytes_freed, error, report";

fn run_row(r: &sqlx::any::AnyRow) -> Result<GcRun, StoreError> {
    let started_at: i64 = r.try_get(5)?;
    let updated_at: i64 = r.try_get(6)?;
    let finished_at: Option<i64> = r.try_get(7)?;
    let report: Option<String> = r.try_get(13)?;
    let (deleted, truncated) = report
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .map(|v| {
            let deleted = v
                .get("deleted")
                .cloned()
                .and_then(|d| serde_json::from_value::<Vec<DeletionRecord>>(d).ok())
                .unwrap_or_default()
                .into_iter()
                .map(DeletionRecord::into_deletion)
                .collect();
            let truncated = v
                .get("truncated")
                .and_then(|t| t.as_bool())
                .unwrap_or(false);
            (deleted, truncated)
        })
        .unwrap_or_default();
    Ok(GcRun {
        id: r.try_get(0)?,
        replica: r.try_get(1)?,
        dry_run: r.try_get::<i64, _>(2)? != 0,
        state: r.try_get(3)?,
        phase: r.try_get(4)?,
        started_at,
        updated_at,
        finished_at,
        manifests: r.try_get::<i64, _>(8)? as u64,
        links: r.try_get::<i64, _>(9)? as u64,
        blobs: r.try_get::<i64, _>(10)? as u64,
        bytes_freed: r.try_get::<i64, _>(11)? as u64,
        duration_ms: finished_at.unwrap_or(updated_at) - started_at,
        error: r.try_get(12)?,
        deleted,
        truncated,
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletionRecord {
    kind: String,
    repository: Option<String>,
    digest: String,
    size: u64,
}

impl DeletionRecord {
    fn into_deletion(self) -> GcDeletion {
        GcDeletion {
            kind: match self.kind.as_str() {
                "manifest" => GcKind::Manifest,
                "blob_link" => GcKind::BlobLink,
                _ => GcKind::Blob,
            },
            repository: self.repository,
            digest: self.digest,
            size: self.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_shrinks_slow_batches_and_grows_fast_ones() {
        let mut p = Pacer::new(256);
        assert_eq!(p.size(), 64);
        // 64 in 80 ms: four times the target, so a quarter as many.
        p.adjust(Duration::from_millis(80), 64);
        assert_eq!(p.size(), 16);
        // Far slower than the target: never below one.
        p.adjust(Duration::from_secs(5), 16);
        assert_eq!(p.size(), 1);
        // Fast batches double up to the maximum.
        for _ in 0..20 {
            let n = p.size();
            p.adjust(Duration::from_millis(1), n);
        }
        assert_eq!(p.size(), 256);
        // A short last batch that was fast says nothing about bigger ones.
        let mut p = Pacer::new(256);
        p.adjust(Duration::from_millis(1), 3);
        assert_eq!(p.size(), 64);
        // Within the band: unchanged.
        p.adjust(Duration::from_millis(15), 64);
        assert_eq!(p.size(), 64);
    }
}
