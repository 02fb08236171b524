//! A small deterministic mutation fuzzer for berth's parser tests, on
//! stable Rust and without dependencies.
//!
//! [`run`] starts from a corpus (seed inputs written in the test plus the
//! committed files under `fuzz/corpus/<target>/` at the workspace root),
//! and feeds the target `iterations` inputs made by mutating corpus
//! entries: bit flips, byte changes to "interesting" values, insertions
//! and deletions, chunk duplication, splices of two entries, and tokens
//! from a dictionary (`:`, `"`, `/`, `sha256:`, `%`, huge numbers, …).
//! The target must not panic (and must not hang: keep targets pure). On a
//! panic, [`run`] writes the input to `target/fuzz-crashes/<target>/`
//! and fails with the input, its file and the seed, so the case can be
//! added to the corpus once fixed.
//!
//! The suite runs each target for [`DEFAULT_ITERATIONS`]; longer campaigns
//! set `BERTH_FUZZ_ITERATIONS` (and `BERTH_FUZZ_SEED` for another random
//! stream), see docs/security.md.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Inputs per target in a normal test run.
pub const DEFAULT_ITERATIONS: u64 = 3000;

/// Longest input a mutation produces.
pub const MAX_LEN: usize = 4096;

/// The seed of the random stream unless `BERTH_FUZZ_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 16;

/// Tokens mutations insert: the separators and keywords the parsers split on.
const DICTIONARY: &[&[u8]] = &[
    b":",
    b"/",
    b"@",
    b"\"",
    b",",
    b"=",
    b"-",
    b"*",
    b".",
    b"%",
    b"%3A",
    b"\\",
    b"\0",
    b"\xff",
    b"\xc3\xa9",
    b"sha256:",
    b"sha512:",
    b"bytes=",
    b"repository:",
    b"registry:catalog:*",
    b"pull,push",
    b"Bearer ",
    b"Basic ",
    b"realm=",
    b"{",
    b"}",
    b"[",
    b"]",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999999",
    b"1e309",
    b"\"mediaType\":",
    b"\"manifests\":",
    b"\"layers\":",
    b"\"digest\":",
    b"\"size\":",
    b"/v2/",
    b"/blobs/",
    b"/manifests/",
    b"/tags/list",
    b"/uploads/",
    b"=\n",
    b"[section]\n",
];

/// A xorshift64* stream: deterministic for a seed, good enough for
/// choosing mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, never zero.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The workspace root (two levels above a crate's manifest directory).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed corpus files of `target`.
fn corpus_files(target: &str) -> Vec<Vec<u8>> {
    let dir = workspace_root().join("fuzz/corpus").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(9) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'a', b' ', b'\n'];
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if !input.is_empty() => {
                let start = rng.below(input.len());
                let len = 1 + rng.below((input.len() - start).min(16));
                input.drain(start..start + len);
            }
            3 => {
                let at = rng.below(input.len() + 1);
                let byte = (rng.next() & 0xff) as u8;
                input.insert(at, byte);
            }
            4 | 5 => {
                let at = rng.below(input.len() + 1);
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, token.iter().copied());
            }
            6 if !input.is_empty() => {
                let start = rng.below(input.len());
                let len = 1 + rng.below((input.len() - start).min(64));
                let chunk: Vec<u8> = input[start..start + len].to_vec();
                let most = if rng.below(8) == 0 { 200 } else { 4 };
                let times = 1 + rng.below(most);
                let at = rng.below(input.len() + 1);
                for _ in 0..times {
                    input.splice(at..at, chunk.iter().copied());
                }
            }
            7 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ if !input.is_empty() => {
                let i = rng.below(input.len());
                let j = rng.below(input.len());
                input.swap(i, j);
            }
            _ => input.push(b'a'),
        }
    }
    input.truncate(MAX_LEN);
}

/// Feed `target` the seeds, the committed corpus of `name`, and
/// [`DEFAULT_ITERATIONS`] (or `BERTH_FUZZ_ITERATIONS`) mutations of them.
/// Panics, naming the input, when `target` panics on one.
pub fn run(name: &str, seeds: &[&[u8]], target: impl Fn(&[u8])) {
    let iterations = env_u64("BERTH_FUZZ_ITERATIONS").unwrap_or(DEFAULT_ITERATIONS);
    let seed = env_u64("BERTH_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let mut corpus: Vec<Vec<u8>> = seeds.iter().map(|s| s.to_vec()).collect();
    corpus.extend(corpus_files(name));
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut rng = Rng::new(seed ^ fnv(name.as_bytes()));
    let check = |input: &[u8], what: &str| {
        let outcome = catch_unwind(AssertUnwindSafe(|| target(input)));
        if outcome.is_err() {
            let file = save_crash(name, input);
            panic!(
                "fuzz target {name} panicked on {what} {:?} (saved to {}; seed {seed}); \
                 fix it and add the file to fuzz/corpus/{name}/",
                String::from_utf8_lossy(input),
                file.map_or_else(|| "nowhere".to_string(), |p| p.display().to_string()),
            );
        }
    };
    for entry in &corpus {
        check(entry, "corpus entry");
    }
    let mut input = Vec::new();
    for _ in 0..iterations {
        // Mostly mutate a corpus entry afresh; sometimes keep mutating the
        // last input to walk further away from the corpus.
        if input.is_empty() || rng.below(4) != 0 {
            input.clone_from(&corpus[rng.below(corpus.len())]);
        }
        mutate(&mut rng, &mut input, &corpus);
        check(&input, "input");
    }
}

/// [`run`] for targets that take text: inputs that are not UTF-8 are
/// given lossily converted.
pub fn run_str(name: &str, seeds: &[&str], target: impl Fn(&str)) {
    let seeds: Vec<&[u8]> = seeds.iter().map(|s| s.as_bytes()).collect();
    run(name, &seeds, |bytes| {
        target(&String::from_utf8_lossy(bytes))
    });
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn save_crash(name: &str, input: &[u8]) -> Option<PathBuf> {
    let dir = workspace_root().join("target/fuzz-crashes").join(name);
    std::fs::create_dir_all(&dir).ok()?;
    let file = dir.join(format!("crash-{:016x}", fnv(input)));
    std::fs::write(&file, input).ok()?;
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_and_bounded() {
        let corpus = vec![b"sha256:abc".to_vec()];
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        let (mut x, mut y) = (corpus[0].clone(), corpus[0].clone());
        for _ in 0..1000 {
            mutate(&mut a, &mut x, &corpus);
            mutate(&mut b, &mut y, &corpus);
            assert_eq!(x, y);
            assert!(x.len() <= MAX_LEN);
        }
    }

    #[test]
    #[should_panic(expected = "fuzz target self-test panicked")]
    fn a_panicking_target_fails_the_run() {
        run("self-test", &[b"ab"], |input| {
            assert!(!input.contains(&b':'), "found a colon");
        });
    }
}
