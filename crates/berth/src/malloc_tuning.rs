//! glibc allocator settings for the server process.
//!
//! glibc raises its mmap threshold dynamically: once a large block (an
//! 8 MiB object-storage part buffer, a manifest body, a request buffer) is
//! freed, later blocks of up to 32 MiB come from the heap arenas instead of
//! their own mappings, and a heap arena is returned to the kernel only from
//! its top. With one arena per worker thread the freed part buffers stay
//! resident: measured with two replicas on S3, a replica's RSS stayed at
//! 118–141 MiB after eight parallel 64 MiB pushes (158 MiB at their peak),
//! against 29–31 MiB (111 MiB peak) with the threshold pinned at 1 MiB
//! (docs/performance.md, "Memory").
//!
//! Pinning the threshold (which also stops the dynamic adjustment of the
//! trim threshold) gives every block of 1 MiB or more its own mapping,
//! unmapped when freed. Blocks that large are rare and long-lived here
//! (pooled I/O buffers, part buffers), so the extra `mmap`/`munmap` calls
//! cost nothing measurable. A `MALLOC_MMAP_THRESHOLD_` set in the
//! environment is glibc's own tunable and is left alone.

/// Blocks of this size or more get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

/// Apply the settings (once, before the runtime's threads start).
pub fn apply() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before any other thread exists.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok != 1 {
            eprintln!("berth: warning: mallopt(M_MMAP_THRESHOLD) failed; memory use may be higher");
        }
    }
}
