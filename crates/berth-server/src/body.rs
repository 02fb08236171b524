//! Request and response bodies: request bodies as byte streams for the
//! store, committed blobs streamed from disk.

use std::io::{Read, Seek, SeekFrom};

use axum::body::Body;
use berth_store::ByteStream;
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;

/// Size of the chunks a blob is read and sent in.
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

/// Stream `len` bytes of `file` from `offset`. A dedicated blocking thread
/// reads ahead in 1 MiB chunks while the connection sends.
pub fn file_body(file: std::fs::File, offset: u64, len: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
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
    });
    Body::from_stream(tokio_stream_from(rx))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
