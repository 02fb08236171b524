//! `berth repository purge` (`POST /api/v1/purge`), in the manner of
//! `acr purge`: delete the tags a filter matches that were last updated
//! before a given age, keeping the newest N of them, then the manifests
//! that left untagged (and, with `untagged`, every manifest of the matched
//! repositories untagged for longer than the age), with what they alone
//! kept: the children of a deleted index and the referrers of a deleted
//! manifest. The protections of [`crate::retention`] apply to every
//! manifest deletion.
//!
//! One repository is purged in one transaction: all of its deletions
//! commit together, or (dry run) are rolled back, so a dry run reports
//! exactly what a run at that moment would delete. A tag pushed again
//! after the purge listed it (its digest or update time changed) is kept.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::error::StoreError;
use crate::meta::{mark_untagged, MetaStore};
use crate::now_ms;
use crate::retention;

/// Most deletions listed in a report (the counters always count all).
pub const MAX_LISTED: usize = 1000;

/// Most manifest passes per repository (index → children → referrers).
const PASSES: usize = 8;

/// One expression of the filter grammar: atoms, each optionally quantified.
macro_rules! filter_expression {
    () => {
        r"(?:(?:[A-Za-z0-9_/-]|\.|\\\.|\[(?:0-9|a-z|A-Z|[A-Za-z0-9_.])+\])[*+?]?)+"
    };
}

/// Expressions of the filter grammar joined by `|`.
macro_rules! filter_alternation {
    () => {
        concat!(filter_expression!(), r"(?:\|", filter_expression!(), ")*")
    };
}

/// The grammar of a filter: `<repository-expression>:<tag-expression>`,
/// each a regular expression of a safe subset (so that every string of the
/// grammar is a valid expression, and the API document can state it
/// exactly): literal `[A-Za-z0-9_/-]`, `.`, `\.`, classes of those
/// characters with the ranges `0-9`, `a-z`, `A-Z` (`[0-9a-f]`), each
/// optionally followed by one of `*`, `+`, `?`, and alternation `|`; no
/// groups. Both expressions must match the whole name.
pub const FILTER_PATTERN: &str =
    concat!("^", filter_alternation!(), ":", filter_alternation!(), "$");

/// Longest filter, characters.
pub const MAX_FILTER_LEN: usize = 512;

/// The grammar of an age (`--ago`): `0`, or whole numbers each followed by
/// `d`, `h`, `m` or `s`, added up (`30d`, `2d3h6m`, `90s`).
pub const AGO_PATTERN: &str = r"^(?:0|(?:[0-9]{1,6}[dhms])+)$";

/// Longest age, characters.
pub const MAX_AGO_LEN: usize = 64;

static FILTER_RE: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(FILTER_PATTERN).expect("static regex"));
static AGO_RE: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(AGO_PATTERN).expect("static regex"));

/// One `--filter '<repository-regex>:<tag-regex>'` ([`FILTER_PATTERN`]).
/// Both expressions must match the whole name (they are anchored).
#[derive(Debug, Clone)]
pub struct PurgeFilter {
    repository: Regex,
    tag: Regex,
    text: String,
}

impl PurgeFilter {
    /// Whether the filter's repository expression matches `name`.
    pub fn matches_repository(&self, name: &str) -> bool {
        self.repository.is_match(name)
    }

    /// Whether the filter's tag expression matches `tag`.
    pub fn matches_tag(&self, tag: &str) -> bool {
        self.tag.is_match(tag)
    }
}

impl std::fmt::Display for PurgeFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for PurgeFilter {
    type Err = String;

    /// A string of [`FILTER_PATTERN`]'s grammar, at most
    /// [`MAX_FILTER_LEN`] characters.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.chars().count() > MAX_FILTER_LEN || !FILTER_RE.is_match(s) {
            return Err(format!(
                "filter {s:?} must be '<repository-regex>:<tag-regex>' (at most {MAX_FILTER_LEN} \
                 characters) using letters, digits, _ / - . \\. [0-9a-z] classes, * + ? and |, \
                 e.g. 'app/.*:v1\\..*'"
            ));
        }
        // The grammar has no ':' inside an expression.
        let (repo, tag) = s.split_once(':').ok_or("no ':'")?;
        let anchored = |what: &str, re: &str| {
            Regex::new(&format!("^(?:{re})$")).map_err(|e| {
                format!("the {what} expression {re:?} of filter {s:?} is invalid: {e}")
            })
        };
        Ok(PurgeFilter {
            repository: anchored("repository", repo)?,
            tag: anchored("tag", tag)?,
            text: s.to_string(),
        })
    }
}

/// Parse an age of [`AGO_PATTERN`]'s grammar: `30d`, `2d3h6m`, `90s`, `0`.
pub fn parse_ago(s: &str) -> Result<Duration, String> {
    let bad = || format!("age {s:?} is invalid; write it like 30d, 2d3h6m, 12h, 90s or 0");
    if s.len() > MAX_AGO_LEN || !AGO_RE.is_match(s) {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut n: u64 = 0;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            n = n * 10 + u64::from(d);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            _ => 1,
        };
        total = total.saturating_add(n.saturating_mul(unit));
        n = 0;
    }
    Ok(Duration::from_secs(total))
}

/// What a purge deleted (or would delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PurgeKind {
    /// A tag.
    Tag,
    /// A manifest.
    Manifest,
}

impl PurgeKind {
    /// The audit operation of a deletion of this kind.
    pub fn operation(self) -> &'static str {
        match self {
            PurgeKind::Tag => "purge_delete_tag",
            PurgeKind::Manifest => "purge_delete_manifest",
        }
    }
}

/// One deletion of a purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurgeDeletion {
    /// A tag or a manifest.
    pub kind: PurgeKind,
    /// Its repository.
    pub repository: String,
    /// The tag (for a tag).
    pub tag: Option<String>,
    /// The manifest digest (for a tag: the manifest it pointed at).
    pub digest: String,
    /// The manifest's size in bytes (0 for a tag).
    pub size: u64,
}

/// Told of every deletion once it is committed (the server records an
/// audit event and counts it).
pub type PurgeSink = Arc<dyn Fn(&PurgeDeletion) + Send + Sync>;

/// How to purge.
#[derive(Clone)]
pub struct PurgeOptions {
    /// Which tags (at least one filter).
    pub filters: Vec<PurgeFilter>,
    /// Tags last updated longer ago than this go.
    pub ago: Duration,
    /// Also delete every manifest of the matched repositories untagged for
    /// longer than `ago`.
    pub untagged: bool,
    /// Of the tags that would go, keep the newest this many (per
    /// repository).
    pub keep: usize,
    /// Only report.
    pub dry_run: bool,
    /// Told of every deletion (not in a dry run).
    pub sink: Option<PurgeSink>,
}

impl std::fmt::Debug for PurgeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurgeOptions")
            .field("filters", &self.filters)
            .field("ago", &self.ago)
            .field("untagged", &self.untagged)
            .field("keep", &self.keep)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// Repositories a filter matched.
    pub repositories: u64,
    /// Tags deleted.
    pub tags: u64,
    /// Manifests deleted.
    pub manifests: u64,
    /// Bytes of the deleted manifests (their blobs are freed by the next
    /// garbage collection, after the grace period).
    pub manifest_bytes: u64,
    /// Duration, milliseconds.
    pub duration_ms: u64,
    /// The deletions (at most [`MAX_LISTED`]).
    pub deleted: Vec<PurgeDeletion>,
    /// Whether `deleted` lists fewer than were made.
    pub truncated: bool,
}

impl PurgeReport {
    fn add(&mut self, d: PurgeDeletion) {
        match d.kind {
            PurgeKind::Tag => self.tags += 1,
            PurgeKind::Manifest => {
                self.manifests += 1;
                self.manifest_bytes += d.size;
            }
        }
        if self.deleted.len() < MAX_LISTED {
            self.deleted.push(d);
        } else {
            self.truncated = true;
        }
    }
}

/// Run a purge over every repository a filter matches.
pub async fn purge(meta: &MetaStore, options: &PurgeOptions) -> Result<PurgeReport, StoreError> {
    if options.filters.is_empty() {
        return Err(StoreError::Invalid(
            "a purge needs at least one filter".into(),
        ));
    }
    let started = Instant::now();
    let now = now_ms();
    let ago = i64::try_from(options.ago.as_millis()).unwrap_or(i64::MAX);
    let tag_cutoff = now.saturating_sub(ago);
    let mut report = PurgeReport {
        dry_run: options.dry_run,
        repositories: 0,
        tags: 0,
        manifests: 0,
        manifest_bytes: 0,
        duration_ms: 0,
        deleted: Vec::new(),
        truncated: false,
    };
    let repos = sqlx::query("SELECT id, name FROM repositories ORDER BY name")
        .fetch_all(meta.read_pool())
        .await?;
    for r in &repos {
        let repo_id: i64 = r.try_get(0)?;
        let name: String = r.try_get(1)?;
        let filters: Vec<&PurgeFilter> = options
            .filters
            .iter()
            .filter(|f| f.matches_repository(&name))
            .collect();
        if filters.is_empty() {
            continue;
        }
        report.repositories += 1;
        let deletions =
            purge_repository(meta, options, repo_id, &name, &filters, now, tag_cutoff).await?;
        for d in deletions {
            if let Some(sink) = options.sink.as_ref().filter(|_| !options.dry_run) {
                sink(&d);
            }
            report.add(d);
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        dry_run = options.dry_run,
        repositories = report.repositories,
        tags = report.tags,
        manifests = report.manifests,
        duration_ms = report.duration_ms,
        "purge finished"
    );
    Ok(report)
}

/// Purge one repository in one transaction; its deletions.
async fn purge_repository(
    meta: &MetaStore,
    options: &PurgeOptions,
    repo_id: i64,
    name: &str,
    filters: &[&PurgeFilter],
    now: i64,
    tag_cutoff: i64,
) -> Result<Vec<PurgeDeletion>, StoreError> {
    let rows = sqlx::query("SELECT name, digest, updated_at FROM tags WHERE repository_id = $1")
        .bind(repo_id)
        .fetch_all(meta.read_pool())
        .await?;
    let mut older = Vec::new();
    for row in &rows {
        let tag: String = row.try_get(0)?;
        let digest: String = row.try_get(1)?;
        let updated_at: i64 = row.try_get(2)?;
        if updated_at < tag_cutoff && filters.iter().any(|f| f.matches_tag(&tag)) {
            older.push((tag, digest, updated_at));
        }
    }
    // Newest first; the first `keep` stay.
    older.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let doomed: Vec<_> = older.into_iter().skip(options.keep).collect();
    if doomed.is_empty() && !options.untagged {
        return Ok(Vec::new());
    }

    let mut tx = meta.write_pool().begin().await?;
    let mut out = Vec::new();
    let mut freed: HashSet<String> = HashSet::new();
    for (tag, digest, updated_at) in &doomed {
        let res = sqlx::query(
            "DELETE FROM tags WHERE repository_id = $1 AND name = $2 AND digest = $3 \
             AND updated_at = $4",
        )
        .bind(repo_id)
        .bind(tag)
        .bind(digest)
        .bind(*updated_at)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() > 0 {
            out.push(PurgeDeletion {
                kind: PurgeKind::Tag,
                repository: name.to_string(),
                tag: Some(tag.clone()),
                digest: digest.clone(),
                size: 0,
            });
            freed.insert(digest.clone());
        }
    }
    for d in &freed {
        mark_untagged(&mut tx, repo_id, d, now).await?;
    }

    // Manifests: untagged now (by this purge, or, with `untagged`, since
    // before the cutoff), and then what those alone kept.
    let mut gone: HashSet<String> = HashSet::new();
    for _ in 0..PASSES {
        let candidates: Vec<_> = retention::expired_in(&mut tx, now + 1, repo_id)
            .await?
            .into_iter()
            .filter(|m| {
                freed.contains(&m.digest)
                    || (options.untagged && m.untagged_at < tag_cutoff)
                    || m.subject.as_ref().is_some_and(|s| gone.contains(s))
            })
            .collect();
        if candidates.is_empty() {
            break;
        }
        let mut children = Vec::new();
        for m in &candidates {
            let rows = sqlx::query(
                "SELECT child_digest FROM manifest_children \
                 WHERE repository_id = $1 AND parent_digest = $2",
            )
            .bind(repo_id)
            .bind(&m.digest)
            .fetch_all(&mut *tx)
            .await?;
            for c in rows {
                children.push(c.try_get::<String, _>(0)?);
            }
        }
        let deleted = retention::delete_in(&mut tx, now + 1, &candidates).await?;
        if deleted.is_empty() {
            break;
        }
        freed.extend(children);
        for m in deleted {
            gone.insert(m.digest.clone());
            out.push(PurgeDeletion {
                kind: PurgeKind::Manifest,
                repository: name.to_string(),
                tag: None,
                digest: m.digest,
                size: m.size,
            });
        }
    }
    if options.dry_run || out.is_empty() {
        tx.rollback().await?;
        return Ok(if options.dry_run { out } else { Vec::new() });
    }
    meta.announce_manifests(&mut tx, name).await?;
    tx.commit().await?;
    meta.invalidate_manifests(name);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_anchored_and_follow_the_grammar() {
        let f: PurgeFilter = "app/.*:v1\\..*".parse().unwrap();
        assert!(f.matches_repository("app/web"));
        assert!(!f.matches_repository("other/app/web"));
        assert!(f.matches_tag("v1.2"));
        assert!(!f.matches_tag("v10"));
        assert!(!f.matches_tag("xv1.2"));
        let f: PurgeFilter = "a|b:build-[0-9]+".parse().unwrap();
        assert!(f.matches_repository("a") && f.matches_repository("b"));
        assert!(!f.matches_repository("ab"));
        assert!(f.matches_tag("build-42") && !f.matches_tag("build-"));
        // Alternation stays inside the anchors.
        let f: PurgeFilter = "r:a|b".parse().unwrap();
        assert!(!f.matches_tag("xa") && !f.matches_tag("bx") && f.matches_tag("b"));
        let f: PurgeFilter = "[a-z0-9_.]+/x?:[A-Z]*".parse().unwrap();
        assert!(f.matches_repository("team.1/") && f.matches_tag("ABC"));
        for bad in [
            "app", ":v1", "app:", "app:(", "[:x", "(?:a):b", "a:b:c", "*a:b", "a**:b", "a|:b",
            "[z-a]:b", "a:[]", "a:b{2}", "a b:c",
        ] {
            assert!(bad.parse::<PurgeFilter>().is_err(), "{bad}");
        }
        assert!("a:b".repeat(200).parse::<PurgeFilter>().is_err());
    }

    /// The pattern built from its pieces is the grammar the API document
    /// has stated since it was written out in full.
    #[test]
    fn filter_pattern_is_the_documented_grammar() {
        assert_eq!(
            FILTER_PATTERN,
            r"^(?:(?:[A-Za-z0-9_/-]|\.|\\\.|\[(?:0-9|a-z|A-Z|[A-Za-z0-9_.])+\])[*+?]?)+(?:\|(?:(?:[A-Za-z0-9_/-]|\.|\\\.|\[(?:0-9|a-z|A-Z|[A-Za-z0-9_.])+\])[*+?]?)+)*:(?:(?:[A-Za-z0-9_/-]|\.|\\\.|\[(?:0-9|a-z|A-Z|[A-Za-z0-9_.])+\])[*+?]?)+(?:\|(?:(?:[A-Za-z0-9_/-]|\.|\\\.|\[(?:0-9|a-z|A-Z|[A-Za-z0-9_.])+\])[*+?]?)+)*$"
        );
    }

    /// Every string of the grammar compiles: the grammar's pieces in many
    /// combinations.
    #[test]
    fn every_filter_of_the_grammar_compiles() {
        let atoms = [
            "a",
            "Z",
            "9",
            "_",
            "/",
            "-",
            ".",
            "\\.",
            "[0-9]",
            "[a-zA-Z_.]",
            "[..]",
        ];
        let quants = ["", "*", "+", "?"];
        let mut n = 0;
        for a in atoms {
            for q in quants {
                for b in atoms {
                    for r in quants {
                        let e = format!("{a}{q}{b}{r}|{b}");
                        let f = format!("{e}:{e}");
                        f.parse::<PurgeFilter>()
                            .unwrap_or_else(|err| panic!("{f}: {err}"));
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 1000);
    }

    #[test]
    fn ago_takes_days_and_compound_durations() {
        assert_eq!(parse_ago("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(
            parse_ago("2d3h6m").unwrap(),
            Duration::from_secs(2 * 86400 + 3 * 3600 + 6 * 60)
        );
        assert_eq!(parse_ago("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ago("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_ago("0s").unwrap(), Duration::ZERO);
        for bad in ["soon", "-1d", "1", "1 d", "1w", "", "1d ", "1234567d"] {
            assert!(parse_ago(bad).is_err(), "{bad}");
        }
    }
}
