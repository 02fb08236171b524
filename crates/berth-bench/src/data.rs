//! Deterministic, incompressible test data generated on the fly.
//!
//! A blob is fully described by a [`BlobSpec`] (seed + size). Its bytes are
//! produced block by block from a fast PRNG (`SmallRng`, xoshiro256++), so a
//! 1 GiB blob is never held in memory: request bodies stream from the
//! generator, and any byte range can be regenerated (every block is seeded
//! independently), which chunked uploads and auth retries rely on.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use futures::Stream;
use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest as _, Sha256};

/// Size of one independently seeded block of generated data.
pub const BLOCK: u64 = 1 << 20;

/// A generated blob: the same seed and size always yield the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlobSpec {
    /// PRNG seed; distinct seeds give unrelated content.
    pub seed: u64,
    /// Length in bytes.
    pub size: u64,
}

impl BlobSpec {
    /// A blob of `size` bytes generated from `seed`.
    pub fn new(seed: u64, size: u64) -> Self {
        Self { seed, size }
    }

    /// Writes the blob's bytes `[block * BLOCK, ...)` into `out` (at most one block).
    fn fill_block(&self, block: u64, out: &mut [u8]) {
        let mut rng =
            SmallRng::seed_from_u64(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ block);
        rng.fill_bytes(out);
    }

    /// The bytes in `[start, end)` as one buffer (for small ranges only).
    pub fn bytes_range(&self, start: u64, end: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(end.saturating_sub(start)).unwrap_or(0));
        let mut gen = RangeGen::new(*self, start, end);
        while let Some(chunk) = gen.next_chunk() {
            out.extend_from_slice(&chunk);
        }
        out
    }

    /// Streams the bytes in `[start, end)`, advancing `progress` as chunks are produced.
    pub fn stream_range(
        &self,
        start: u64,
        end: u64,
        progress: ProgressBar,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let gen = RangeGen::new(*self, start, end);
        futures::stream::unfold((gen, progress), |(mut gen, progress)| async move {
            let chunk = gen.next_chunk()?;
            progress.inc(chunk.len() as u64);
            Some((Ok(chunk), (gen, progress)))
        })
    }

    /// Streams the whole blob.
    pub fn stream(
        &self,
        progress: ProgressBar,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        self.stream_range(0, self.size, progress)
    }

    /// `sha256:<hex>` of the blob, computed once per spec and then cached.
    ///
    /// Costs one pass of generation + hashing (~1 s per GiB); call it from a
    /// blocking context (see [`digests`]) during a scenario's untimed setup.
    pub fn digest(&self) -> String {
        static CACHE: OnceLock<Mutex<HashMap<BlobSpec, String>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(d) = lock(cache).get(self) {
            return d.clone();
        }
        let mut hasher = Sha256::new();
        let mut gen = RangeGen::new(*self, 0, self.size);
        while let Some(chunk) = gen.next_chunk() {
            hasher.update(&chunk);
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        lock(cache).insert(*self, digest.clone());
        digest
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Computes the digests of many blobs on blocking threads, two at a time.
pub async fn digests(specs: &[BlobSpec]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(specs.len());
    for pair in specs.chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .map(|s| {
                let s = *s;
                tokio::task::spawn_blocking(move || s.digest())
            })
            .collect();
        for h in handles {
            out.push(h.await?);
        }
    }
    Ok(out)
}

/// `sha256:<hex>` of an in-memory buffer.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Produces a blob's byte range one block-sized chunk at a time.
struct RangeGen {
    spec: BlobSpec,
    pos: u64,
    end: u64,
}

impl RangeGen {
    fn new(spec: BlobSpec, start: u64, end: u64) -> Self {
        let end = end.min(spec.size);
        Self {
            spec,
            pos: start.min(end),
            end,
        }
    }

    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.pos >= self.end {
            return None;
        }
        let block = self.pos / BLOCK;
        let block_start = block * BLOCK;
        let block_len = BLOCK.min(self.spec.size - block_start);
        // usize conversions are safe: BLOCK fits in usize on every supported target.
        let mut buf = vec![0u8; block_len as usize];
        self.spec.fill_block(block, &mut buf);
        let from = (self.pos - block_start) as usize;
        let to = (self.end.min(block_start + block_len) - block_start) as usize;
        self.pos = block_start + to as u64;
        let mut chunk = Bytes::from(buf);
        if from != 0 || to != chunk.len() {
            chunk = chunk.slice(from..to);
        }
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn ranges_concatenate_to_the_whole_blob() {
        let spec = BlobSpec::new(7, 3 * BLOCK + 12345);
        let whole = spec.bytes_range(0, spec.size);
        assert_eq!(whole.len() as u64, spec.size);
        let mut joined = Vec::new();
        let step = BLOCK / 3 + 17;
        let mut start = 0;
        while start < spec.size {
            let end = (start + step).min(spec.size);
            joined.extend_from_slice(&spec.bytes_range(start, end));
            start = end;
        }
        assert_eq!(whole, joined);
        assert_eq!(spec.digest(), sha256_digest(&whole));
    }

    #[test]
    fn different_seeds_differ_and_data_is_not_trivially_compressible() {
        let a = BlobSpec::new(1, 4096).bytes_range(0, 4096);
        let b = BlobSpec::new(2, 4096).bytes_range(0, 4096);
        assert_ne!(a, b);
        let mut counts = [0u32; 256];
        for byte in &a {
            counts[*byte as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c < 64), "byte histogram too skewed");
    }

    #[tokio::test]
    async fn stream_matches_bytes_and_counts_progress() {
        let spec = BlobSpec::new(3, BLOCK + 5);
        let pb = ProgressBar::hidden();
        let chunks: Vec<_> = spec.stream(pb.clone()).collect().await;
        let mut all = Vec::new();
        for c in chunks {
            all.extend_from_slice(&c.expect("generator never fails"));
        }
        assert_eq!(all, spec.bytes_range(0, spec.size));
        assert_eq!(pb.position(), spec.size);
    }
}
