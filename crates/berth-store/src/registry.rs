//! The registry's storage operations, as the HTTP layer uses them.

use std::path::Path;
use std::sync::Arc;

use berth_core::manifest::parse_manifest;
use berth_core::{
    Algorithm, Descriptor, Digest, ErrorCode, OciError, Reference, RepositoryName, Tag,
};
use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::Mutex;

use crate::backend::BlobBackend;
use crate::database_url::DatabaseUrl;
use crate::error::StoreError;
use crate::meta::{MetaStore, PutManifestError};
use crate::object::location::BlobStoreLocation;
use crate::object::{upload as object_upload, ObjectRead};
use crate::stream::{hash_prefix, write_hashed, ByteStream};
use crate::validation::{CheckedReferences, ManifestValidation};

/// Upload sessions idle for longer than this are removed.
pub const UPLOAD_IDLE_EXPIRY_MS: i64 = 7 * 24 * 3600 * 1000;

/// State of an upload session as reported to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadStatus {
    /// Session id.
    pub id: String,
    /// Bytes acknowledged so far.
    pub size: u64,
}

/// A blob (or manifest served through the blob endpoint) ready to be sent.
pub enum BlobRead {
    /// A committed blob file.
    File {
        /// The open file.
        file: tokio::fs::File,
        /// Its size.
        size: u64,
    },
    /// Bytes held in the metadata store (a manifest).
    Bytes(Bytes),
    /// A committed blob on object storage.
    Object(ObjectRead),
}

impl BlobRead {
    /// Length in bytes.
    pub fn size(&self) -> u64 {
        match self {
            BlobRead::File { size, .. } => *size,
            BlobRead::Bytes(b) => b.len() as u64,
            BlobRead::Object(o) => o.size(),
        }
    }
}

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Digest of the content.
    pub digest: Digest,
    /// Media type for `Content-Type`.
    pub media_type: String,
    /// The exact pushed bytes.
    pub content: Bytes,
}

/// What a manifest PUT stored.
#[derive(Debug, Clone)]
pub struct PutManifestOutcome {
    /// Digest of the stored content.
    pub digest: Digest,
    /// The manifest's subject, if any (sent back as `OCI-Subject`).
    pub subject: Option<Digest>,
    /// The media type it was stored with.
    pub media_type: String,
    /// Its `artifactType`, if any.
    pub artifact_type: Option<String>,
}

/// In-process hash state of an upload, valid only while `offset` equals the
/// session's acknowledged size. Another process continuing the session
/// simply rebuilds it from the upload file.
struct HashState {
    hasher: berth_core::DigestHasher,
    offset: u64,
}

/// How the registry is opened beyond its data directory.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Where blob bytes live (`--blob-store`); `None`: `<data-dir>/blobs`.
    pub blob_store: Option<BlobStoreLocation>,
    /// Answer blob GETs on object storage with a redirect to a presigned
    /// URL (`--blob-redirect`).
    pub blob_redirect: bool,
    /// Metadata in PostgreSQL (`--database-url`); `None`: SQLite at
    /// `<data-dir>/meta.db`.
    pub database: Option<DatabaseUrl>,
}

/// The outcome of [`Registry::check_ready`]: each check, `Err` with why it
/// failed.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// The metadata database answered `SELECT 1`.
    pub database: Result<(), String>,
    /// The blob store accepted a write.
    pub blob_store: Result<(), String>,
}

impl Readiness {
    /// Whether every check passed.
    pub fn is_ready(&self) -> bool {
        self.database.is_ok() && self.blob_store.is_ok()
    }
}

/// The registry's storage.
pub struct Registry {
    blobs: BlobBackend,
    meta: MetaStore,
    sessions: DashMap<String, Arc<Mutex<Option<HashState>>>>,
    blob_redirect: bool,
    collector: crate::gc::Collector,
}

fn oci(code: ErrorCode, msg: impl Into<String>) -> StoreError {
    StoreError::Oci(OciError::with_message(code, msg))
}

impl Registry {
    /// Open the embedded store (filesystem blobs + SQLite) under `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, RegistryOptions::default()).await
    }

    /// Open the store under `data_dir` with blobs and metadata where
    /// `options` says.
    pub async fn open_with(data_dir: &Path, options: RegistryOptions) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(data_dir).await?;
        let blobs = BlobBackend::open(data_dir, options.blob_store.as_ref()).await?;
        Self::open_with_backend(
            data_dir,
            blobs,
            options.blob_redirect,
            options.database.as_ref(),
        )
        .await
    }

    /// Open the store under `data_dir` with an already opened blob backend
    /// (the backend test suite opens several in one process); metadata in
    /// PostgreSQL at `database` when given, else in SQLite at
    /// `<data_dir>/meta.db`.
    pub async fn open_with_backend(
        data_dir: &Path,
        blobs: BlobBackend,
        blob_redirect: bool,
        database: Option<&DatabaseUrl>,
    ) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(data_dir).await?;
        let meta = match database {
            Some(url) => MetaStore::open_postgres(url).await?,
            None => MetaStore::open_sqlite(&data_dir.join("meta.db")).await?,
        };
        Ok(Registry {
            collector: crate::gc::Collector::new(meta.clone(), blobs.clone()),
            blobs,
            meta,
            sessions: DashMap::new(),
            blob_redirect,
        })
    }

    /// The blob backend.
    pub fn blob_backend(&self) -> &BlobBackend {
        &self.blobs
    }

    /// Whether blob GETs on object storage are answered with a redirect to
    /// a presigned URL.
    pub fn blob_redirect(&self) -> bool {
        self.blob_redirect && matches!(self.blobs, BlobBackend::ObjectStorage(_))
    }

    /// The garbage collector (docs/architecture.md, "Garbage collection").
    pub fn collector(&self) -> &crate::gc::Collector {
        &self.collector
    }

    /// The metadata store.
    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// Whether this replica can serve: the metadata database answers a
    /// cheap query and the blob store accepts writes. Each failed check is
    /// named in the answer (`database`, `blob_store`).
    pub async fn check_ready(&self) -> Readiness {
        let database = self.meta.ping().await.map_err(|e| e.to_string());
        let blob_store = self.blobs.check_ready().await.map_err(|e| e.to_string());
        Readiness {
            database,
            blob_store,
        }
    }

    /// Close the database connections.
    pub async fn close(&self) {
        self.meta.close().await;
    }

    // ---- blobs ---------------------------------------------------------

    /// Size of a blob readable from `repo`, or `None`.
    pub async fn stat_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        if let Some(size) = self.meta.linked_blob_size(repo.as_str(), digest).await? {
            return Ok(Some(size));
        }
        Ok(self
            .meta
            .manifest_by_digest(repo.as_str(), digest)
            .await?
            .map(|m| m.content.len() as u64))
    }

    /// Open a blob readable from `repo`, or `None`.
    pub async fn read_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<BlobRead>, StoreError> {
        if let Some(size) = self.meta.linked_blob_size(repo.as_str(), digest).await? {
            return Ok(Some(match &self.blobs {
                BlobBackend::Filesystem(fs) => BlobRead::File {
                    file: fs.open_blob(digest).await?,
                    size,
                },
                BlobBackend::ObjectStorage(os) => BlobRead::Object(os.reader(digest, size)),
            }));
        }
        Ok(self
            .meta
            .manifest_by_digest(repo.as_str(), digest)
            .await?
            .map(|m| BlobRead::Bytes(m.content)))
    }

    /// Unlink a blob from `repo`. Returns whether it was linked.
    pub async fn delete_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        self.meta.unlink_blob(repo.as_str(), digest).await
    }

    /// Link a blob from `from` into `repo`. Returns whether `from` had it.
    pub async fn mount_blob(
        &self,
        repo: &RepositoryName,
        from: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        if !self.blobs.has_blob(digest).await? {
            return Ok(false);
        }
        self.meta
            .mount_blob(repo.as_str(), from.as_str(), digest)
            .await
    }

    /// Store a whole blob sent in one request (`POST ?digest=` or a
    /// session-less PUT): stream to a private upload file, verify, commit.
    pub async fn put_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: ByteStream,
        expected_len: Option<u64>,
    ) -> Result<(), StoreError> {
        let fs = match &self.blobs {
            BlobBackend::Filesystem(fs) => fs,
            BlobBackend::ObjectStorage(os) => {
                // A session row of its own, so the purge can abort the
                // multipart upload of a replica that died mid-request.
                let id = uuid::Uuid::new_v4().to_string();
                self.meta.create_upload(&id, repo.as_str()).await?;
                let mut row = self.meta.upload(&id).await?.ok_or_else(|| {
                    anyhow::anyhow!("upload row {id} vanished right after its creation")
                })?;
                row.object = object_upload::ObjectUploadState::for_algorithm(digest.algorithm());
                let res =
                    object_upload::finish(os, &self.meta, &row, None, body, digest, expected_len)
                        .await;
                if res.is_err() {
                    let _ = self.meta.delete_upload(&id).await;
                }
                return res.map(|_| ());
            }
        };
        let id = uuid::Uuid::new_v4().to_string();
        let path = fs.upload_path(&id);
        let file = std::fs::File::create(&path)?;
        let mut hasher = digest.algorithm().hasher();
        let result = write_hashed(file, 0, &mut hasher, body).await;
        let written = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(e);
            }
        };
        if let Some(len) = expected_len {
            if len != written {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(oci(
                    ErrorCode::SizeInvalid,
                    format!("Content-Length {len} but {written} bytes received"),
                ));
            }
        }
        let actual = hasher.finish();
        if &actual != digest {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(StoreError::Oci(
                OciError::new(ErrorCode::DigestInvalid)
                    .detail(serde_json::json!({"expected": digest.to_string(), "actual": actual.to_string()})),
            ));
        }
        fs.commit(path.clone(), digest).await?;
        let res = self
            .meta
            .commit_blob(repo.as_str(), digest, written, None, || {
                fs.ensure_committed(path.clone(), digest)
            })
            .await;
        let _ = tokio::fs::remove_file(&path).await;
        res
    }

    // ---- upload sessions ----------------------------------------------

    /// Start an upload session for `repo`.
    pub async fn start_upload(&self, repo: &RepositoryName) -> Result<UploadStatus, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        if let BlobBackend::Filesystem(fs) = &self.blobs {
            std::fs::File::create(fs.upload_path(&id))?;
        }
        self.meta.create_upload(&id, repo.as_str()).await?;
        Ok(UploadStatus { id, size: 0 })
    }

    async fn session_row(
        &self,
        repo: &RepositoryName,
        id: &str,
    ) -> Result<crate::meta::UploadRow, StoreError> {
        let unknown = || {
            oci(
                ErrorCode::BlobUploadUnknown,
                format!("upload {id} is unknown"),
            )
        };
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(unknown());
        }
        match self.meta.upload(id).await? {
            Some(row) if row.repository == repo.as_str() => Ok(row),
            _ => Err(unknown()),
        }
    }

    /// Status of an upload session.
    pub async fn upload_status(
        &self,
        repo: &RepositoryName,
        id: &str,
    ) -> Result<UploadStatus, StoreError> {
        let row = self.session_row(repo, id).await?;
        Ok(UploadStatus {
            id: row.id,
            size: row.size,
        })
    }

    /// Append a chunk. `range` is the `Content-Range` (inclusive start, end)
    /// when the client sent one; the chunk must start at the current size.
    pub async fn append_upload(
        &self,
        repo: &RepositoryName,
        id: &str,
        range: Option<(u64, u64)>,
        body: ByteStream,
    ) -> Result<UploadStatus, StoreError> {
        let row = self.session_row(repo, id).await?;
        let cell = self
            .sessions
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(None)))
            .clone();
        let mut guard = cell.lock().await;
        // Re-read under the lock: another request may have appended.
        let row = if guard.as_ref().is_some_and(|s| s.offset == row.size) {
            row
        } else {
            self.session_row(repo, id).await?
        };
        let size = row.size;
        if let Some((start, end)) = range {
            if start != size || end < start {
                return Err(StoreError::UploadRange { size });
            }
        }
        let fs = match &self.blobs {
            BlobBackend::Filesystem(fs) => fs,
            BlobBackend::ObjectStorage(os) => {
                let new_size = object_upload::append(os, &self.meta, &row, range, body).await?;
                return Ok(UploadStatus {
                    id: id.to_string(),
                    size: new_size,
                });
            }
        };
        let path = fs.upload_path(id);
        let file = match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The bytes are gone (a crash between commit steps, or a
                // purge): the session cannot continue.
                drop(guard);
                return Err(self.lost_upload(id).await);
            }
            Err(e) => return Err(e.into()),
        };
        if file.metadata()?.len() < size {
            // Fewer bytes on disk than acknowledged (lost in a power
            // failure): the session cannot be trusted any more.
            drop(guard);
            return Err(self.lost_upload(id).await);
        }
        let mut hasher = match guard.take() {
            Some(s) if s.offset == size => s.hasher,
            _ => hash_prefix(path.clone(), size, Algorithm::Sha256.hasher()).await?,
        };
        // Drop any unacknowledged tail left by an interrupted request.
        file.set_len(size)?;
        let written = write_hashed(file, size, &mut hasher, body).await?;
        if let Some((start, end)) = range {
            if written != end - start + 1 {
                return Err(oci(
                    ErrorCode::SizeInvalid,
                    format!(
                        "Content-Range {start}-{end} announces {} bytes but {written} were sent",
                        end - start + 1
                    ),
                ));
            }
        }
        let new_size = size + written;
        if !self.meta.advance_upload(id, size, new_size).await? {
            return Err(StoreError::UploadRange { size });
        }
        *guard = Some(HashState {
            hasher,
            offset: new_size,
        });
        Ok(UploadStatus {
            id: id.to_string(),
            size: new_size,
        })
    }

    /// Finish an upload: append the final chunk (possibly empty), verify the
    /// digest and commit the blob.
    pub async fn finish_upload(
        &self,
        repo: &RepositoryName,
        id: &str,
        range: Option<(u64, u64)>,
        body: ByteStream,
        digest: &Digest,
    ) -> Result<u64, StoreError> {
        let fs = match &self.blobs {
            BlobBackend::Filesystem(fs) => fs,
            BlobBackend::ObjectStorage(os) => {
                let cell = self
                    .sessions
                    .entry(id.to_string())
                    .or_insert_with(|| Arc::new(Mutex::new(None)))
                    .clone();
                let _guard = cell.lock().await;
                let row = self.session_row(repo, id).await?;
                if let Some((start, end)) = range {
                    if start != row.size || end < start {
                        return Err(StoreError::UploadRange { size: row.size });
                    }
                }
                let res =
                    object_upload::finish(os, &self.meta, &row, range, body, digest, None).await;
                if let Err(StoreError::Oci(e)) = &res {
                    if matches!(e.code, ErrorCode::DigestInvalid | ErrorCode::SizeInvalid) {
                        let _ = self.meta.delete_upload(id).await;
                    }
                }
                self.sessions.remove(id);
                return res;
            }
        };
        let status = self.append_upload(repo, id, range, body).await?;
        let cell = self.sessions.get(id).map(|c| c.clone());
        let state = match &cell {
            Some(c) => c.lock().await.take(),
            None => None,
        };
        let path = fs.upload_path(id);
        let actual = match state {
            Some(s) if s.offset == status.size && s.hasher.algorithm() == digest.algorithm() => {
                s.hasher.finish()
            }
            _ => hash_prefix(path.clone(), status.size, digest.algorithm().hasher())
                .await?
                .finish(),
        };
        if &actual != digest {
            self.discard_upload(id).await?;
            return Err(StoreError::Oci(
                OciError::new(ErrorCode::DigestInvalid)
                    .detail(serde_json::json!({"expected": digest.to_string(), "actual": actual.to_string()})),
            ));
        }
        fs.commit(path.clone(), digest).await?;
        let res = self
            .meta
            .commit_blob(repo.as_str(), digest, status.size, Some(id), || {
                fs.ensure_committed(path.clone(), digest)
            })
            .await;
        let _ = tokio::fs::remove_file(&path).await;
        res?;
        self.sessions.remove(id);
        Ok(status.size)
    }

    /// Cancel an upload session.
    pub async fn cancel_upload(&self, repo: &RepositoryName, id: &str) -> Result<(), StoreError> {
        self.session_row(repo, id).await?;
        self.discard_upload(id).await
    }

    /// Drop a session whose bytes are gone and say so.
    async fn lost_upload(&self, id: &str) -> StoreError {
        if let Err(e) = self.discard_upload(id).await {
            return e;
        }
        oci(
            ErrorCode::BlobUploadUnknown,
            format!("upload {id} lost its data; start a new upload"),
        )
    }

    async fn discard_upload(&self, id: &str) -> Result<(), StoreError> {
        match &self.blobs {
            BlobBackend::Filesystem(fs) => {
                self.meta.delete_upload(id).await?;
                self.sessions.remove(id);
                let _ = tokio::fs::remove_file(fs.upload_path(id)).await;
            }
            BlobBackend::ObjectStorage(os) => {
                let row = self.meta.upload(id).await?;
                self.meta.delete_upload(id).await?;
                self.sessions.remove(id);
                if let Some(row) = row {
                    object_upload::discard(os, &row.object, id).await;
                }
            }
        }
        Ok(())
    }

    /// Remove upload files that no session owns (left by crashes or
    /// monolithic uploads that died) and sessions idle for longer than
    /// [`UPLOAD_IDLE_EXPIRY_MS`]. Files younger than `grace` are kept, since
    /// a request may be writing them right now.
    pub async fn purge_uploads(&self, grace: std::time::Duration) -> Result<usize, StoreError> {
        let fs = match &self.blobs {
            BlobBackend::Filesystem(fs) => fs,
            BlobBackend::ObjectStorage(os) => return self.purge_object_uploads(os, grace).await,
        };
        let sessions = self.meta.upload_ids().await?;
        let now = crate::now_ms();
        let mut removed = 0;
        for (id, updated) in &sessions {
            let missing = tokio::fs::metadata(fs.upload_path(id)).await.is_err();
            if now - updated > UPLOAD_IDLE_EXPIRY_MS || missing {
                self.discard_upload(id).await?;
                removed += 1;
            }
        }
        let live: std::collections::HashSet<&str> =
            sessions.iter().map(|(id, _)| id.as_str()).collect();
        let mut dir = tokio::fs::read_dir(fs.uploads_dir()).await?;
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if live.contains(name.as_ref()) {
                continue;
            }
            let old_enough = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= grace);
            if old_enough {
                let _ = tokio::fs::remove_file(entry.path()).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The object-storage purge: sessions idle for longer than
    /// [`UPLOAD_IDLE_EXPIRY_MS`] are discarded (multipart upload aborted,
    /// staging objects deleted), then staging objects no live session
    /// refers to and older than `grace` are deleted.
    async fn purge_object_uploads(
        &self,
        os: &crate::object::ObjectBlobStore,
        grace: std::time::Duration,
    ) -> Result<usize, StoreError> {
        let now = crate::now_ms();
        let mut removed = 0;
        let mut live = std::collections::HashMap::new();
        for row in self.meta.uploads().await? {
            if now - row.updated_at > UPLOAD_IDLE_EXPIRY_MS {
                self.meta.delete_upload(&row.id).await?;
                self.sessions.remove(&row.id);
                object_upload::discard(os, &row.object, &row.id).await;
                removed += 1;
            } else {
                live.insert(row.id, row.object.tail_key);
            }
        }
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        removed += object_upload::purge_orphans(os, &live, grace_ms).await?;
        Ok(removed)
    }

    // ---- manifests -----------------------------------------------------

    /// A manifest by tag or digest.
    pub async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>, StoreError> {
        let row = match reference {
            Reference::Digest(d) => self.meta.manifest_by_digest(repo.as_str(), d).await?,
            Reference::Tag(t) => self.meta.manifest_by_tag(repo.as_str(), t.as_str()).await?,
        };
        let Some(row) = row else { return Ok(None) };
        let digest = row
            .digest
            .parse::<Digest>()
            .map_err(|e| anyhow::anyhow!("stored digest {} is invalid: {e}", row.digest))?;
        Ok(Some(StoredManifest {
            digest,
            media_type: row.media_type,
            content: row.content,
        }))
    }

    /// Validate and store a manifest under its digest and tags: the tag of
    /// a tag reference and the `?tag=` parameters. A digest reference keeps
    /// its algorithm for every tag; a tag reference is digested with sha256.
    /// `validation` says which of its references must already be in `repo`.
    pub async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        tags: &[Tag],
        content_type: Option<&str>,
        body: &[u8],
        validation: &ManifestValidation,
    ) -> Result<PutManifestOutcome, StoreError> {
        let info = parse_manifest(content_type, body)?;
        let mut names: Vec<&str> = Vec::with_capacity(tags.len() + 1);
        let digest = match reference {
            Reference::Digest(d) => {
                let actual = Digest::compute(d.algorithm(), body);
                if &actual != d {
                    return Err(StoreError::Oci(
                        OciError::with_message(
                            ErrorCode::DigestInvalid,
                            "manifest content does not match the digest in the URL",
                        )
                        .detail(serde_json::json!({"expected": d.to_string(), "actual": actual.to_string()})),
                    ));
                }
                actual
            }
            Reference::Tag(t) => {
                names.push(t.as_str());
                Digest::sha256(body)
            }
        };
        for t in tags {
            if !names.contains(&t.as_str()) {
                names.push(t.as_str());
            }
        }
        let CheckedReferences { required, optional } = validation.split(&info);
        let stored = self
            .meta
            .put_manifest(repo.as_str(), &digest, &required, &optional, body, &names)
            .await;
        drop(required);
        match stored {
            Ok(()) => {
                if !optional.is_empty() {
                    // Only for a later 404's message: the manifest is stored
                    // and acknowledged even if this bookkeeping fails.
                    if let Err(e) = self
                        .meta
                        .record_absent_references(repo.as_str(), &digest, &optional)
                        .await
                    {
                        tracing::warn!(error = %e, repository = %repo, manifest = %digest,
                            "recording the absent references of a sparse manifest failed");
                    }
                }
                Ok(PutManifestOutcome {
                    digest,
                    subject: info.subject,
                    media_type: info.media_type,
                    artifact_type: info.artifact_type,
                })
            }
            Err(PutManifestError::MissingBlob(d)) => Err(StoreError::Oci(
                OciError::with_message(
                    ErrorCode::ManifestBlobUnknown,
                    format!("blob {d} is not in repository {repo}; push it first"),
                )
                .detail(serde_json::json!({"digest": d.to_string()})),
            )),
            Err(PutManifestError::MissingManifest(d)) => Err(StoreError::Oci(
                OciError::with_message(
                    ErrorCode::ManifestBlobUnknown,
                    format!("manifest {d} is not in repository {repo}; push it first"),
                )
                .detail(serde_json::json!({"digest": d.to_string()})),
            )),
            Err(PutManifestError::Store(e)) => Err(e),
        }
    }

    /// Delete a manifest by digest (with its tags) or a tag alone.
    /// Returns whether anything was deleted.
    pub async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<bool, StoreError> {
        match reference {
            Reference::Digest(d) => self.meta.delete_manifest(repo.as_str(), d).await,
            Reference::Tag(t) => self.meta.delete_tag(repo.as_str(), t.as_str()).await,
        }
    }

    /// Tags of `repo` (`None` when the repository does not exist).
    pub async fn list_tags(
        &self,
        repo: &RepositoryName,
        last: Option<&str>,
        n: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let Some(id) = self.meta.repository_id(repo.as_str()).await? else {
            return Ok(None);
        };
        Ok(Some(self.meta.list_tags(id, last, n).await?))
    }

    /// Repository names.
    pub async fn catalog(&self, last: Option<&str>, n: i64) -> Result<Vec<String>, StoreError> {
        self.meta.list_repositories(last, n).await
    }

    /// Referrers of `subject` in `repo`.
    pub async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        self.meta
            .referrers(repo.as_str(), subject, artifact_type)
            .await
    }
}
