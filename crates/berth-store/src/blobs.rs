//! Content-addressed blob bytes on a local filesystem.
//!
//! Layout under the data directory:
//! `blobs/<algorithm>/<first two hex>/<hex>` for committed content and
//! `uploads/<session id>` for bytes still being received. A blob becomes
//! visible only through a metadata row written after its file was fsynced
//! and renamed into place, so a crash never exposes partial content.

use std::path::{Path, PathBuf};

use berth_core::Digest;

use crate::error::StoreError;

/// Blob bytes on a filesystem.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl FsBlobStore {
    /// Open (creating directories as needed) a store rooted at `root`:
    /// blobs in `root/blobs`, uploads in `root/uploads` (the embedded
    /// default layout).
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        Self::open_at(&root.join("blobs"), &root.join("uploads")).await
    }

    /// Open a store with committed blobs under `blobs` and upload files
    /// in `uploads` (which must be on the same file system, for the
    /// commit's rename).
    pub async fn open_at(blobs: &Path, uploads: &Path) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(blobs).await?;
        tokio::fs::create_dir_all(uploads).await?;
        Ok(FsBlobStore {
            blobs: blobs.to_path_buf(),
            uploads: uploads.to_path_buf(),
        })
    }

    /// Where a committed blob lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    /// Where an upload session's bytes are gathered.
    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.uploads.join(id)
    }

    /// The folder holding upload files.
    pub fn uploads_dir(&self) -> PathBuf {
        self.uploads.clone()
    }

    /// The folder holding committed blobs.
    pub fn blobs_dir(&self) -> &Path {
        &self.blobs
    }

    /// Size of a committed blob, `None` when absent.
    pub async fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove a committed blob (absent is fine). Only garbage collection may
    /// call this, after no metadata row refers to the blob.
    pub async fn delete_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.blob_path(digest)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every committed blob with its size and modification time (unix
    /// milliseconds; files whose names are not a digest are skipped).
    /// [`crate::BlobBackend::list_blobs`] drops the times for callers that
    /// need only sizes.
    pub async fn list_blobs_with_times(&self) -> Result<Vec<(Digest, u64, i64)>, StoreError> {
        let root = self.blobs.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<(Digest, u64, i64)>, StoreError> {
            let mut out = Vec::new();
            for alg in std::fs::read_dir(&root)? {
                let alg = alg?;
                let alg_name = alg.file_name().to_string_lossy().into_owned();
                if !alg.file_type()?.is_dir() {
                    continue;
                }
                for fan in std::fs::read_dir(alg.path())? {
                    let fan = fan?;
                    if !fan.file_type()?.is_dir() {
                        continue;
                    }
                    for blob in std::fs::read_dir(fan.path())? {
                        let blob = blob?;
                        let name = blob.file_name().to_string_lossy().into_owned();
                        if let Ok(d) = format!("{alg_name}:{name}").parse::<Digest>() {
                            let Ok(meta) = blob.metadata() else { continue };
                            let modified = meta
                                .modified()
                                .ok()
                                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                                .map(|d| d.as_millis() as i64)
                                .unwrap_or(0);
                            out.push((d, meta.len(), modified));
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| anyhow::anyhow!("listing task failed: {e}"))?
    }

    /// Make the upload file durable and move it to its content address.
    /// If the content is already present the upload file is left where it
    /// is (returns `false`): the caller checks again while it holds the
    /// blob's database row ([`FsBlobStore::ensure_committed`]), since the
    /// collector may be deleting the present copy, and removes the upload
    /// file afterwards.
    pub async fn commit(&self, upload: PathBuf, digest: &Digest) -> Result<bool, StoreError> {
        let target = self.blob_path(digest);
        tokio::task::spawn_blocking(move || -> Result<bool, StoreError> {
            if target.exists() {
                return Ok(false);
            }
            std::fs::File::open(&upload)?.sync_all()?;
            move_into_place(&upload, &target)?;
            Ok(true)
        })
        .await
        .map_err(|e| anyhow::anyhow!("commit task failed: {e}"))?
    }

    /// Whether the committed bytes of `digest` are present, moving the
    /// upload file `upload` into place first when they are not and it still
    /// exists. Called under the blob's database row lock.
    pub async fn ensure_committed(
        &self,
        upload: PathBuf,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let target = self.blob_path(digest);
        tokio::task::spawn_blocking(move || -> Result<bool, StoreError> {
            if target.exists() {
                return Ok(true);
            }
            match std::fs::File::open(&upload) {
                Ok(f) => f.sync_all()?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e.into()),
            }
            move_into_place(&upload, &target)?;
            Ok(true)
        })
        .await
        .map_err(|e| anyhow::anyhow!("commit task failed: {e}"))?
    }

    /// Open a committed blob for reading.
    pub async fn open_blob(&self, digest: &Digest) -> Result<tokio::fs::File, StoreError> {
        Ok(tokio::fs::File::open(self.blob_path(digest)).await?)
    }

    /// Whether the store accepts writes: a probe file is created, synced
    /// and removed in the uploads folder.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let probe = self
            .uploads_dir()
            .join(format!(".ready-{}", uuid::Uuid::new_v4()));
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let result = std::fs::File::create(&probe).and_then(|f| f.sync_all());
            let _ = std::fs::remove_file(&probe);
            result.map_err(|e| anyhow::anyhow!("blob directory is not writable: {e}").into())
        })
        .await
        .map_err(|e| anyhow::anyhow!("readiness probe task failed: {e}"))?
    }

    /// Whether committed bytes exist for `digest`.
    pub async fn has_blob(&self, digest: &Digest) -> bool {
        tokio::fs::metadata(self.blob_path(digest)).await.is_ok()
    }
}

/// Rename a durable upload file to its content address and make the rename
/// durable.
fn move_into_place(upload: &Path, target: &Path) -> Result<(), StoreError> {
    let dir = target
        .parent()
        .ok_or_else(|| anyhow::anyhow!("blob path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    std::fs::rename(upload, target)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
