//! The blob-store seam: which backend holds blob bytes.
//!
//! [`BlobBackend::Filesystem`] is the embedded default (upload files written
//! with `O_DIRECT`, committed by fsync + rename, pulled through mmap/pread);
//! [`BlobBackend::ObjectStorage`] keeps bytes on S3 or Azure Blob so that
//! several replicas share them. The registry's upload and pull paths match
//! on this enum once per request, so the filesystem path runs exactly the
//! code it ran before the seam existed. The committed-blob operations
//! (stat, list, delete) and the upload purge are the footing of garbage
//! collection.

use std::path::Path;

use berth_core::Digest;

use crate::blobs::FsBlobStore;
use crate::error::StoreError;
use crate::object::location::BlobStoreLocation;
use crate::object::ObjectBlobStore;

/// Where blob bytes are kept.
#[derive(Debug, Clone)]
pub enum BlobBackend {
    /// Files under a local directory (the default: `<data-dir>/blobs`).
    Filesystem(FsBlobStore),
    /// Objects on S3, an S3-compatible server, or Azure Blob.
    ObjectStorage(ObjectBlobStore),
}

impl BlobBackend {
    /// Open the backend `location` names; `None` is the default layout under
    /// `data_dir`. A `file://` URL naming `<data-dir>/blobs` is the default
    /// layout too; any other directory keeps its upload files in
    /// `<dir>/_uploads` (the same file system, for the commit's rename).
    pub async fn open(
        data_dir: &Path,
        location: Option<&BlobStoreLocation>,
    ) -> Result<BlobBackend, StoreError> {
        match location {
            None => Ok(BlobBackend::Filesystem(FsBlobStore::open(data_dir).await?)),
            Some(BlobStoreLocation::Filesystem(dir)) if dir == &data_dir.join("blobs") => {
                Ok(BlobBackend::Filesystem(FsBlobStore::open(data_dir).await?))
            }
            Some(BlobStoreLocation::Filesystem(dir)) => Ok(BlobBackend::Filesystem(
                FsBlobStore::open_at(dir, &dir.join("_uploads")).await?,
            )),
            Some(other) => Ok(BlobBackend::ObjectStorage(ObjectBlobStore::open(other)?)),
        }
    }

    /// Whether committed bytes exist for `digest`.
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        Ok(self.stat_blob(digest).await?.is_some())
    }

    /// Size of a committed blob's bytes, `None` when absent.
    pub async fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match self {
            BlobBackend::Filesystem(fs) => fs.stat_blob(digest).await,
            BlobBackend::ObjectStorage(os) => os.stat_blob(digest).await,
        }
    }

    /// Remove a committed blob's bytes (for garbage collection, once no
    /// metadata row refers to them).
    pub async fn delete_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        match self {
            BlobBackend::Filesystem(fs) => fs.delete_blob(digest).await,
            BlobBackend::ObjectStorage(os) => os.delete_blob(digest).await,
        }
    }

    /// Every committed blob with its size.
    pub async fn list_blobs(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        Ok(self
            .list_blobs_with_times()
            .await?
            .into_iter()
            .map(|(d, size, _)| (d, size))
            .collect())
    }

    /// Every committed blob with its size and last modification (unix
    /// milliseconds), for the collector's sweep of bytes no row names.
    pub async fn list_blobs_with_times(&self) -> Result<Vec<(Digest, u64, i64)>, StoreError> {
        match self {
            BlobBackend::Filesystem(fs) => fs.list_blobs_with_times().await,
            BlobBackend::ObjectStorage(os) => Ok(os
                .list("blobs")
                .await?
                .into_iter()
                .filter_map(|o| {
                    let mut it = o.key.rsplit('/');
                    let hex = it.next()?;
                    let _fan = it.next()?;
                    let alg = it.next()?;
                    let d = format!("{alg}:{hex}").parse::<Digest>().ok()?;
                    Some((d, o.size, o.modified_ms))
                })
                .collect()),
        }
    }

    /// A cheap check that the backend is reachable (the readiness probe):
    /// a probe file written and removed on the filesystem, one HEAD on
    /// object storage.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        match self {
            BlobBackend::Filesystem(fs) => fs.check_writable().await,
            BlobBackend::ObjectStorage(os) => os.check_ready().await,
        }
    }

    /// A description for logs (no secrets: credentials never live in the
    /// location).
    pub fn describe(&self) -> String {
        match self {
            BlobBackend::Filesystem(fs) => format!("file://{}", fs.blobs_dir().display()),
            BlobBackend::ObjectStorage(os) => os.name().to_string(),
        }
    }
}
