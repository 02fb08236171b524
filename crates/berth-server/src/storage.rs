//! Is there room to write? Free space of the data directory and whether
//! storage counts as full, for `/healthz`, `/metrics` and the 507 answer
//! of writes that ran out of space.
//!
//! Storage is **full** when the file system holding the data directory
//! has less than [`FULL_BELOW`] bytes available to berth, or when a write
//! failed for lack of space (`ENOSPC`, `EDQUOT`, a full database) within
//! the last [`FULL_FOR`]: quotas and object stores do not show in
//! `statvfs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use berth_core::ErrorCode;

use crate::error::ApiError;

/// Less free space than this counts as full.
pub const FULL_BELOW: u64 = 1024 * 1024;
/// A write refused for lack of space counts as full for this long.
pub const FULL_FOR: Duration = Duration::from_secs(60);

static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();
static LAST_FULL_MS: AtomicI64 = AtomicI64::new(0);

/// The message of a write refused because storage is full.
pub const FULL_MESSAGE: &str = "storage is full: the registry has no space left to store this; \
    nothing from this request was kept, and what was pushed before is intact. \
    Operator: free space or grow the volume (or quota) of the data directory, then retry";

/// Watch the file system of `dir` (the data directory). Called once at
/// start; later calls are ignored.
pub fn watch(dir: &Path) {
    let _ = DATA_DIR.set(dir.to_path_buf());
}

/// Space of the watched file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes available to berth (`f_bavail × f_frsize`).
    pub free: u64,
    /// Size of the file system.
    pub total: u64,
}

/// The watched file system's space, when known.
pub fn space() -> Option<Space> {
    statvfs(DATA_DIR.get()?)
}

fn statvfs(dir: &Path) -> Option<Space> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a valid C string and `st` a properly sized,
    // zeroed statvfs that the call fills in.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return None;
        }
        st
    };
    let unit = st.f_frsize as u64;
    Some(Space {
        free: (st.f_bavail as u64).saturating_mul(unit),
        total: (st.f_blocks as u64).saturating_mul(unit),
    })
}

/// A write just failed for lack of space.
pub fn note_full() {
    LAST_FULL_MS.store(berth_store::now_ms(), Ordering::Relaxed);
    metrics::counter!(FULL_METRIC).increment(1);
}

/// Whether storage counts as full now, with the space when known.
pub fn is_full() -> (bool, Option<Space>) {
    let space = space();
    let low = space.is_some_and(|s| s.free < FULL_BELOW);
    let last = LAST_FULL_MS.load(Ordering::Relaxed);
    let recent = last != 0 && berth_store::now_ms() - last < FULL_FOR.as_millis() as i64;
    (low || recent, space)
}

/// The answer to a write refused because storage is full: `507
/// Insufficient Storage`, code `UNKNOWN` (every OCI client renders it),
/// `detail.reason = "storage_full"`.
pub fn full_error() -> ApiError {
    note_full();
    tracing::error!(data_dir = ?DATA_DIR.get(), space = ?space(), "a write failed: storage is full");
    ApiError::msg(ErrorCode::Internal, FULL_MESSAGE)
        .with_status(StatusCode::INSUFFICIENT_STORAGE)
        .detail(serde_json::json!({ "reason": "storage_full" }))
}

const FULL_METRIC: &str = "berth_storage_full_errors_total";

/// Set the space gauges (called when `/metrics` is rendered).
pub fn update_metrics() {
    metrics::describe_gauge!(
        "berth_storage_free_bytes",
        "Bytes available to berth on the data directory's file system"
    );
    metrics::describe_gauge!(
        "berth_storage_total_bytes",
        "Size of the data directory's file system"
    );
    metrics::describe_gauge!(
        "berth_storage_full",
        "1 while storage counts as full (see docs/errors.md), else 0"
    );
    metrics::describe_counter!(FULL_METRIC, "Writes refused because storage was full");
    metrics::counter!(FULL_METRIC).increment(0);
    let (full, space) = is_full();
    if let Some(s) = space {
        metrics::gauge!("berth_storage_free_bytes").set(s.free as f64);
        metrics::gauge!("berth_storage_total_bytes").set(s.total as f64);
    }
    metrics::gauge!("berth_storage_full").set(if full { 1.0 } else { 0.0 });
}

/// `GET /healthz`: always `200` while the process serves (it is a
/// liveness probe); the body's first line is `ok`, or `storage full`
/// when writes cannot succeed, and the second line gives the space.
pub async fn healthz() -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let (full, space) = is_full();
    let space_line = match space {
        Some(s) => format!("{} bytes free of {}", s.free, s.total),
        None => "free space unknown".to_string(),
    };
    let body = if full {
        format!(
            "storage full\nstorage: full, {space_line}; pushes and other writes are refused with 507 Insufficient Storage, pulls still work\n"
        )
    } else {
        format!("ok\nstorage: ok, {space_line}\n")
    };
    (
        StatusCode::OK,
        [("content-type", "text/plain; charset=utf-8")],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statvfs_of_a_directory() {
        let s = statvfs(Path::new("/")).expect("statvfs /");
        assert!(s.total > 0 && s.free <= s.total, "{s:?}");
    }
}
