//! Request and response bodies: request bodies as byte streams for the
//! store, committed blobs streamed from disk.

use std::io::{Read, Seek, SeekFrom};

use axum::body::Body;
use berth_store::ByteStream;
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;

/// Size of the chunks a blob is read and sent in when it cannot be mapped.
const READ_CHUNK: usize = 1024 * 1024;

/// Most bytes of an unwanted request body read (and discarded) before a
/// refusal is sent, so the client sees the answer instead of a reset.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// Longest time spent draining.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Read and discard up to [`DRAIN_LIMIT`] bytes of `body` (bounded by
/// [`DRAIN_TIMEOUT`]). Closing a connection while the client is still
/// sending makes the kernel reset it, and the client never reads the error
/// (RFC 9112 §9.6); draining first lets the refusal arrive.
pub async fn drain(body: Body) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len() as u64;
            if read > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

/// Turn a request body into the store's byte stream.
pub fn request_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// Stream `len` bytes of `file` from `offset`.
///
/// The region is memory-mapped and handed to the connection as slices of
/// the mapping, so the kernel copies page-cache pages straight into the
/// socket: no read into a userspace buffer, no buffer to zero or allocate
/// per chunk. A blocking thread walks ahead of the sender and touches every
/// page of the next slice, so page faults (and any disk reads behind them)
/// happen there and never stall an async worker. When the file cannot be
/// mapped (a filesystem without mmap), it falls back to reading ahead into
/// buffers on the same thread.
///
/// Safety of the mapping rests on one invariant of the blob store: a
/// committed blob file is never written to or truncated in place (commits
/// rename a finished upload over the path; deletes unlink), so a mapped
/// region never shrinks under the reader.
pub fn file_body(file: std::fs::File, offset: u64, len: u64) -> Body {
    if len == 0 {
        return Body::empty();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(MAPPED_AHEAD);
    tokio::task::spawn_blocking(move || send_mapped(file, offset, len, &tx));
    Body::from_stream(tokio_stream_from(rx))
}

/// Size of the slices a mapped blob is sent in (1 MiB: the connection
/// holds one, the channel two more, so a pull has ~4 MiB mapped). Each slice is its own
/// mapping, unmapped once the connection has sent it, so a pull keeps at
/// most a few slices mapped (and counted in the process's RSS), however
/// large the blob.
const MAPPED_CHUNK: u64 = 1024 * 1024;
/// Slices prepared ahead of the one being sent.
const MAPPED_AHEAD: usize = 2;

/// Send `len` bytes of `file` from `offset` as mapped slices, faulting each
/// one in before it goes; fall back to buffered reads if mapping fails.
fn send_mapped(
    file: std::fs::File,
    offset: u64,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    // Touching a mapped page past the end of a file kills the process with
    // SIGBUS, so a file shorter than the region is refused up front.
    let size = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    if offset.checked_add(len).is_none_or(|end| end > size) {
        let _ = tx.blocking_send(Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "blob file shorter than recorded",
        )));
        return;
    }
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let n = MAPPED_CHUNK.min(end - at);
        let slice = match map_region(&file, at, n) {
            Ok(slice) => slice,
            Err(_) => return send_read_ahead(file, at, end - at, tx),
        };
        touch_pages(&slice);
        if tx.blocking_send(Ok(slice)).is_err() {
            return; // client went away
        }
        at += n;
    }
}

/// Map `len` bytes of `file` from `offset`, read-only.
fn map_region(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<Bytes> {
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: committed blob files are immutable (see `file_body`) and the
    // caller checked the file covers the region, so no mapped page can
    // disappear under the reader.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)?
    };
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Bytes::from_owner(map))
}

/// Read one byte of every page so the page is resident and mapped before
/// the async sender reaches it.
fn touch_pages(slice: &[u8]) {
    const PAGE: usize = 4096;
    let mut sum = 0u8;
    for i in (0..slice.len()).step_by(PAGE) {
        sum = sum.wrapping_add(slice[i]);
    }
    std::hint::black_box(sum);
}

/// The fallback: read ahead in 1 MiB buffers.
fn send_read_ahead(
    file: std::fs::File,
    offset: u64,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    let mut file = file;
    if let Err(e) = file.seek(SeekFrom::Start(offset)) {
        let _ = tx.blocking_send(Err(e));
        return;
    }
    let mut left = len;
    while left > 0 {
        let want = READ_CHUNK.min(left as usize);
        let mut buf = BytesMut::zeroed(want);
        match file.read(&mut buf[..]) {
            Ok(0) => {
                let _ = tx.blocking_send(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob file shorter than recorded",
                )));
                return;
            }
            Ok(n) => {
                buf.truncate(n);
                left -= n as u64;
                if tx.blocking_send(Ok(buf.freeze())).is_err() {
                    return; // client went away
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
