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
    root: PathBuf,
}

impl FsBlobStore {
    /// Open (creating directories as needed) a store rooted at `root`.
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(root.join("blobs")).await?;
        tokio::fs::create_dir_all(root.join("uploads")).await?;
        Ok(FsBlobStore {
            root: root.to_path_buf(),
        })
    }

    /// Where a committed blob lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    /// Where an upload session's bytes are gathered.
    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// The folder holding upload files.
    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// Make the upload file durable and move it to its content address.
    /// If the content is already present the upload file is simply removed.
    pub async fn commit(&self, upload: PathBuf, digest: &Digest) -> Result<(), StoreError> {
        let target = self.blob_path(digest);
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            if target.exists() {
                let _ = std::fs::remove_file(&upload);
                return Ok(());
            }
            std::fs::File::open(&upload)?.sync_all()?;
            let dir = target
                .parent()
                .ok_or_else(|| anyhow::anyhow!("blob path has no parent"))?;
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&upload, &target)?;
            // Make the rename itself durable.
            std::fs::File::open(dir)?.sync_all()?;
            Ok(())
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
