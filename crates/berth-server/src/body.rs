//! Request and response bodies: request bodies as byte streams for the
//! store, committed blobs streamed from disk.

use axum::body::Body;
use berth_store::ByteStream;
use bytes::Bytes;
use futures::TryStreamExt;

/// Size of the pooled buffers slices that are not sent mapped are read into.
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
/// A blocking thread walks ahead of the sender in 1 MiB slices, so page
/// faults and disk reads happen there and never stall an async worker, and
/// keeps the kernel reading ahead (`POSIX_FADV_WILLNEED`). A slice already
/// in the page cache is handed to the connection as a memory mapping, so
/// the kernel copies page-cache pages straight into the socket: no read
/// into a userspace buffer. Any other slice (not resident, or a file system
/// without mmap) is read with `pread` into a pooled buffer.
///
/// Safety of the mapping rests on one invariant of the blob store: a
/// committed blob file is never written to or truncated in place (commits
/// rename a finished upload over the path; deletes unlink), so a mapped
/// region never shrinks under the reader.
///
/// With `zero_copy` (a plaintext HTTP/1.x connection, marked by
/// [`ZeroCopy`]), the whole region is mapped once and never touched: slices
/// in the page cache go out as `sendfile(2)` of the same file range (see
/// [`crate::sendfile`]), so neither a copy nor page-table work is done per
/// slice, and the mapping adds nothing to the process's RSS.
pub fn file_body(file: std::fs::File, offset: u64, len: u64, zero_copy: bool) -> Body {
    if len == 0 {
        return Body::empty();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(MAPPED_AHEAD);
    tokio::task::spawn_blocking(move || {
        if zero_copy {
            send_zero_copy(file, offset, len, &tx)
        } else {
            send_mapped(file, offset, len, &tx)
        }
    });
    Body::from_stream(tokio_stream_from(rx))
}

/// Request extension set by the connection layer when the response goes
/// to a plaintext HTTP/1.x socket that can `sendfile` mapped blob regions.
#[derive(Debug, Clone, Copy)]
pub struct ZeroCopy;

/// Size of the slices of a zero-copy send (each one residency check and
/// at most one `sendfile` per socket-buffer's worth).
const ZERO_COPY_CHUNK: u64 = 4 * 1024 * 1024;

/// The zero-copy variant of [`send_mapped`].
fn send_zero_copy(
    file: std::fs::File,
    offset: u64,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    if let Err(e) = zero_copy_slices(file, offset, len, tx) {
        let _ = tx.blocking_send(Err(e));
    }
}

fn zero_copy_slices(
    file: std::fs::File,
    offset: u64,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    let size = file.metadata()?.len();
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "blob file shorter than recorded",
        ));
    }
    let mut direct = if first_read(&file, offset) {
        DirectReader::open(&file)
    } else {
        None
    };
    let file = std::sync::Arc::new(file);
    let region = match crate::sendfile::MappedRegion::new(&file, offset, len) {
        Ok(r) => Bytes::from_owner(r),
        // No mmap on this file system: the copying path.
        Err(_) => return send_slices(&file, offset, len, tx),
    };
    let mut at = 0u64;
    let mut advised = 0u64;
    while at < len {
        let n = ZERO_COPY_CHUNK.min(len - at);
        let lead = len.min(at + READ_AHEAD_BYTES);
        if lead > advised && direct.is_none() {
            will_need(&file, offset + advised, lead - advised);
            advised = lead;
        }
        // Both ends fit in usize: the region was mapped.
        let slice = region.slice(at as usize..(at + n) as usize);
        if resident(&slice) {
            if tx.blocking_send(Ok(slice)).is_err() {
                return Ok(()); // client went away
            }
        } else {
            // Not in the page cache: read here, off the async workers, so
            // a sendfile never waits for the disk.
            drop(slice);
            let mut done = 0;
            while done < n {
                let m = (READ_CHUNK as u64).min(n - done);
                let from = offset + at + done;
                let buf = match direct.as_ref().map(|d| d.read(from, m)) {
                    Some(Ok(b)) => b,
                    Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                        // The file system refused O_DIRECT after all.
                        direct = None;
                        read_pooled(&file, from, m)?
                    }
                    Some(Err(e)) => return Err(e),
                    None => read_pooled(&file, from, m)?,
                };
                if tx.blocking_send(Ok(buf)).is_err() {
                    return Ok(());
                }
                done += m;
            }
        }
        at += n;
    }
    Ok(())
}

/// Size of the slices a mapped blob is sent in (1 MiB: the connection
/// holds one, the channel two more, so a pull has ~4 MiB mapped). Each slice is its own
/// mapping, unmapped once the connection has sent it, so a pull keeps at
/// most a few slices mapped (and counted in the process's RSS), however
/// large the blob.
const MAPPED_CHUNK: u64 = 1024 * 1024;
/// Slices prepared ahead of the one being sent.
const MAPPED_AHEAD: usize = 2;

/// Send `len` bytes of `file` from `offset` slice by slice; an error goes
/// to the connection as the body's last item.
fn send_mapped(
    file: std::fs::File,
    offset: u64,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    if let Err(e) = send_slices(&file, offset, len, tx) {
        let _ = tx.blocking_send(Err(e));
    }
}

fn send_slices(
    file: &std::fs::File,
    offset: u64,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    // Touching a mapped page past the end of a file kills the process with
    // SIGBUS, so a file shorter than the region is refused up front.
    let size = file.metadata()?.len();
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "blob file shorter than recorded",
        ));
    }
    let end = offset + len;
    let mut at = offset;
    let mut advised = offset;
    while at < end {
        let n = MAPPED_CHUNK.min(end - at);
        let lead = end.min(at + READ_AHEAD_BYTES);
        if lead > advised {
            will_need(file, advised, lead - advised);
            advised = lead;
        }
        let slice = match map_region(file, at, n) {
            Ok(mapped) if resident(&mapped) => {
                touch_pages(&mapped);
                mapped
            }
            _ => read_pooled(file, at, n)?,
        };
        if tx.blocking_send(Ok(slice)).is_err() {
            return Ok(()); // client went away
        }
        at += n;
    }
    Ok(())
}

/// How far ahead of the current slice the kernel is asked to read, so a
/// blob that is not in the page cache is read in large requests rather
/// than a few pages per fault.
const READ_AHEAD_BYTES: u64 = 8 * 1024 * 1024;

/// Ask the kernel to start reading a file range into the page cache
/// (`POSIX_FADV_WILLNEED`; it does not wait for the reads). A failure only
/// loses the read-ahead, so it is ignored.
#[cfg(target_os = "linux")]
fn will_need(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: an advisory syscall on a descriptor this function borrows; no
    // memory is passed to the kernel.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), off, len, libc::POSIX_FADV_WILLNEED);
    }
}

#[cfg(not(target_os = "linux"))]
fn will_need(_file: &std::fs::File, _offset: u64, _len: u64) {}

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

/// Whether every page of a mapped slice is in the page cache (`mincore`).
///
/// Pages that are not are read with `pread` instead ([`read_pooled`]):
/// in the two-round comparison on the 2-core VM, a cold 1 GiB pull faulted
/// in through the mapping cost 3.75 s of CPU at 272 MiB/s, through `pread`
/// 2.7 s at 389 MiB/s.
#[cfg(target_os = "linux")]
fn resident(slice: &[u8]) -> bool {
    const PAGE: usize = 4096;
    let addr = slice.as_ptr() as usize;
    let base = addr - addr % PAGE;
    let len = slice.len() + (addr - base);
    let mut vec = vec![0u8; len.div_ceil(PAGE)];
    // SAFETY: [base, base + len) lies inside the mapping `slice` belongs
    // to (mappings start on a page boundary at or before the slice), and
    // `vec` has one byte per page of that range, as mincore requires.
    let rc = unsafe { libc::mincore(base as *mut libc::c_void, len, vec.as_mut_ptr()) };
    rc == 0 && vec.iter().all(|b| b & 1 == 1)
}

#[cfg(not(target_os = "linux"))]
fn resident(_slice: &[u8]) -> bool {
    true
}

/// Blob reads seen since the process started, by (device, inode, first
/// byte); cleared when it reaches [`SEEN_MAX`].
static SEEN: std::sync::Mutex<Option<std::collections::HashSet<(u64, u64, u64)>>> =
    std::sync::Mutex::new(None);
/// Most reads remembered in [`SEEN`].
const SEEN_MAX: usize = 65_536;

/// Whether this is the first read of `file` from `offset` since the process
/// started (or since [`SEEN`] was last cleared).
///
/// The first pull of a blob (typically right after its push, which wrote it
/// with `O_DIRECT`) reads what is not in the page cache with `O_DIRECT`
/// too: on the VMs berth is measured on, reading into fresh page-cache
/// pages ran at 100–400 MB/s with 2.3–2.7 s of CPU per GiB, an `O_DIRECT`
/// read of the same file at 510–580 MB/s with 0.12 s. A blob read again is
/// read through the page cache, so what is pulled repeatedly becomes cached
/// and goes out with `sendfile` from then on.
fn first_read(file: &std::fs::File, offset: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let set = seen.get_or_insert_with(Default::default);
    if set.len() >= SEEN_MAX {
        set.clear();
    }
    set.insert((meta.dev(), meta.ino(), offset))
}

/// Alignment of `O_DIRECT` reads (offset, length and buffer address).
const DIRECT_ALIGN: usize = 4096;

/// A second descriptor of a blob file opened with `O_DIRECT`: reads that
/// bypass the page cache into pooled aligned buffers.
struct DirectReader {
    file: std::fs::File,
}

impl DirectReader {
    /// Reopen `file` with `O_DIRECT`; `None` where that is refused.
    #[cfg(target_os = "linux")]
    fn open(file: &std::fs::File) -> Option<DirectReader> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        // A new open file description, so the flag does not affect the
        // descriptor sendfile and buffered reads use.
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .ok()
            .map(|file| DirectReader { file })
    }

    #[cfg(not(target_os = "linux"))]
    fn open(_file: &std::fs::File) -> Option<DirectReader> {
        None
    }

    /// Read `len` (at most [`READ_CHUNK`]) bytes at `offset`; the caller
    /// checked the file holds them.
    fn read(&self, offset: u64, len: u64) -> std::io::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= READ_CHUNK)
            .ok_or_else(|| std::io::Error::other("read slice larger than the read buffer"))?;
        let lead = (offset % DIRECT_ALIGN as u64) as usize;
        let start = offset - lead as u64;
        let want = (lead + len).div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
        let pooled = DIRECT_POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mem = pooled.unwrap_or_else(|| vec![0u8; DIRECT_BUF]);
        let at = mem.as_ptr().align_offset(DIRECT_ALIGN);
        if at >= DIRECT_ALIGN || at + want > mem.len() {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut buf = AlignedRead { mem, at, lead, len };
        let mut got = 0;
        while got < lead + len {
            let dst = &mut buf.mem[at + got..at + want];
            match self.file.read_at(dst, start + got as u64) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob file shorter than recorded",
                    ))
                }
                // A short read ends at the end of the file; the next read
                // starts at an aligned offset only if this one was whole
                // pages, so anything else is the end.
                Ok(n) if n % DIRECT_ALIGN != 0 && got + n < lead + len => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob file shorter than recorded",
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Bytes::from_owner(std::mem::replace(
            &mut buf,
            AlignedRead {
                mem: Vec::new(),
                at: 0,
                lead: 0,
                len: 0,
            },
        )))
    }
}

/// Bytes of an aligned read buffer: a slice and up to a page each side.
const DIRECT_BUF: usize = READ_CHUNK + 3 * DIRECT_ALIGN;

/// Idle aligned read buffers (at most [`READ_POOL_MAX`]).
static DIRECT_POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// One `O_DIRECT` read: `len` bytes at `mem[at + lead..]`. Its memory goes
/// back to [`DIRECT_POOL`] when dropped.
struct AlignedRead {
    mem: Vec<u8>,
    at: usize,
    lead: usize,
    len: usize,
}

impl AsRef<[u8]> for AlignedRead {
    fn as_ref(&self) -> &[u8] {
        let from = self.at + self.lead;
        &self.mem[from..from + self.len]
    }
}

impl Drop for AlignedRead {
    fn drop(&mut self) {
        let mem = std::mem::take(&mut self.mem);
        if mem.len() != DIRECT_BUF {
            return;
        }
        let mut pool = DIRECT_POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < READ_POOL_MAX {
            pool.push(mem);
        }
    }
}

/// Idle read buffers kept for the next cold slice.
static READ_POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// At most this many idle read buffers (8 MiB).
const READ_POOL_MAX: usize = 8;

/// A pooled buffer holding one slice read from disk; returns to the pool
/// when the connection is done with it.
struct PooledRead {
    buf: Vec<u8>,
    len: usize,
}

impl AsRef<[u8]> for PooledRead {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledRead {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut pool = READ_POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < READ_POOL_MAX && buf.len() == READ_CHUNK {
            pool.push(buf);
        }
    }
}

/// Read `len` (at most [`READ_CHUNK`]) bytes at `offset` into a pooled
/// buffer.
fn read_pooled(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= READ_CHUNK)
        .ok_or_else(|| std::io::Error::other("read slice larger than the read buffer"))?;
    let pooled = READ_POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut buf = pooled.unwrap_or_else(|| vec![0u8; READ_CHUNK]);
    file.read_exact_at(&mut buf[..len], offset)?;
    Ok(Bytes::from_owner(PooledRead { buf, len }))
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

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
