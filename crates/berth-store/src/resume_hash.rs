//! SHA-256 and SHA-512 whose state can be saved between requests.
//!
//! An upload on object storage may be continued by another replica, which
//! must not re-read the bytes already uploaded. The state of a running hash
//! is the compression function's chaining value (the "midstate"), the bytes
//! of the last incomplete block and the total length; `sha2`'s
//! `compress256`/`compress512` advance the chaining value, and
//! [`ResumableHasher::to_bytes`] serialises the three parts so the upload
//! session row can carry them. Padding and the final output follow
//! FIPS 180-4 §5.1 and §6.

use berth_core::{Algorithm, Digest};
use sha2::digest::generic_array::GenericArray;

/// Initial chaining value of SHA-256 (FIPS 180-4 §5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Initial chaining value of SHA-512 (FIPS 180-4 §5.3.5).
const SHA512_IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// Version byte at the start of a serialised state.
const FORMAT: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Chain {
    Sha256([u32; 8]),
    Sha512([u64; 8]),
}

/// A running SHA-256 or SHA-512 whose state can be saved and restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumableHasher {
    chain: Chain,
    /// Bytes of the current incomplete block (shorter than a block).
    pending: Vec<u8>,
    /// Bytes hashed so far.
    len: u64,
}

impl ResumableHasher {
    /// A fresh hash of `algorithm`.
    pub fn new(algorithm: Algorithm) -> ResumableHasher {
        let chain = match algorithm {
            Algorithm::Sha256 => Chain::Sha256(SHA256_IV),
            Algorithm::Sha512 => Chain::Sha512(SHA512_IV),
        };
        ResumableHasher {
            chain,
            pending: Vec::with_capacity(128),
            len: 0,
        }
    }

    /// The algorithm computed.
    pub fn algorithm(&self) -> Algorithm {
        match self.chain {
            Chain::Sha256(_) => Algorithm::Sha256,
            Chain::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn block_len(&self) -> usize {
        match self.chain {
            Chain::Sha256(_) => 64,
            Chain::Sha512(_) => 128,
        }
    }

    fn compress(&mut self, blocks: &[u8]) {
        match &mut self.chain {
            Chain::Sha256(state) => {
                for block in blocks.chunks_exact(64) {
                    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
                }
            }
            Chain::Sha512(state) => {
                for block in blocks.chunks_exact(128) {
                    sha2::compress512(state, std::slice::from_ref(GenericArray::from_slice(block)));
                }
            }
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        let block = self.block_len();
        if !self.pending.is_empty() {
            let take = (block - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < block {
                return;
            }
            let full = std::mem::take(&mut self.pending);
            self.compress(&full);
            self.pending = full;
            self.pending.clear();
        }
        let whole = bytes.len() / block * block;
        self.compress(&bytes[..whole]);
        self.pending.extend_from_slice(&bytes[whole..]);
    }

    /// Finish and return the digest.
    pub fn finish(mut self) -> Digest {
        let algorithm = self.algorithm();
        let block = self.block_len();
        let len_bytes = if block == 64 { 8 } else { 16 };
        let bits = u128::from(self.len) * 8;
        let mut tail = std::mem::take(&mut self.pending);
        tail.push(0x80);
        while tail.len() % block != block - len_bytes {
            tail.push(0);
        }
        tail.extend_from_slice(&bits.to_be_bytes()[16 - len_bytes..]);
        self.compress(&tail);
        let out: Vec<u8> = match &self.chain {
            Chain::Sha256(s) => s.iter().flat_map(|w| w.to_be_bytes()).collect(),
            Chain::Sha512(s) => s.iter().flat_map(|w| w.to_be_bytes()).collect(),
        };
        // 32 or 64 bytes by construction, the algorithm's output length.
        Digest::from_hash(algorithm, &out).unwrap_or_else(|| Digest::compute(algorithm, &[]))
    }

    /// Serialise: format byte, algorithm byte (1 = SHA-256, 2 = SHA-512),
    /// the length (8 bytes big-endian), the chaining value (big-endian
    /// words), then the pending bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 8 + 64 + self.pending.len());
        out.push(FORMAT);
        match &self.chain {
            Chain::Sha256(s) => {
                out.push(1);
                out.extend_from_slice(&self.len.to_be_bytes());
                s.iter()
                    .for_each(|w| out.extend_from_slice(&w.to_be_bytes()));
            }
            Chain::Sha512(s) => {
                out.push(2);
                out.extend_from_slice(&self.len.to_be_bytes());
                s.iter()
                    .for_each(|w| out.extend_from_slice(&w.to_be_bytes()));
            }
        }
        out.extend_from_slice(&self.pending);
        out
    }

    /// Restore a state written by [`ResumableHasher::to_bytes`]; `None` when
    /// the bytes are not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<ResumableHasher> {
        let (&format, rest) = bytes.split_first()?;
        let (&alg, rest) = rest.split_first()?;
        if format != FORMAT || rest.len() < 8 {
            return None;
        }
        let (len, rest) = rest.split_at(8);
        let len = u64::from_be_bytes(len.try_into().ok()?);
        let (chain, pending, block) = match alg {
            1 if rest.len() >= 32 => {
                let (words, pending) = rest.split_at(32);
                let mut s = [0u32; 8];
                for (w, b) in s.iter_mut().zip(words.chunks_exact(4)) {
                    *w = u32::from_be_bytes(b.try_into().ok()?);
                }
                (Chain::Sha256(s), pending, 64u64)
            }
            2 if rest.len() >= 64 => {
                let (words, pending) = rest.split_at(64);
                let mut s = [0u64; 8];
                for (w, b) in s.iter_mut().zip(words.chunks_exact(8)) {
                    *w = u64::from_be_bytes(b.try_into().ok()?);
                }
                (Chain::Sha512(s), pending, 128u64)
            }
            _ => return None,
        };
        if pending.len() as u64 != len % block {
            return None;
        }
        Some(ResumableHasher {
            chain,
            pending: pending.to_vec(),
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn matches_sha2_for_every_length_around_block_edges() {
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            for n in [
                0, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 1000, 70_000,
            ] {
                let d = data(n);
                let mut h = ResumableHasher::new(alg);
                h.update(&d);
                assert_eq!(h.finish(), Digest::compute(alg, &d), "{alg:?} {n}");
            }
        }
    }

    #[test]
    fn survives_serialisation_between_odd_pieces() {
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let d = data(10_007);
            let mut h = ResumableHasher::new(alg);
            let mut at = 0;
            for step in [1usize, 7, 64, 129, 3000, 5000] {
                let end = (at + step).min(d.len());
                h.update(&d[at..end]);
                at = end;
                h = ResumableHasher::from_bytes(&h.to_bytes()).expect("restores");
            }
            h.update(&d[at..]);
            assert_eq!(h.finish(), Digest::compute(alg, &d));
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(ResumableHasher::from_bytes(b"").is_none());
        assert!(ResumableHasher::from_bytes(&[1, 1, 0, 0]).is_none());
        let mut good = ResumableHasher::new(Algorithm::Sha256);
        good.update(b"abc");
        let mut bytes = good.to_bytes();
        bytes.pop();
        assert!(ResumableHasher::from_bytes(&bytes).is_none());
    }
}
