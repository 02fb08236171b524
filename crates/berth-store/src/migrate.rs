//! `berth storage migrate`: move an embedded registry (SQLite `meta.db` and
//! the files under `<data-dir>/blobs`) to PostgreSQL and a blob store.
//!
//! The copy is idempotent, so an interrupted run is resumed by running the
//! same command again:
//!
//! 1. The target database is migrated and checked: it must be empty (only
//!    the rows its migrations seed) or carry the `storage_migration` row of
//!    an earlier run from the same source directory; anything else is
//!    refused before a byte is written.
//! 2. Every blob the source's `blobs` table lists is streamed from its file
//!    to the blob store, hashed on the way; the upload is completed only
//!    when the digest and size match, so a blob object on the target is
//!    always whole and right. Blobs already on the target with the right
//!    size are skipped.
//! 3. Every table is copied in foreign-key order, in batches, with
//!    `ON CONFLICT DO NOTHING` (rows a previous run copied are skipped; the
//!    two one-row tables the migrations seed, `registry_settings` and
//!    `admin_account`, are overwritten with the source's row). Metadata is
//!    copied after the blobs, so no row on the target ever names a missing
//!    object. Identity sequences are moved past the copied ids.
//! 4. `storage_migration.finished_at` is set.
//!
//! Upload sessions in progress (files in `<data-dir>/blobs/_uploads`) and
//! the failed-login throttle windows are not moved: clients restart those
//! uploads, and the throttle starts afresh.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_core::Digest;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::BlobBackend;
use crate::database_url::DatabaseUrl;
use crate::error::StoreError;
use crate::meta::MetaStore;
use crate::now_ms;
use crate::object::location::BlobStoreLocation;

/// Tables in the order they are copied (parents before children). Tables
/// present in both databases but missing here (added by a later migration)
/// are copied after these, in name order.
const TABLE_ORDER: &[&str] = &[
    "repositories",
    "blobs",
    "repository_blobs",
    "manifests",
    "tags",
    "absent_references",
    "registry_settings",
    "login_names",
    "directory_users",
    "directory_groups",
    "directory_group_members",
    "service_principals",
    "service_principal_secrets",
    "admin_account",
    "scope_maps",
    "repository_tokens",
    "role_assignments",
    "network_rules",
    "signing_keys",
    "workload_identities",
    "audit_login_events",
    "audit_repository_events",
    "audit_explain",
    "portal_sessions",
];

/// Tables never copied: sqlx's bookkeeping, the migration's own marker,
/// upload sessions (their bytes are local files) and the login throttle's
/// short-lived windows.
const SKIPPED_TABLES: &[&str] = &[
    "_sqlx_migrations",
    "storage_migration",
    "uploads",
    "login_throttle",
    "token_strikes",
];

/// One-row tables the migrations seed: the source's row replaces the seed.
const SINGLETON_TABLES: &[&str] = &["registry_settings", "admin_account"];

/// Rows per INSERT batch (and an early flush past this many bytes).
const BATCH_ROWS: usize = 200;
const BATCH_BYTES: usize = 4 << 20;

/// Blobs copied at once.
const BLOB_CONCURRENCY: usize = 4;

/// Read size when streaming a blob file.
const CHUNK: usize = 1 << 20;

/// Where to move an embedded registry.
#[derive(Debug, Clone)]
pub struct MigrationPlan {
    /// The embedded registry's data directory (holding `meta.db`).
    pub from_data_dir: PathBuf,
    /// The PostgreSQL database to move the metadata into.
    pub database: DatabaseUrl,
    /// The blob store to move the blob bytes into.
    pub blob_store: BlobStoreLocation,
}

/// Hooks for a progress display; every method has an empty default.
pub trait MigrationProgress: Send + Sync {
    /// The blob phase starts: `count` blobs of `bytes` bytes in all.
    fn blobs_start(&self, _count: u64, _bytes: u64) {}
    /// One blob is done (`bytes` long, copied or already there).
    fn blob_done(&self, _bytes: u64) {}
    /// The blob phase is over.
    fn blobs_finish(&self) {}
    /// Copying `table` (`rows` rows in the source) starts.
    fn table_start(&self, _table: &str, _rows: u64) {}
    /// `rows` more rows of the current table are done.
    fn rows_done(&self, _rows: u64) {}
    /// The current table is done.
    fn table_finish(&self) {}
}

/// A progress display that shows nothing.
pub struct NoProgress;
impl MigrationProgress for NoProgress {}

/// Blob counts of a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BlobCounts {
    /// Blobs the source lists.
    pub total: u64,
    /// Blobs copied by this run.
    pub copied: u64,
    /// Blobs already on the target (an earlier run copied them).
    pub skipped: u64,
    /// Bytes of all the source's blobs.
    pub bytes_total: u64,
    /// Bytes copied by this run.
    pub bytes_copied: u64,
}

/// Row counts of one table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableCount {
    /// Table name.
    pub table: String,
    /// Rows in the source.
    pub source: u64,
    /// Rows this run inserted (or, for the one-row settings tables,
    /// overwrote).
    pub copied: u64,
    /// Rows already on the target.
    pub skipped: u64,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    /// The source data directory.
    pub source: String,
    /// The target database (password shown as `***`).
    pub database: String,
    /// The target blob store.
    pub blob_store: String,
    /// Whether this run continued an earlier one.
    pub resumed: bool,
    /// Blob counts.
    pub blobs: BlobCounts,
    /// Row counts, in copy order.
    pub tables: Vec<TableCount>,
}

/// A fault injected for tests of resumption (`BERTH_TEST_MIGRATE_ABORT`:
/// `blobs:N` or `rows:N`): the process aborts, as if killed, after that
/// many blobs or table rows were written.
#[derive(Debug, Clone, Copy)]
enum Abort {
    Blobs(u64),
    Rows(u64),
}

fn abort_hook() -> Option<Abort> {
    let v = std::env::var("BERTH_TEST_MIGRATE_ABORT").ok()?;
    let (kind, n) = v.split_once(':')?;
    let n = n.parse().ok()?;
    match kind {
        "blobs" => Some(Abort::Blobs(n)),
        "rows" => Some(Abort::Rows(n)),
        _ => None,
    }
}

fn fail(msg: impl Into<String>) -> StoreError {
    StoreError::Internal(anyhow::anyhow!(msg.into()))
}

/// Run (or resume) the migration `plan` describes.
pub async fn migrate(
    plan: &MigrationPlan,
    progress: &dyn MigrationProgress,
) -> Result<MigrationReport, StoreError> {
    let dir = &plan.from_data_dir;
    let meta_db = dir.join("meta.db");
    if !meta_db.is_file() {
        return Err(StoreError::Invalid(format!(
            "{} holds no embedded registry (no meta.db)",
            dir.display()
        )));
    }
    let source_name = std::fs::canonicalize(dir)?.display().to_string();
    let source = MetaStore::open_sqlite(&meta_db).await?;
    let source_blobs = BlobBackend::open(dir, None).await?;
    let BlobBackend::Filesystem(source_fs) = &source_blobs else {
        return Err(fail("the source blob store is not a directory"));
    };
    if let BlobStoreLocation::Filesystem(d) = &plan.blob_store {
        if std::fs::canonicalize(d).ok() == std::fs::canonicalize(source_fs.blobs_dir()).ok() {
            return Err(StoreError::Invalid(
                "the target blob store is the source's own blob directory".into(),
            ));
        }
    }
    let target = MetaStore::open_postgres(&plan.database).await?;
    let target_blobs = BlobBackend::open(dir, Some(&plan.blob_store)).await?;
    target_blobs.check_ready().await?;

    let abort = abort_hook();
    let resumed = claim_target(&target, &target_blobs, &source_name, plan).await?;

    let blobs = copy_blobs(&source, source_fs, &target_blobs, progress, abort).await?;

    let tables = copy_tables(source.read_pool(), target.write_pool(), progress, abort).await?;
    reset_sequences(target.write_pool()).await?;
    sqlx::query("UPDATE storage_migration SET finished_at = $1 WHERE id = 1")
        .bind(now_ms())
        .execute(target.write_pool())
        .await?;
    source.close().await;
    target.close().await;
    Ok(MigrationReport {
        source: source_name,
        database: plan.database.to_string(),
        blob_store: plan.blob_store.to_string(),
        resumed,
        blobs,
        tables,
    })
}

/// Check that the target is empty or an earlier run of this migration,
/// and record this run. Returns whether it resumes an earlier run.
async fn claim_target(
    target: &MetaStore,
    blobs: &BlobBackend,
    source: &str,
    plan: &MigrationPlan,
) -> Result<bool, StoreError> {
    let pool = target.write_pool();
    let previous: Option<String> = sqlx::query("SELECT source FROM storage_migration WHERE id = 1")
        .fetch_optional(pool)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    match previous {
        Some(p) if p == source => return Ok(true),
        Some(p) => {
            return Err(StoreError::Conflict(format!(
                "{} already holds a registry migrated from {p}, not from {source}; \
                 migrate into an empty database",
                plan.database
            )))
        }
        None => {}
    }
    if let Some(what) = first_content(pool).await? {
        return Err(StoreError::Conflict(format!(
            "{} is not empty ({what}) and no earlier `berth storage migrate` from {source} \
             wrote it; migrate into an empty database and blob store",
            plan.database
        )));
    }
    if !blobs.list_blobs().await?.is_empty() {
        return Err(StoreError::Conflict(format!(
            "blob store {} already holds blobs and no earlier `berth storage migrate` from \
             {source} wrote them; migrate into an empty blob store",
            plan.blob_store
        )));
    }
    let claimed = sqlx::query(
        "INSERT INTO storage_migration (id, source, started_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(source)
    .bind(now_ms())
    .execute(pool)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Err(StoreError::Conflict(format!(
            "another `berth storage migrate` started on {} at the same time",
            plan.database
        )));
    }
    Ok(false)
}

/// What makes the target non-empty, if anything: a row beyond the ones the
/// migrations seed.
async fn first_content(pool: &AnyPool) -> Result<Option<String>, StoreError> {
    let checks: &[(&str, &str)] = &[
        ("repositories", "SELECT COUNT(*) FROM repositories"),
        ("blobs", "SELECT COUNT(*) FROM blobs"),
        ("users", "SELECT COUNT(*) FROM directory_users"),
        ("groups", "SELECT COUNT(*) FROM directory_groups"),
        (
            "service principals",
            "SELECT COUNT(*) FROM service_principals",
        ),
        ("tokens", "SELECT COUNT(*) FROM repository_tokens"),
        (
            "scope maps",
            "SELECT COUNT(*) FROM scope_maps WHERE system = 0",
        ),
        ("role assignments", "SELECT COUNT(*) FROM role_assignments"),
        ("network rules", "SELECT COUNT(*) FROM network_rules"),
        ("signing keys", "SELECT COUNT(*) FROM signing_keys"),
        ("audit events", "SELECT COUNT(*) FROM audit_login_events"),
        (
            "audit events",
            "SELECT COUNT(*) FROM audit_repository_events",
        ),
        (
            "changed settings",
            "SELECT COUNT(*) FROM registry_settings WHERE updated_at <> 0",
        ),
        (
            "an admin account",
            "SELECT COUNT(*) FROM admin_account WHERE updated_at <> 0",
        ),
    ];
    for (what, sql) in checks {
        let n: i64 = sqlx::query(sql).fetch_one(pool).await?.try_get(0)?;
        if n > 0 {
            return Ok(Some(format!("it has {what}")));
        }
    }
    Ok(None)
}

/// Stream every blob the source lists to the target.
async fn copy_blobs(
    source: &MetaStore,
    source_fs: &crate::blobs::FsBlobStore,
    target: &BlobBackend,
    progress: &dyn MigrationProgress,
    abort: Option<Abort>,
) -> Result<BlobCounts, StoreError> {
    let rows = sqlx::query("SELECT digest, size FROM blobs ORDER BY digest")
        .fetch_all(source.read_pool())
        .await?;
    let mut list = Vec::with_capacity(rows.len());
    for r in &rows {
        let d: String = r.try_get(0)?;
        let digest: Digest = d
            .parse()
            .map_err(|e| fail(format!("source blob row {d:?}: {e}")))?;
        let size: i64 = r.try_get(1)?;
        list.push((digest, size as u64));
    }
    let mut counts = BlobCounts {
        total: list.len() as u64,
        bytes_total: list.iter().map(|(_, s)| s).sum(),
        ..Default::default()
    };
    progress.blobs_start(counts.total, counts.bytes_total);
    let written = Arc::new(AtomicU64::new(0));
    let results: Vec<(u64, bool)> =
        futures::stream::iter(list.into_iter().map(|(digest, size)| {
            let path = source_fs.blob_path(&digest);
            let written = written.clone();
            async move {
                let copied = copy_one_blob(target, &digest, size, &path).await?;
                progress.blob_done(size);
                if copied {
                    let n = written.fetch_add(1, Ordering::SeqCst) + 1;
                    if let Some(Abort::Blobs(limit)) = abort {
                        if n >= limit {
                            std::process::abort();
                        }
                    }
                }
                Ok::<_, StoreError>((size, copied))
            }
        }))
        .buffer_unordered(BLOB_CONCURRENCY)
        .try_collect()
        .await?;
    for (size, copied) in results {
        if copied {
            counts.copied += 1;
            counts.bytes_copied += size;
        } else {
            counts.skipped += 1;
        }
    }
    progress.blobs_finish();
    Ok(counts)
}

/// Copy one blob file unless the target has it already; returns whether
/// it was copied.
async fn copy_one_blob(
    target: &BlobBackend,
    digest: &Digest,
    size: u64,
    path: &Path,
) -> Result<bool, StoreError> {
    if target.stat_blob(digest).await? == Some(size) {
        return Ok(false);
    }
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| fail(format!("source blob {digest} ({}): {e}", path.display())))?;
    let mut hasher = digest.algorithm().hasher();
    let mut buf = vec![0u8; CHUNK];
    let mut writer = target.blob_writer(digest).await?;
    let mut seen = 0u64;
    loop {
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                writer.abort().await;
                return Err(e.into());
            }
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        seen += n as u64;
        if let Err(e) = writer.write(&buf[..n]).await {
            writer.abort().await;
            return Err(e);
        }
    }
    let got = hasher.finish();
    if &got != digest || seen != size {
        writer.abort().await;
        return Err(fail(format!(
            "source blob {digest} is damaged: its file ({}) has {seen} bytes with digest {got}, \
             the database says {size} bytes",
            path.display()
        )));
    }
    writer.finish().await?;
    Ok(true)
}

/// The column names and PostgreSQL types of `table` on the target.
async fn target_columns(pool: &AnyPool, table: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The tables to copy, in order: [`TABLE_ORDER`], then any other table both
/// sides have.
async fn tables_to_copy(source: &AnyPool, target: &AnyPool) -> Result<Vec<String>, StoreError> {
    let src: HashSet<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(source)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    let mut dst: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(target)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    dst.retain(|t| src.contains(t) && !SKIPPED_TABLES.contains(&t.as_str()));
    let mut out: Vec<String> = TABLE_ORDER
        .iter()
        .filter(|t| dst.iter().any(|d| d == *t))
        .map(|t| t.to_string())
        .collect();
    for t in dst {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// A value read from SQLite, typed for the PostgreSQL column.
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Value {
    fn len(&self) -> usize {
        match self {
            Value::Int(_) => 8,
            Value::Text(s) => s.as_ref().map_or(0, |s| s.len()),
            Value::Bytes(b) => b.as_ref().map_or(0, |b| b.len()),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Bytes,
}

fn kind_of(pg_type: &str) -> Kind {
    match pg_type {
        "bigint" | "integer" | "smallint" => Kind::Int,
        "bytea" => Kind::Bytes,
        _ => Kind::Text,
    }
}

fn read_value(row: &AnyRow, i: usize, kind: Kind) -> Result<Value, StoreError> {
    Ok(match kind {
        Kind::Int => Value::Int(row.try_get(i)?),
        Kind::Text => Value::Text(row.try_get(i)?),
        Kind::Bytes => Value::Bytes(row.try_get(i)?),
    })
}

/// Copy every table, batch by batch.
async fn copy_tables(
    source: &AnyPool,
    target: &AnyPool,
    progress: &dyn MigrationProgress,
    abort: Option<Abort>,
) -> Result<Vec<TableCount>, StoreError> {
    let mut out = Vec::new();
    let mut written = 0u64;
    for table in tables_to_copy(source, target).await? {
        let src_cols: HashSet<String> =
            sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(source)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?;
        let cols: Vec<(String, Kind)> = target_columns(target, &table)
            .await?
            .into_iter()
            .filter(|(c, _)| src_cols.contains(c))
            .map(|(c, t)| (c, kind_of(&t)))
            .collect();
        if cols.is_empty() {
            continue;
        }
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(source)
            .await?
            .try_get(0)?;
        progress.table_start(&table, total as u64);
        let singleton = SINGLETON_TABLES.contains(&table.as_str());
        let col_list = cols
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let select = format!(
            "SELECT rowid, {col_list} FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT {BATCH_ROWS}"
        );
        let mut count = TableCount {
            table: table.clone(),
            source: total as u64,
            copied: 0,
            skipped: 0,
        };
        let mut last = i64::MIN;
        loop {
            let rows = sqlx::query(&select).bind(last).fetch_all(source).await?;
            if rows.is_empty() {
                break;
            }
            let mut batch: Vec<Vec<Value>> = Vec::new();
            let mut bytes = 0usize;
            for row in &rows {
                last = row.try_get(0)?;
                let mut values = Vec::with_capacity(cols.len());
                for (i, (_, kind)) in cols.iter().enumerate() {
                    let v = read_value(row, i + 1, *kind)?;
                    bytes += v.len();
                    values.push(v);
                }
                batch.push(values);
                if bytes >= BATCH_BYTES {
                    let n = insert_batch(target, &table, &cols, &batch, singleton).await?;
                    count.copied += n;
                    count.skipped += batch.len() as u64 - n;
                    progress.rows_done(batch.len() as u64);
                    written += batch.len() as u64;
                    batch.clear();
                    bytes = 0;
                }
            }
            if !batch.is_empty() {
                let n = insert_batch(target, &table, &cols, &batch, singleton).await?;
                count.copied += n;
                count.skipped += batch.len() as u64 - n;
                progress.rows_done(batch.len() as u64);
                written += batch.len() as u64;
            }
            if let Some(Abort::Rows(limit)) = abort {
                if written >= limit {
                    std::process::abort();
                }
            }
        }
        progress.table_finish();
        out.push(count);
    }
    Ok(out)
}

/// Insert `batch` into `table`; returns how many rows were new.
async fn insert_batch(
    target: &AnyPool,
    table: &str,
    cols: &[(String, Kind)],
    batch: &[Vec<Value>],
    singleton: bool,
) -> Result<u64, StoreError> {
    let names: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
    let mut n = 1;
    for r in 0..batch.len() {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${n}"));
            n += 1;
        }
        sql.push(')');
    }
    if singleton {
        let sets: Vec<String> = names
            .iter()
            .filter(|c| **c != "id")
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        sql.push_str(&format!(
            " ON CONFLICT (id) DO UPDATE SET {}",
            sets.join(", ")
        ));
    } else {
        sql.push_str(" ON CONFLICT DO NOTHING");
    }
    let mut q = sqlx::query(&sql);
    for row in batch {
        for v in row {
            q = match v {
                Value::Int(x) => q.bind(*x),
                Value::Text(x) => q.bind(x.clone()),
                Value::Bytes(x) => q.bind(x.clone()),
            };
        }
    }
    Ok(q.execute(target).await?.rows_affected())
}

/// Move every identity column's sequence past the largest copied id, so
/// that rows the registry inserts next get fresh ids.
async fn reset_sequences(target: &AnyPool) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .fetch_all(target)
    .await?;
    for r in rows {
        let table: String = r.try_get(0)?;
        let column: String = r.try_get(1)?;
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
             COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)::text"
        ))
        .fetch_one(target)
        .await?;
    }
    Ok(())
}

/// A blob being written to a target blob store; nothing is visible under
/// the blob's address before [`BlobWriter::finish`].
// One writer per blob copied: the size difference between the variants
// does not matter.
#[allow(clippy::large_enum_variant)]
pub enum BlobWriter {
    /// A temporary file in the target directory's uploads folder, renamed
    /// to the content address on finish.
    File {
        /// The open temporary file.
        file: tokio::fs::File,
        /// Its path.
        path: PathBuf,
        /// The target store.
        store: crate::blobs::FsBlobStore,
        /// The blob's digest.
        digest: Digest,
    },
    /// A buffered (multipart past its buffer) object upload, completed on
    /// finish.
    Object(Box<object_store::buffered::BufWriter>),
}

impl BlobWriter {
    /// Append bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            BlobWriter::File { file, .. } => Ok(file.write_all(bytes).await?),
            BlobWriter::Object(w) => w
                .write_all(bytes)
                .await
                .map_err(|e| fail(format!("writing to the blob store: {e}"))),
        }
    }

    /// Make the blob visible under its address.
    pub async fn finish(self) -> Result<(), StoreError> {
        match self {
            BlobWriter::File {
                mut file,
                path,
                store,
                digest,
            } => {
                file.flush().await?;
                drop(file);
                // Already present (a resumed run): the copy is not needed.
                if !store.commit(path.clone(), &digest).await? {
                    let _ = tokio::fs::remove_file(&path).await;
                }
                Ok(())
            }
            BlobWriter::Object(mut w) => w
                .shutdown()
                .await
                .map_err(|e| fail(format!("completing the blob store upload: {e}"))),
        }
    }

    /// Drop what was written.
    pub async fn abort(self) {
        match self {
            BlobWriter::File { path, .. } => {
                let _ = tokio::fs::remove_file(&path).await;
            }
            BlobWriter::Object(mut w) => {
                let _ = w.abort().await;
            }
        }
    }
}

impl BlobBackend {
    /// A writer for a complete blob whose digest the caller verifies before
    /// calling [`BlobWriter::finish`] (the migration's copy).
    pub async fn blob_writer(&self, digest: &Digest) -> Result<BlobWriter, StoreError> {
        match self {
            BlobBackend::Filesystem(fs) => {
                let path = fs.upload_path(&format!("migrate-{}", uuid::Uuid::new_v4()));
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                let file = tokio::fs::File::create(&path).await?;
                Ok(BlobWriter::File {
                    file,
                    path,
                    store: fs.clone(),
                    digest: digest.clone(),
                })
            }
            BlobBackend::ObjectStorage(os) => Ok(BlobWriter::Object(Box::new(
                object_store::buffered::BufWriter::with_capacity(
                    os.store().clone(),
                    os.path(&crate::object::ObjectBlobStore::blob_key(digest)),
                    8 << 20,
                ),
            ))),
        }
    }
}
