//! Blob bytes on object storage (S3, S3-compatible servers, Azure Blob)
//! through the `object_store` crate.
//!
//! Layout under the configured prefix, the same as the filesystem's:
//! `blobs/<algorithm>/<first two hex>/<hex>` for committed content and
//! `uploads/<session id>/…` for an upload's staging objects (`tail-<uuid>`,
//! the bytes not yet part-sized, and `blob`, the completed multipart
//! upload before it is copied to its content address). The upload state
//! machine is in [`upload`].

pub mod location;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use berth_core::Digest;
use futures::{StreamExt, TryStreamExt};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore};

use crate::error::StoreError;
use crate::stream::ByteStream;

/// Lifetime of a presigned blob URL (`--blob-redirect`).
pub const PRESIGNED_TTL: Duration = Duration::from_secs(300);

/// A committed blob as listed or stat'ed on the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Key below the prefix, e.g. `blobs/sha256/ab/ab…`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, unix ms.
    pub modified_ms: i64,
}

/// Blob bytes on an object store.
#[derive(Clone)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    signer: Arc<dyn Signer>,
    prefix: String,
    /// `s3://bucket` or `azure://container`, for messages.
    name: String,
}

impl std::fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBlobStore")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// An object store failure as a store error (the message names the store
/// and the key, never a credential).
pub(crate) fn os_err(e: object_store::Error) -> StoreError {
    StoreError::Internal(anyhow::Error::new(e).context("object store"))
}

/// Whether an object store error means "no such object".
pub(crate) fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

impl ObjectBlobStore {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        multipart: Arc<dyn MultipartStore>,
        signer: Arc<dyn Signer>,
        prefix: &str,
        name: String,
    ) -> ObjectBlobStore {
        ObjectBlobStore {
            store,
            multipart,
            signer,
            prefix: prefix.trim_matches('/').to_string(),
            name,
        }
    }

    /// Open the store a [`location::BlobStoreLocation`] names (S3 or Azure)
    /// with credentials from the process environment.
    pub fn open(location: &location::BlobStoreLocation) -> Result<ObjectBlobStore, StoreError> {
        Self::open_with(location, &location::Credentials::ProcessEnv)
    }

    /// Open the store `location` names with credentials from `creds`.
    pub fn open_with(
        location: &location::BlobStoreLocation,
        creds: &location::Credentials,
    ) -> Result<ObjectBlobStore, StoreError> {
        use location::BlobStoreLocation as L;
        match location {
            L::S3 {
                bucket,
                prefix,
                endpoint,
            } => location::open_s3(bucket, prefix, endpoint.as_deref(), creds),
            L::Azure { container, prefix } => location::open_azure(container, prefix, creds),
            L::Filesystem(_) => Err(StoreError::Invalid("file:// is not an object store".into())),
        }
    }

    /// `s3://bucket` or `azure://container`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object path of `key` below the prefix.
    pub(crate) fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Strip the prefix from a listed path.
    fn key_of(&self, path: &Path) -> String {
        let s = path.as_ref();
        if self.prefix.is_empty() {
            return s.to_string();
        }
        s.strip_prefix(&self.prefix)
            .map(|r| r.trim_start_matches('/').to_string())
            .unwrap_or_else(|| s.to_string())
    }

    /// Key of a committed blob.
    pub fn blob_key(digest: &Digest) -> String {
        let hex = digest.hex();
        format!("blobs/{}/{}/{hex}", digest.algorithm().as_str(), &hex[..2])
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub(crate) fn multipart(&self) -> &Arc<dyn MultipartStore> {
        &self.multipart
    }

    /// Size of a committed blob, `None` when absent.
    pub async fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match self.store.head(&self.path(&Self::blob_key(digest))).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(os_err(e)),
        }
    }

    /// Remove a committed blob (absent is fine). Only garbage collection may
    /// call this, after no metadata row refers to the blob.
    pub async fn delete_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        self.delete_key(&Self::blob_key(digest)).await
    }

    /// Remove one object below the prefix; absent is fine.
    pub(crate) async fn delete_key(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(os_err(e)),
        }
    }

    /// Every object whose key starts with `dir` (`blobs` or `uploads`).
    pub async fn list(&self, dir: &str) -> Result<Vec<StoredObject>, StoreError> {
        let base = self.path(dir);
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(&base));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(os_err)?;
            out.push(StoredObject {
                key: self.key_of(&meta.location),
                size: meta.size,
                modified_ms: meta.last_modified.timestamp_millis(),
            });
        }
        Ok(out)
    }

    /// A cheap reachability check: one HEAD of a key that need not exist.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        match self.store.head(&self.path("readyz")).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(StoreError::Internal(
                anyhow::Error::new(e).context(format!("blob store {} is not reachable", self.name)),
            )),
        }
    }

    /// A handle to read a committed blob of `size` bytes.
    pub fn reader(&self, digest: &Digest, size: u64) -> ObjectRead {
        ObjectRead {
            store: self.clone(),
            path: self.path(&Self::blob_key(digest)),
            size,
        }
    }
}

/// A committed blob on object storage, ready to be streamed or redirected to.
pub struct ObjectRead {
    store: ObjectBlobStore,
    path: Path,
    size: u64,
}

impl ObjectRead {
    /// Its size (from the metadata row).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Start reading `len` bytes from `offset`: the request is made here,
    /// so a missing object is an error before any response header is sent;
    /// the bytes then stream as the store sends them. Dropping the stream
    /// (a client that went away) closes the store connection.
    pub async fn open(&self, offset: u64, len: u64) -> Result<ByteStream, StoreError> {
        if len == 0 {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + len)),
            ..Default::default()
        };
        let res = self
            .store
            .store
            .get_opts(&self.path, opts)
            .await
            .map_err(|e| {
                if is_not_found(&e) {
                    StoreError::Internal(anyhow::anyhow!(
                        "blob object {} is missing from {}",
                        self.path,
                        self.store.name
                    ))
                } else {
                    os_err(e)
                }
            })?;
        Ok(Box::pin(res.into_stream().map_err(std::io::Error::other)))
    }

    /// A presigned GET URL valid for [`PRESIGNED_TTL`].
    pub async fn presigned_url(&self) -> Result<url::Url, StoreError> {
        self.store
            .signer
            .signed_url(http::Method::GET, &self.path, PRESIGNED_TTL)
            .await
            .map_err(os_err)
    }
}
