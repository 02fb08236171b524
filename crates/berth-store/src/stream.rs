//! Streaming a request body into a file while hashing it.
//!
//! The async task only receives: each chunk the connection yields goes
//! through a small bounded queue to one blocking thread per upload, which
//! hashes the chunk and then copies it, still in that core's cache, into
//! the [`Appender`]'s aligned buffer; full buffers are written with
//! `O_DIRECT` by a second thread while the next one fills (see
//! [`crate::direct`]). Receiving, hashing and the device overlap, file
//! writes never block an async worker, and nothing is held in memory beyond
//! the queue and three 4 MiB buffers.
//!
//! (An earlier design hashed on the receiving task and wrote 4 MiB batches
//! from another thread; by the time a batch was written its bytes had left
//! the cache, and the copy into the page cache cost more CPU than SHA-256.)

use std::pin::Pin;

use berth_core::DigestHasher;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::direct::Appender;
use crate::error::StoreError;

/// A request body as a stream of byte chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Chunks queued between the receiving task and the writer (hyper yields
/// chunks of at most ~400 KiB, so at most ~1.6 MiB per upload).
const QUEUE_CHUNKS: usize = 4;

/// Append everything `body` yields to `file` from byte `start` (its
/// length), feeding `hasher` on the way. Returns the number of bytes
/// written. On a body error the hasher and the file's tail are no longer
/// meaningful; the caller discards both (the acknowledged size is kept in
/// the metadata store).
pub async fn write_hashed(
    file: std::fs::File,
    start: u64,
    hasher: &mut DigestHasher,
    mut body: ByteStream,
) -> Result<u64, StoreError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let fresh = hasher.algorithm().hasher();
    let mut h = std::mem::replace(hasher, fresh);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(DigestHasher, u64)> {
        let mut out = Appender::new(file, start);
        while let Some(chunk) = rx.blocking_recv() {
            h.update(&chunk);
            out.push(&chunk)?;
        }
        Ok((h, out.finish()? - start))
    });

    while let Some(next) = body.next().await {
        match next {
            Ok(chunk) if chunk.is_empty() => {}
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Err(e) => {
                drop(tx);
                let _ = writer.await;
                return Err(StoreError::Body(e));
            }
        }
    }
    drop(tx);
    let (h, written) = writer
        .await
        .map_err(|e| anyhow::anyhow!("blob writer task failed: {e}"))??;
    *hasher = h;
    Ok(written)
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
