//! berth's pure domain model: no IO, no async.
//!
//! Everything here is a value type or a pure function so that it can be
//! tested exhaustively and shared by the store, the server and the CLI.

pub mod digest;
pub mod error;
pub mod explain;
pub mod fuzz;
pub mod manifest;
pub mod name;
pub mod route;

pub use digest::{Algorithm, Digest, DigestHasher};
pub use error::{ErrorCode, OciError};
pub use manifest::{Descriptor, ManifestInfo, MediaType, Platform};
pub use name::{Reference, RepositoryName, Tag};
