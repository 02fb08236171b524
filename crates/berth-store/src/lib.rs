//! berth's storage layer.
//!
//! * [`backend::BlobBackend`]: the blob-store seam, with two backends:
//!   [`blobs::FsBlobStore`] (content-addressed files written through upload
//!   files and committed with fsync + rename, the embedded default) and
//!   [`object::ObjectBlobStore`] (S3 or Azure Blob, uploads resumable by
//!   any replica from their database row).
//! * [`meta::MetaStore`]: repositories, blob links, manifests, tags, referrers
//!   and upload sessions in SQL (SQLite embedded by default, PostgreSQL
//!   with `--database-url`).
//! * [`changes::ChangeHub`]: tells other replicas sharing a PostgreSQL
//!   database which caches to empty (`LISTEN`/`NOTIFY`).
//! * [`registry::Registry`]: the operations the HTTP layer calls, combining
//!   the two so that every commit is atomic and every blob read is scoped to
//!   a repository.
//! * [`validation::ManifestValidation`]: which references a pushed manifest
//!   needs in its repository (strict, or sparse for partial mirrors), with
//!   [`sparse`] remembering what a sparse manifest was accepted without.
//! * [`audit::AuditStore`]: login and repository audit events and the
//!   explain records of refusals, with retention pruning.
//! * [`identity::IdentityRepo`]: identities, credentials, scope maps, role
//!   assignments, network rules, registry settings and signing keys; it
//!   implements berth-auth's `IdentityStore` and `PolicyStore`.
//! * [`migrate`]: `berth storage migrate`, moving an embedded registry to
//!   PostgreSQL and a blob store.
//! * [`portal::PortalStore`]: the web portal's sign-in sessions and its
//!   repository overview.

pub mod audit;
pub mod backend;
pub mod blobs;
pub mod changes;
pub mod database_url;
pub mod direct;
pub mod error;
pub mod gc;
pub mod identity;
pub mod manifest_cache;
pub mod meta;
pub mod migrate;
pub mod mount;
pub mod object;
pub mod portal;
pub mod purge;
pub mod registry;
pub mod resume_hash;
pub(crate) mod retention;
pub mod sparse;
pub mod stream;
pub mod validation;

pub use backend::BlobBackend;
pub use database_url::DatabaseUrl;
pub use error::StoreError;
pub use identity::IdentityRepo;
pub use object::location::BlobStoreLocation;
pub use registry::{
    BlobRead, PutManifestOutcome, Readiness, Registry, RegistryOptions, StoredManifest,
    UploadStatus,
};
pub use stream::ByteStream;
pub use validation::ManifestValidation;

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
