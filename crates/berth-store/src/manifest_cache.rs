//! Manifests recently read, so a pull's manifest `GET`/`HEAD` does not cost
//! an SQL round trip (through sqlx's connection thread) every time.
//!
//! Consistency: every write to a repository's manifests or tags through
//! this process ([`MetaStore`](crate::meta::MetaStore) calls
//! [`ManifestCache::invalidate`] after its commit) removes that
//! repository's entries at once, and a read that raced such a write is not
//! cached (the generation check in [`ManifestCache::insert`]). So within one
//! process a read never sees a manifest or tag older than the last
//! acknowledged write. On PostgreSQL (replicas) only lookups by digest are
//! cached — tags are read from the database every time, so a tag moved
//! through one replica is served by every other on the very next request —
//! and every replica hears every other replica's writes (`NOTIFY` on
//! [`crate::changes::MANIFESTS_CHANNEL`], sent at commit) and invalidates
//! the same way, so a deleted manifest disappears everywhere as soon as
//! that arrives, and in any case within [`TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::meta::ManifestRow;

/// How long an entry is served before it is read again.
pub const TTL: Duration = Duration::from_secs(1);

/// Manifests larger than this are not cached.
const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// Total manifest bytes cached; past it the cache starts over.
const MAX_TOTAL_BYTES: usize = 16 * 1024 * 1024;

/// Most entries; past it the cache starts over.
const MAX_ENTRIES: usize = 16 * 1024;

/// What a manifest was looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lookup<'a> {
    /// `GET /v2/<repo>/manifests/<tag>`.
    Tag(&'a str),
    /// `GET /v2/<repo>/manifests/<digest>`.
    Digest(&'a str),
}

/// One repository's entries, by tag and by digest (two maps, so a lookup
/// borrows the request's `&str` instead of allocating a key).
#[derive(Default)]
struct RepoEntries {
    tags: HashMap<String, Entry>,
    digests: HashMap<String, Entry>,
}

impl RepoEntries {
    fn map_mut(&mut self, lookup: Lookup<'_>) -> &mut HashMap<String, Entry> {
        match lookup {
            Lookup::Tag(_) => &mut self.tags,
            Lookup::Digest(_) => &mut self.digests,
        }
    }

    fn get(&self, lookup: Lookup<'_>) -> Option<&Entry> {
        match lookup {
            Lookup::Tag(t) => self.tags.get(t),
            Lookup::Digest(d) => self.digests.get(d),
        }
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.tags.values().chain(self.digests.values())
    }
}

struct Entry {
    row: ManifestRow,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every invalidation; an insert computed before the latest
    /// invalidation is dropped.
    generation: u64,
    repos: HashMap<String, RepoEntries>,
    entries: usize,
    bytes: usize,
}

/// The cache. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct ManifestCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ManifestCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        f.debug_struct("ManifestCache")
            .field("entries", &g.entries)
            .field("bytes", &g.bytes)
            .finish()
    }
}

impl ManifestCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves maps that are still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached row, if it is younger than [`TTL`].
    pub fn get(&self, repository: &str, lookup: Lookup<'_>) -> Option<ManifestRow> {
        let g = self.lock();
        let e = g.repos.get(repository)?.get(lookup)?;
        (e.at.elapsed() < TTL).then(|| e.row.clone())
    }

    /// The generation to pass to [`ManifestCache::insert`]; read it before
    /// the database.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Remember `row`, read from the database after `generation` was taken,
    /// unless a write was invalidated since.
    pub fn insert(&self, repository: &str, lookup: Lookup<'_>, row: &ManifestRow, generation: u64) {
        let size = row.content.len() + row.digest.len() + row.media_type.len();
        if size > MAX_ENTRY_BYTES {
            return;
        }
        let mut g = self.lock();
        if g.generation != generation {
            return;
        }
        if g.entries >= MAX_ENTRIES || g.bytes + size > MAX_TOTAL_BYTES {
            g.repos.clear();
            g.entries = 0;
            g.bytes = 0;
        }
        let entry = Entry {
            row: row.clone(),
            at: Instant::now(),
        };
        let repo = match g.repos.get_mut(repository) {
            Some(r) => r,
            None => g.repos.entry(repository.to_string()).or_default(),
        };
        let (Lookup::Tag(key) | Lookup::Digest(key)) = lookup;
        let old = repo.map_mut(lookup).insert(key.to_string(), entry);
        match old {
            Some(o) => {
                g.bytes = g.bytes + size - entry_size(&o.row);
            }
            None => {
                g.entries += 1;
                g.bytes += size;
            }
        }
    }

    /// Forget everything cached for `repository` (its manifests or tags
    /// changed).
    pub fn invalidate(&self, repository: &str) {
        let mut g = self.lock();
        g.generation = g.generation.wrapping_add(1);
        if let Some(m) = g.repos.remove(repository) {
            g.entries -= m.entries().count();
            g.bytes -= m.entries().map(|e| entry_size(&e.row)).sum::<usize>();
        }
    }
}

impl ManifestCache {
    /// Forget everything (notifications from other replicas may have been
    /// missed).
    pub fn clear(&self) {
        let mut g = self.lock();
        g.generation = g.generation.wrapping_add(1);
        g.repos.clear();
        g.entries = 0;
        g.bytes = 0;
    }
}

fn entry_size(row: &ManifestRow) -> usize {
    row.content.len() + row.digest.len() + row.media_type.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(d: &str) -> ManifestRow {
        ManifestRow {
            digest: d.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: bytes::Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn serves_what_was_inserted_until_invalidated() {
        let c = ManifestCache::default();
        let g = c.generation();
        c.insert("a/b", Lookup::Tag("v1"), &row("sha256:1"), g);
        c.insert("a/c", Lookup::Tag("v1"), &row("sha256:2"), g);
        assert_eq!(
            c.get("a/b", Lookup::Tag("v1")).map(|r| r.digest),
            Some("sha256:1".into())
        );
        assert!(c.get("a/b", Lookup::Digest("v1")).is_none());
        c.invalidate("a/b");
        assert!(c.get("a/b", Lookup::Tag("v1")).is_none());
        assert!(c.get("a/c", Lookup::Tag("v1")).is_some());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_cached() {
        let c = ManifestCache::default();
        let g = c.generation();
        // A writer commits and invalidates while the reader is in the database.
        c.invalidate("a/b");
        c.insert("a/b", Lookup::Tag("v1"), &row("sha256:old"), g);
        assert!(c.get("a/b", Lookup::Tag("v1")).is_none());
    }

    #[test]
    fn large_manifests_are_not_cached_and_totals_stay_bounded() {
        let c = ManifestCache::default();
        let big = ManifestRow {
            content: bytes::Bytes::from(vec![b' '; MAX_ENTRY_BYTES + 1]),
            ..row("sha256:big")
        };
        let g = c.generation();
        c.insert("r", Lookup::Tag("big"), &big, g);
        assert!(c.get("r", Lookup::Tag("big")).is_none());
        for i in 0..(MAX_ENTRIES + 10) {
            c.insert("r", Lookup::Tag(&format!("t{i}")), &row("sha256:x"), g);
        }
        let inner = c.lock();
        assert!(inner.entries <= MAX_ENTRIES);
        assert!(inner.bytes <= MAX_TOTAL_BYTES);
    }
}
