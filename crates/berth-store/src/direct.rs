//! Appending an upload to its file with `O_DIRECT`, from a few aligned,
//! recycled buffers, while the next buffer is being filled.
//!
//! Why not the page cache: every byte written through it is copied into a
//! freshly allocated page, and on a virtual machine whose idle memory the
//! host takes back (virtio-balloon free page reporting, as on the 2-core
//! machines berth is measured on) each of those pages costs a host fault
//! first. A 1 GiB push spent 65% of its server CPU in that copy and took
//! 4–6 s of CPU. Writing from recycled buffers straight to the device
//! touches no new memory, skips the copy and the kernel's write-back work,
//! and keeps the device busy in parallel with hashing.
//!
//! Where `O_DIRECT` is refused (tmpfs on older kernels, some network file
//! systems) or the upload does not start at an aligned offset (a chunk after
//! an odd-sized chunk), the bytes go through the page cache as before. The
//! unaligned tail of every body is always written through the page cache;
//! the commit's fsync makes both durable.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;

/// Offset, length and address alignment `O_DIRECT` needs (enough for any
/// logical block size up to 4 KiB).
pub const ALIGN: usize = 4096;

/// Bytes per direct write.
pub const BUF_BYTES: usize = 2 * 1024 * 1024;

/// Buffers one upload uses at most: one being filled, the others queued or
/// being written, so hashing runs ahead of the device's pauses.
const BUFS_PER_UPLOAD: usize = 4;

/// Buffers all uploads together may hold (24 MiB). An upload that finds
/// none free writes through the page cache; one that finds fewer than it
/// could use waits for its own to come back from the device. This keeps
/// 8 parallel pushes well under 100 MiB of RSS.
const BUFS_TOTAL: usize = 12;

/// Idle buffers kept for the next upload (8 MiB), so uploads do not fault
/// fresh memory in every time.
const POOL_IDLE_MAX: usize = 4;

/// Bytes between two requests to start write-out on the page-cache path.
const WRITEBACK_BYTES: u64 = 8 * 1024 * 1024;

/// Whether uploads may use `O_DIRECT` at all (`berth serve --upload-io`).
static DIRECT_WRITES: AtomicBool = AtomicBool::new(true);

/// Choose between `O_DIRECT` (true, the default) and page-cache writes
/// (false) for every upload that starts after this call.
pub fn set_direct_writes(enabled: bool) {
    DIRECT_WRITES.store(enabled, Ordering::Relaxed);
}

/// Idle memory for buffers (each `BUF_BYTES + ALIGN` long).
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Buffers currently held by uploads.
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// A `BUF_BYTES` buffer whose start is `ALIGN`-aligned, filled from the
/// front. Dropping it returns its memory to the idle pool.
pub struct AlignedBuf {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// A buffer, unless uploads already hold `BUFS_TOTAL`.
    fn take() -> Option<AlignedBuf> {
        if IN_USE.fetch_add(1, Ordering::AcqRel) >= BUFS_TOTAL {
            IN_USE.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let pooled = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mem = pooled.unwrap_or_else(|| vec![0u8; BUF_BYTES + ALIGN]);
        let start = mem.as_ptr().align_offset(ALIGN);
        // align_offset may in theory answer "impossible" (usize::MAX); the
        // buffer then counts as not taken.
        let buf = AlignedBuf { mem, start, len: 0 };
        (start < ALIGN).then_some(buf)
    }

    /// Copy as much of `bytes` as fits; returns how much was taken.
    fn fill_from(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(BUF_BYTES - self.len);
        let at = self.start + self.len;
        self.mem[at..at + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == BUF_BYTES
    }

    fn filled(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        IN_USE.fetch_sub(1, Ordering::AcqRel);
        let mem = std::mem::take(&mut self.mem);
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_IDLE_MAX {
            pool.push(mem);
        }
    }
}

/// Turn `O_DIRECT` on or off for `file`'s open file description. Returns
/// whether the kernel accepted it.
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor this function borrows; no
    // memory is passed to the kernel.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return false;
        }
        let want = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        want == flags || libc::fcntl(fd, libc::F_SETFL, want) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, _on: bool) -> bool {
    false
}

/// Ask the kernel to start writing the file's dirty pages to disk now,
/// without waiting for them, so the fsync before a blob is acknowledged
/// only waits for the last few MiB.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File) {
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
fn start_writeback(_file: &File) {}

/// The thread that performs the direct writes of one upload.
struct Lane {
    full: mpsc::SyncSender<(AlignedBuf, u64)>,
    free: mpsc::Receiver<AlignedBuf>,
    thread: std::thread::JoinHandle<io::Result<()>>,
    /// Buffers this upload owns (filling + in the lane).
    owned: usize,
}

impl Lane {
    fn start(file: &File) -> io::Result<Lane> {
        let f = file.try_clone()?;
        let (full, full_rx) = mpsc::sync_channel::<(AlignedBuf, u64)>(BUFS_PER_UPLOAD);
        let (free_tx, free) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("berth-upload-io".into())
            .spawn(move || -> io::Result<()> {
                for (mut buf, offset) in full_rx {
                    write_direct(&f, buf.filled(), offset)?;
                    buf.len = 0;
                    if free_tx.send(buf).is_err() {
                        break;
                    }
                }
                Ok(())
            })?;
        Ok(Lane {
            full,
            free,
            thread,
            owned: 1,
        })
    }

    /// Stop the thread and report its first error (the buffers it held go
    /// back to the pool as they drop).
    fn close(self) -> io::Result<()> {
        drop(self.full);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("upload write thread panicked")))
    }
}

/// One direct write; a file system that turns out to refuse it (EINVAL
/// after the flag was accepted) gets the same bytes through the page cache.
fn write_direct(f: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    match f.write_all_at(bytes, offset) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && set_direct(f, false) => {
            f.write_all_at(bytes, offset)
        }
        other => other,
    }
}

/// Appends a stream of byte slices to a file from `start`; see the module
/// documentation for the two paths.
pub struct Appender {
    file: File,
    offset: u64,
    since_writeback: u64,
    io: DirectState,
}

/// The direct path's buffer and write thread. Dropping it (an upload that
/// failed half-way) waits for the thread, so no write of this request can
/// land after the caller has moved on (e.g. truncated the file for a retry).
#[derive(Default)]
struct DirectState {
    /// The buffer being filled while the direct path is possible.
    buf: Option<AlignedBuf>,
    lane: Option<Lane>,
}

impl Drop for DirectState {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            let _ = lane.close();
        }
    }
}

impl Appender {
    /// Append to `file` starting at byte `start` (its current length).
    pub fn new(file: File, start: u64) -> Appender {
        let buf = if start.is_multiple_of(ALIGN as u64) && DIRECT_WRITES.load(Ordering::Relaxed) {
            AlignedBuf::take()
        } else {
            None
        };
        Appender {
            file,
            offset: start,
            since_writeback: 0,
            io: DirectState { buf, lane: None },
        }
    }

    /// Append `bytes`.
    pub fn push(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let Some(buf) = self.io.buf.as_mut() else {
                return self.write_cached(bytes);
            };
            let n = buf.fill_from(bytes);
            bytes = &bytes[n..];
            if buf.is_full() {
                self.flush_full()?;
            }
        }
        Ok(())
    }

    /// A full buffer: hand it to the write thread (starting it and turning
    /// `O_DIRECT` on the first time), or fall back to the page cache.
    fn flush_full(&mut self) -> io::Result<()> {
        let Some(buf) = self.io.buf.take() else {
            return Ok(());
        };
        let lane = match &mut self.io.lane {
            Some(lane) => lane,
            None => {
                if !set_direct(&self.file, true) {
                    return self.write_cached(buf.filled());
                }
                match Lane::start(&self.file) {
                    Ok(lane) => self.io.lane.insert(lane),
                    Err(e) => {
                        set_direct(&self.file, false);
                        return Err(e);
                    }
                }
            }
        };
        let offset = self.offset;
        self.offset += buf.len as u64;
        let next = if lane.owned < BUFS_PER_UPLOAD {
            AlignedBuf::take().inspect(|_| lane.owned += 1)
        } else {
            None
        };
        if lane.full.send((buf, offset)).is_err() {
            return Err(self.fail_lane());
        }
        let next = match next.map_or_else(|| lane.free.recv(), Ok) {
            Ok(b) => b,
            Err(_) => return Err(self.fail_lane()),
        };
        self.io.buf = Some(next);
        Ok(())
    }

    /// The write thread stopped: its error.
    fn fail_lane(&mut self) -> io::Error {
        match self.io.lane.take().map(Lane::close) {
            Some(Err(e)) => e,
            _ => io::Error::other("upload write thread stopped"),
        }
    }

    /// Write through the page cache at the current offset.
    fn write_cached(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.offset)?;
        self.offset += bytes.len() as u64;
        self.since_writeback += bytes.len() as u64;
        if self.since_writeback >= WRITEBACK_BYTES {
            start_writeback(&self.file);
            self.since_writeback = 0;
        }
        Ok(())
    }

    /// Write what is still buffered and wait for the write thread (direct
    /// mode is switched off again). Returns the offset after the last byte.
    pub fn finish(mut self) -> io::Result<u64> {
        let buf = self.io.buf.take();
        let mut tail = buf.as_ref().map_or(&[][..], AlignedBuf::filled);
        if let Some(lane) = self.io.lane.take() {
            // The aligned part of the last buffer can still go direct.
            let (head, rest) = tail.split_at(tail.len() / ALIGN * ALIGN);
            let head_written = if head.is_empty() {
                Ok(())
            } else {
                write_direct(&self.file, head, self.offset)
            };
            let closed = lane.close();
            set_direct(&self.file, false);
            head_written?;
            closed?;
            self.offset += head.len() as u64;
            tail = rest;
        }
        if !tail.is_empty() {
            self.write_cached(tail)?;
        }
        if self.since_writeback > 0 {
            start_writeback(&self.file);
        }
        Ok(self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
            .collect()
    }

    fn roundtrip(start_len: usize, pieces: &[usize]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let prefix = pattern(start_len, 7);
        std::fs::write(&path, &prefix).expect("write prefix");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        let mut a = Appender::new(file, start_len as u64);
        let mut expect = prefix.clone();
        for (i, &n) in pieces.iter().enumerate() {
            let p = pattern(n, i as u8);
            a.push(&p).expect("push");
            expect.extend_from_slice(&p);
        }
        let end = a.finish().expect("finish");
        assert_eq!(end, expect.len() as u64);
        let mut got = Vec::new();
        std::fs::File::open(&path)
            .expect("reopen")
            .read_to_end(&mut got)
            .expect("read");
        assert_eq!(got.len(), expect.len());
        assert!(got == expect, "content differs");
    }

    #[test]
    fn small_body_goes_through_the_page_cache() {
        roundtrip(0, &[10, 4096, 77]);
    }

    #[test]
    fn large_body_in_odd_pieces_is_written_exactly() {
        roundtrip(
            0,
            &[
                1,
                BUF_BYTES - 1,
                BUF_BYTES + 4095,
                3 * BUF_BYTES / 2,
                417_792,
                12_345,
            ],
        );
    }

    #[test]
    fn continues_after_an_aligned_prefix() {
        roundtrip(BUF_BYTES, &[BUF_BYTES * 2 + 100]);
    }

    #[test]
    fn continues_after_an_unaligned_prefix_through_the_page_cache() {
        roundtrip(1000, &[BUF_BYTES * 2 + 5]);
    }

    #[test]
    fn without_free_buffers_it_writes_through_the_page_cache() {
        let held: Vec<AlignedBuf> = std::iter::from_fn(AlignedBuf::take).take(100).collect();
        assert!(held.len() <= BUFS_TOTAL);
        roundtrip(0, &[BUF_BYTES * 3 + 17]);
        drop(held);
        assert!(AlignedBuf::take().is_some());
    }

    #[test]
    fn exact_multiple_of_the_buffer_leaves_no_tail() {
        roundtrip(0, &[BUF_BYTES, BUF_BYTES]);
    }
}
