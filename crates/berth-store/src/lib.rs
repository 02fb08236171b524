//! berth's storage layer.
//!
//! * [`blobs::FsBlobStore`]: content-addressed blob bytes on a filesystem,
//!   written through upload files and committed with fsync + rename.
//! * [`meta::MetaStore`]: repositories, blob links, manifests, tags, referrers
//!   and upload sessions in SQL (SQLite embedded by default).
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
//! * [`portal::PortalStore`]: the web portal's sign-in sessions and its
//!   repository overview.

pub mod audit;
pub mod blobs;
pub mod direct;
pub mod error;
pub mod identity;
pub mod manifest_cache;
pub mod meta;
pub mod mount;
pub mod portal;
pub mod registry;
pub mod sparse;
pub mod stream;
pub mod validation;

pub use error::StoreError;
pub use identity::IdentityRepo;
pub use registry::{BlobRead, PutManifestOutcome, Registry, StoredManifest, UploadStatus};
pub use stream::ByteStream;
pub use validation::ManifestValidation;

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
