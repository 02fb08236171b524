//! Streaming a request body into a file while hashing it.
//!
//! Bytes are hashed on the calling task as they arrive and written to disk
//! by a blocking task in batches, so receiving + hashing (one core) overlaps
//! with writing (the other). Nothing is held in memory beyond one batch in
//! flight and one being gathered.

use std::io::Write;
use std::pin::Pin;

use berth_core::DigestHasher;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::StoreError;

/// A request body as a stream of byte chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Bytes gathered before handing a batch to the writer.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Append everything `body` yields to `file`, feeding `hasher` on the way.
/// Returns the file and the number of bytes written. On a body error the
/// hasher and the file's tail are no longer meaningful; the caller discards
/// both (the acknowledged size is kept in the metadata store).
pub async fn write_hashed(
    file: std::fs::File,
    hasher: &mut DigestHasher,
    mut body: ByteStream,
) -> Result<(std::fs::File, u64), StoreError> {
    let mut file = Some(file);
    let mut in_flight: Option<tokio::task::JoinHandle<std::io::Result<std::fs::File>>> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0usize;
    let mut total = 0u64;

    loop {
        let next = body.next().await;
        let done = next.is_none();
        if let Some(chunk) = next {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    if let Some(h) = in_flight.take() {
                        let _ = h.await;
                    }
                    return Err(StoreError::Body(e));
                }
            };
            if chunk.is_empty() {
                continue;
            }
            hasher.update(&chunk);
            total += chunk.len() as u64;
            batch_len += chunk.len();
            batch.push(chunk);
        }
        if batch_len >= BATCH_BYTES || (done && !batch.is_empty()) {
            let f = match in_flight.take() {
                Some(h) => join_writer(h).await?,
                None => file
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("writer lost its file"))?,
            };
            let data = std::mem::take(&mut batch);
            batch_len = 0;
            in_flight = Some(tokio::task::spawn_blocking(move || {
                let mut f = f;
                for b in &data {
                    f.write_all(b)?;
                }
                start_writeback(&f);
                Ok(f)
            }));
        }
        if done {
            break;
        }
    }
    let f = match in_flight.take() {
        Some(h) => join_writer(h).await?,
        None => file
            .take()
            .ok_or_else(|| anyhow::anyhow!("writer lost its file"))?,
    };
    Ok((f, total))
}

/// Ask the kernel to start writing the file's dirty pages to disk now,
/// without waiting for them. A blob is fsynced before it is acknowledged;
/// starting write-out batch by batch overlaps the disk with the receive, so
/// that final fsync only waits for the last batch instead of the whole blob.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a descriptor this function borrows; offset 0
    // with length 0 means "the whole file"; SYNC_FILE_RANGE_WRITE only
    // initiates write-out. Failure is harmless (the commit's fsync still
    // makes the data durable), so the result is ignored.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File) {}

async fn join_writer(
    h: tokio::task::JoinHandle<std::io::Result<std::fs::File>>,
) -> Result<std::fs::File, StoreError> {
    let f = h
        .await
        .map_err(|e| anyhow::anyhow!("blob writer task failed: {e}"))??;
    Ok(f)
}

/// Hash the first `len` bytes of the file at `path` (used to rebuild the hash
/// state of an upload continued by another process).
pub async fn hash_prefix(
    path: std::path::PathBuf,
    len: u64,
    mut hasher: DigestHasher,
) -> Result<DigestHasher, StoreError> {
    tokio::task::spawn_blocking(move || -> Result<DigestHasher, StoreError> {
        use std::io::Read;
        let f = std::fs::File::open(&path)?;
        let mut r = f.take(len);
        let mut buf = vec![0u8; 1024 * 1024];
        let mut seen = 0u64;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            seen += n as u64;
        }
        if seen != len {
            return Err(StoreError::Internal(anyhow::anyhow!(
                "upload file {} is shorter ({seen}) than its acknowledged size ({len})",
                path.display()
            )));
        }
        Ok(hasher)
    })
    .await
    .map_err(|e| anyhow::anyhow!("hash task failed: {e}"))?
}
