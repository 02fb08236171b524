//! Errors of storage operations.

use berth_core::{ErrorCode, OciError};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A failure the client caused or can act on, with its spec code.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// A chunk did not start at the upload's current offset; `size` is the
    /// acknowledged length so the client can resume.
    #[error("upload chunk does not start at the current offset {size}")]
    UploadRange {
        /// Bytes acknowledged so far.
        size: u64,
    },
    /// The request body ended early or failed; nothing from it was kept.
    #[error("request body failed: {0}")]
    Body(std::io::Error),
    /// Storage backend failure (IO, database).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// The change clashes with what is stored: a name already taken, a
    /// duplicate role assignment or network rule, a scope map still in use.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The identity, scope map or assignment to change does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The input is not acceptable (a malformed name, CIDR, scope-map rule
    /// or setting); the message says why.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Shorthand for an [`OciError`] with a message.
    pub fn oci(code: ErrorCode, message: impl Into<String>) -> Self {
        StoreError::Oci(OciError::with_message(code, message))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Internal(anyhow::Error::new(e).context("metadata store"))
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Internal(anyhow::Error::new(e).context("blob store"))
    }
}

/// `ENOSPC` (no space left on device).
const ENOSPC: i32 = 28;
/// `EDQUOT` (disk quota exceeded).
const EDQUOT: i32 = 122;

impl StoreError {
    /// Whether the failure is storage running out of space: `ENOSPC` or
    /// `EDQUOT` from the file system, SQLite's "database or disk is full"
    /// (`SQLITE_FULL`), PostgreSQL's `disk_full` (53100), or an object
    /// store's quota refusal reported as one of those.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Internal(e) => e.chain().any(cause_is_full),
            _ => false,
        }
    }
}

fn cause_is_full(cause: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        return io_is_full(io);
    }
    if let Some(sql) = cause.downcast_ref::<sqlx::Error>() {
        return match sql {
            sqlx::Error::Io(io) => io_is_full(io),
            sqlx::Error::Database(db) => {
                matches!(db.code().as_deref(), Some("13" | "53100"))
                    || db.message().contains("disk is full")
            }
            _ => false,
        };
    }
    false
}

/// Whether an IO error is `ENOSPC`/`EDQUOT` (also `StorageFull`/`QuotaExceeded`).
pub fn io_is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
        || matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
}
