//! Zero-copy blob sends: a committed blob region is mapped (never touched)
//! and handed to hyper as ordinary `Bytes`; when the connection's socket is
//! asked to write bytes that lie inside such a mapping, it calls
//! `sendfile(2)` for the same file range instead, so the kernel moves
//! page-cache pages into the socket without a userspace copy, page-table
//! setup or `munmap` (what distribution does with Go's `sendfile`).
//!
//! Correctness does not depend on hyper's framing: bytes at an address
//! inside a registered mapping *are* the file's bytes at the matching
//! offset (committed blob files are immutable), so substituting
//! `sendfile` for a write of those bytes puts the same bytes on the wire.
//! A mapping is unregistered before it is unmapped, and hyper keeps the
//! `Bytes` (and so the mapping) alive while it writes them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One registered mapping: where it ends and which file range it shows.
struct Region {
    end: usize,
    file: Arc<File>,
    file_offset: u64,
}

/// Registered mappings by start address.
static REGIONS: Mutex<BTreeMap<usize, Region>> = Mutex::new(BTreeMap::new());
/// How many mappings are registered (lets writes skip the lookup).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A read-only mapping of a blob file range, registered for `sendfile`
/// while it lives.
pub(crate) struct MappedRegion {
    map: memmap2::Mmap,
}

impl MappedRegion {
    /// Map `len` bytes of `file` from `offset` (the caller checked the file
    /// covers them) and register the mapping.
    pub(crate) fn new(file: &Arc<File>, offset: u64, len: u64) -> io::Result<MappedRegion> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        // SAFETY: committed blob files are never written or truncated in
        // place (commits rename, deletes unlink), and the caller checked the
        // file covers the region, so no mapped page can vanish under a reader.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len)
                .map(&**file)?
        };
        let start = map.as_ptr() as usize;
        REGIONS.lock().unwrap_or_else(|e| e.into_inner()).insert(
            start,
            Region {
                end: start + len,
                file: file.clone(),
                file_offset: offset,
            },
        );
        LIVE.fetch_add(1, Ordering::AcqRel);
        Ok(MappedRegion { map })
    }
}

impl AsRef<[u8]> for MappedRegion {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for MappedRegion {
    fn drop(&mut self) {
        let start = self.map.as_ptr() as usize;
        REGIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&start);
        LIVE.fetch_sub(1, Ordering::AcqRel);
        // `map` is unmapped after this, once no lookup can return it.
    }
}

/// The file range behind `bytes` when they start inside a registered
/// mapping: the file, the offset of `bytes[0]` in it and how many of
/// `bytes` the mapping covers.
pub(crate) fn lookup(bytes: &[u8]) -> Option<(Arc<File>, u64, usize)> {
    if bytes.is_empty() || LIVE.load(Ordering::Acquire) == 0 {
        return None;
    }
    let addr = bytes.as_ptr() as usize;
    let regions = REGIONS.lock().unwrap_or_else(|e| e.into_inner());
    let (&start, r) = regions.range(..=addr).next_back()?;
    if addr >= r.end {
        return None;
    }
    let n = bytes.len().min(r.end - addr);
    Some((r.file.clone(), r.file_offset + (addr - start) as u64, n))
}

/// Whether any mapping is registered.
pub(crate) fn any_live() -> bool {
    LIVE.load(Ordering::Acquire) > 0
}

/// One non-blocking `sendfile` of up to `len` bytes of `file` from
/// `offset` into the socket `sock`.
#[cfg(target_os = "linux")]
pub(crate) fn sendfile_once(
    sock: std::os::fd::RawFd,
    file: &File,
    offset: u64,
    len: usize,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut off = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    // Linux moves at most 0x7ffff000 bytes per call.
    let len = len.min(0x7fff_f000);
    loop {
        // SAFETY: both descriptors are open for the duration of the call
        // (`file` is borrowed, `sock` belongs to the caller's stream) and
        // `off` is a valid local the kernel updates.
        let n = unsafe { libc::sendfile(sock, file.as_raw_fd(), &mut off, len) };
        if n >= 0 {
            if n == 0 && len > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob file shorter than its mapping",
                ));
            }
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lookup_finds_offsets_inside_a_registered_mapping_only() {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(&vec![7u8; 3 * 4096 + 100]).expect("write");
        let f = Arc::new(f);
        let region = MappedRegion::new(&f, 4096, 2 * 4096 + 100).expect("map");
        let bytes = region.as_ref();
        let (_, off, n) = lookup(&bytes[10..]).expect("inside");
        assert_eq!((off, n), (4096 + 10, bytes.len() - 10));
        let (_, off, n) = lookup(&bytes[..5]).expect("start");
        assert_eq!((off, n), (4096, 5));
        let other = vec![0u8; 64];
        assert!(lookup(&other).is_none());
        let start = bytes.as_ptr() as usize;
        drop(region);
        let gone = REGIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&start);
        assert!(!gone, "unregistered on drop");
    }
}
