//! Retention of untagged manifests and purge (issue 12), on the store
//! itself: the exact deletion rule (docs/architecture.md, "Retention and
//! purge"), the retention period, re-tagging racing the collector, and
//! `purge` with `keep`, `untagged` and dry runs — on SQLite and PostgreSQL.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_core::{Digest, Reference, RepositoryName};
use berth_store::gc::{GcKind, GcOptions, GcRun, GcStart};
use berth_store::identity::RegistryConfig;
use berth_store::purge::{PurgeKind, PurgeOptions, PurgeReport};
use berth_store::{DatabaseUrl, IdentityRepo, ManifestValidation, Registry, RegistryOptions};
use bytes::Bytes;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DAY_MS: i64 = 86_400_000;

fn repo(name: &str) -> RepositoryName {
    name.parse().expect("repository name")
}

async fn push_blob(reg: &Registry, r: &str, seed: &str) -> (Digest, usize) {
    let data = Bytes::from(format!("retention blob {seed} ").repeat(32));
    let d = Digest::sha256(&data);
    let len = data.len();
    let body: berth_store::ByteStream =
        Box::pin(futures::stream::iter([Ok::<_, std::io::Error>(data)]));
    reg.put_blob(&repo(r), &d, body, Some(len as u64))
        .await
        .expect("blob push");
    (d, len)
}

fn desc(d: &(Digest, usize), mt: &str) -> serde_json::Value {
    json!({"mediaType": mt, "digest": d.0.to_string(), "size": d.1})
}

/// An image manifest with its own config and layer (unique per `seed`),
/// optionally a referrer of `subject`.
async fn image(reg: &Registry, r: &str, seed: &str, subject: Option<&Digest>) -> Vec<u8> {
    let cfg = push_blob(reg, r, &format!("{seed}-config")).await;
    let layer = push_blob(reg, r, &format!("{seed}-layer")).await;
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(&cfg, "application/vnd.oci.image.config.v1+json"),
        "layers": [desc(&layer, "application/vnd.oci.image.layer.v1.tar")],
    });
    if let Some(s) = subject {
        m["artifactType"] = json!("application/vnd.example.signature");
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": s.to_string(), "size": 1});
    }
    serde_json::to_vec(&m).expect("json")
}

fn index(children: &[(&Digest, usize)]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children.iter().map(|(d, size)| json!({
            "mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": size,
            "platform": {"os": "linux", "architecture": "amd64"}})).collect::<Vec<_>>(),
    }))
    .expect("json")
}

/// Push `body` under `tag`, or untagged by digest when `tag` is `None`.
async fn put(reg: &Registry, r: &str, tag: Option<&str>, body: &[u8]) -> Digest {
    let mt = if body
        .windows(OCI_INDEX.len())
        .any(|w| w == OCI_INDEX.as_bytes())
    {
        OCI_INDEX
    } else {
        OCI_MANIFEST
    };
    let reference = match tag {
        Some(t) => Reference::Tag(t.parse().expect("tag")),
        None => Reference::Digest(Digest::sha256(body)),
    };
    reg.put_manifest(
        &repo(r),
        &reference,
        &[],
        Some(mt),
        body,
        &ManifestValidation::default(),
    )
    .await
    .expect("manifest push")
    .digest
}

async fn exists(reg: &Registry, r: &str, d: &Digest) -> bool {
    reg.get_manifest(&repo(r), &Reference::Digest(d.clone()))
        .await
        .expect("get")
        .is_some()
}

async fn set_retention(reg: &Registry, enabled: bool, days: u32) {
    let ids = IdentityRepo::new(reg.meta());
    let c = RegistryConfig {
        retention_enabled: enabled,
        retention_untagged_days: days,
        ..ids.registry_config().await.expect("config")
    };
    ids.update_registry_config(&c).await.expect("update");
}

async fn gc(reg: &Registry) -> GcRun {
    gc_with(reg, Duration::ZERO).await
}

async fn gc_with(reg: &Registry, grace: Duration) -> GcRun {
    let o = GcOptions {
        grace,
        ..GcOptions::default()
    };
    match reg.collector().run(&o).await.expect("gc") {
        GcStart::Ran(r) => *r,
        GcStart::Busy(_) => panic!("busy"),
    }
}

/// Move a manifest's untagged time `days_ago` days back.
async fn untagged_days_ago(reg: &Registry, d: &Digest, days_ago: i64) {
    sqlx::query("UPDATE manifests SET untagged_at = $1 WHERE digest = $2")
        .bind(berth_store::now_ms() - days_ago * DAY_MS)
        .bind(d.to_string())
        .execute(reg.meta().write_pool())
        .await
        .expect("age");
}

/// Move a tag's update time `days_ago` days back.
async fn tag_days_ago(reg: &Registry, r: &str, tag: &str, days_ago: i64) {
    sqlx::query(
        "UPDATE tags SET updated_at = $1 WHERE name = $2 AND repository_id = \
         (SELECT id FROM repositories WHERE name = $3)",
    )
    .bind(berth_store::now_ms() - days_ago * DAY_MS)
    .bind(tag)
    .bind(r)
    .execute(reg.meta().write_pool())
    .await
    .expect("age tag");
}

async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

struct Place {
    _dir: tempfile::TempDir,
    _pg: Option<berth_testpg::PgServer>,
}

async fn sqlite() -> (Registry, Place) {
    let dir = tempfile::tempdir().expect("tmp");
    let reg = Registry::open(dir.path()).await.expect("open");
    (
        reg,
        Place {
            _dir: dir,
            _pg: None,
        },
    )
}

async fn postgres() -> (Registry, Place) {
    let pg = berth_testpg::PgServer::start();
    let url = DatabaseUrl::parse(&pg.create_database()).expect("url");
    let dir = tempfile::tempdir().expect("tmp");
    let reg = open_pg(dir.path(), url).await;
    (
        reg,
        Place {
            _dir: dir,
            _pg: Some(pg),
        },
    )
}

async fn open_pg(dir: &Path, url: DatabaseUrl) -> Registry {
    Registry::open_with(
        dir,
        RegistryOptions {
            database: Some(url),
            ..Default::default()
        },
    )
    .await
    .expect("open")
}

// ---- the retention rule -----------------------------------------------

async fn the_rule(reg: Registry) {
    let r = "team/app";
    // A loses tag v1 to B; C is pushed untagged.
    let a = put(&reg, r, Some("v1"), &image(&reg, r, "a", None).await).await;
    let b = put(&reg, r, Some("v1"), &image(&reg, r, "b", None).await).await;
    let c = put(&reg, r, None, &image(&reg, r, "c", None).await).await;
    // A tagged index I with untagged children P1, P2; an untagged index J
    // with untagged child Q.
    let p1_body = image(&reg, r, "p1", None).await;
    let p1 = put(&reg, r, None, &p1_body).await;
    let p2_body = image(&reg, r, "p2", None).await;
    let p2 = put(&reg, r, None, &p2_body).await;
    let i = put(
        &reg,
        r,
        Some("multi"),
        &index(&[(&p1, p1_body.len()), (&p2, p2_body.len())]),
    )
    .await;
    let q_body = image(&reg, r, "q", None).await;
    let q = put(&reg, r, None, &q_body).await;
    let j = put(&reg, r, None, &index(&[(&q, q_body.len())])).await;
    // Referrers: S1 of tagged B stays; S2 of untagged A goes after A.
    let s1 = put(&reg, r, None, &image(&reg, r, "s1", Some(&b)).await).await;
    let s2 = put(&reg, r, None, &image(&reg, r, "s2", Some(&a)).await).await;
    // D is untagged but has a tagged referrer T.
    let d = put(&reg, r, None, &image(&reg, r, "d", None).await).await;
    let t = put(&reg, r, Some("sig"), &image(&reg, r, "t", Some(&d)).await).await;
    tick().await;

    // Off by default: nothing goes.
    let run = gc(&reg).await;
    assert_eq!(run.manifests, 0, "{run:?}");
    assert!(exists(&reg, r, &a).await && exists(&reg, r, &c).await);

    set_retention(&reg, true, 0).await;
    let run = gc(&reg).await;
    let deleted: HashSet<String> = run
        .deleted
        .iter()
        .filter(|x| x.kind == GcKind::Manifest)
        .map(|x| x.digest.clone())
        .collect();
    let expect: HashSet<String> = [&a, &c, &j, &q, &s2]
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(deleted, expect, "{run:#?}");
    assert_eq!(run.manifests, 5);
    for kept in [&b, &i, &p1, &p2, &s1, &d, &t] {
        assert!(exists(&reg, r, kept).await, "{kept} must stay");
    }
    for gone in [&a, &c, &j, &q, &s2] {
        assert!(!exists(&reg, r, gone).await, "{gone} must go");
    }
    // Their blobs went with them in the same collection (grace 0): two per
    // deleted image manifest.
    assert_eq!(run.links, 8, "{run:#?}");
    // Nothing left to do.
    let run = gc(&reg).await;
    assert_eq!((run.manifests, run.links, run.blobs), (0, 0, 0), "{run:?}");
}

#[tokio::test]
async fn retention_deletes_exactly_what_the_rule_allows_sqlite() {
    let (reg, _place) = sqlite().await;
    the_rule(reg).await;
}

#[tokio::test]
async fn retention_deletes_exactly_what_the_rule_allows_postgres() {
    let (reg, _place) = postgres().await;
    the_rule(reg).await;
}

// ---- the period -------------------------------------------------------

async fn the_period(reg: Registry) {
    let r = "period";
    let old = put(&reg, r, None, &image(&reg, r, "old", None).await).await;
    let young = put(&reg, r, None, &image(&reg, r, "young", None).await).await;
    let tagged = put(&reg, r, Some("keep"), &image(&reg, r, "tagged", None).await).await;
    untagged_days_ago(&reg, &old, 8).await;
    untagged_days_ago(&reg, &young, 6).await;
    set_retention(&reg, true, 7).await;
    let run = gc(&reg).await;
    assert_eq!(run.manifests, 1, "{run:#?}");
    assert!(!exists(&reg, r, &old).await);
    assert!(exists(&reg, r, &young).await && exists(&reg, r, &tagged).await);
    // Pushing an untagged manifest again restarts its clock.
    untagged_days_ago(&reg, &young, 30).await;
    let body = image(&reg, r, "young", None).await;
    put(&reg, r, None, &body).await;
    let run = gc(&reg).await;
    assert_eq!(run.manifests, 0, "{run:#?}");
    // Deleting the tag starts the clock of the tagged one; a dry run lists
    // it once old enough and deletes nothing.
    reg.delete_manifest(&repo(r), &Reference::Tag("keep".parse().expect("tag")))
        .await
        .expect("untag");
    untagged_days_ago(&reg, &tagged, 10).await;
    let dry = reg
        .collector()
        .run(&GcOptions {
            grace: Duration::ZERO,
            dry_run: true,
            ..GcOptions::default()
        })
        .await
        .expect("dry run");
    let GcStart::Ran(dry) = dry else {
        panic!("busy")
    };
    assert_eq!(dry.manifests, 1, "{dry:#?}");
    assert!(exists(&reg, r, &tagged).await);
    let run = gc(&reg).await;
    assert_eq!(run.manifests, 1);
    assert!(!exists(&reg, r, &tagged).await);
}

#[tokio::test]
async fn only_manifests_untagged_longer_than_the_period_go_sqlite() {
    let (reg, _place) = sqlite().await;
    the_period(reg).await;
}

#[tokio::test]
async fn only_manifests_untagged_longer_than_the_period_go_postgres() {
    let (reg, _place) = postgres().await;
    the_period(reg).await;
}

// ---- re-tagging races the collector ------------------------------------

/// Two manifests swap one tag back and forth while retention (period 0)
/// collects in a loop: after every acknowledged push the tag resolves, and
/// at the end both tags resolve to a manifest with all its blobs.
async fn the_race(reg: Arc<Registry>) {
    let r = "race";
    let x = image(&reg, r, "x", None).await;
    let y = image(&reg, r, "y", None).await;
    put(&reg, r, Some("live"), &x).await;
    put(&reg, r, Some("other"), &y).await;
    set_retention(&reg, true, 0).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let reg = reg.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut runs, mut deleted) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Links stay (a long grace): the race is tags against
                // manifest deletion.
                deleted += gc_with(&reg, Duration::from_secs(3600)).await.manifests;
                runs += 1;
            }
            (runs, deleted)
        })
    };
    for n in 0..150 {
        let (body, other) = if n % 2 == 0 { (&x, &y) } else { (&y, &x) };
        let d = put(&reg, r, Some("live"), body).await;
        // Now `other` is untagged for a moment: the collector may take it.
        if n % 3 == 0 {
            tick().await;
        }
        put(&reg, r, Some("other"), other).await;
        let got = reg
            .get_manifest(&repo(r), &Reference::Tag("live".parse().expect("tag")))
            .await
            .expect("get")
            .expect("tag live resolves after its push");
        assert_eq!(got.digest, d);
        tick().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (runs, deleted) = collector.await.expect("collector");
    eprintln!("{runs} collections deleted {deleted} manifests during the race");
    assert!(runs > 0);
    for tag in ["live", "other"] {
        let m = reg
            .get_manifest(&repo(r), &Reference::Tag(tag.parse().expect("tag")))
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("tag {tag} resolves"));
        let info =
            berth_core::manifest::parse_manifest(Some(&m.media_type), &m.content).expect("parse");
        for b in info.blobs {
            assert!(
                reg.stat_blob(&repo(r), &b).await.expect("stat").is_some(),
                "blob {b} of {tag}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retagging_while_retention_collects_loses_nothing_sqlite() {
    let (reg, _place) = sqlite().await;
    the_race(Arc::new(reg)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retagging_while_retention_collects_loses_nothing_postgres() {
    let (reg, _place) = postgres().await;
    the_race(Arc::new(reg)).await;
}

// ---- purge --------------------------------------------------------------

fn purge_opts(
    filters: &[&str],
    ago_days: u64,
    keep: usize,
    untagged: bool,
    dry: bool,
) -> PurgeOptions {
    PurgeOptions {
        filters: filters.iter().map(|f| f.parse().expect("filter")).collect(),
        ago: Duration::from_secs(ago_days * 86400),
        untagged,
        keep,
        dry_run: dry,
        sink: None,
    }
}

fn tags_of(r: &PurgeReport) -> Vec<String> {
    let mut v: Vec<String> = r
        .deleted
        .iter()
        .filter(|d| d.kind == PurgeKind::Tag)
        .map(|d| d.tag.clone().unwrap_or_default())
        .collect();
    v.sort();
    v
}

async fn the_purge(reg: Registry) {
    let r = "web/front";
    let mut digests = Vec::new();
    for n in 1..=5 {
        let d = put(
            &reg,
            r,
            Some(&format!("v{n}")),
            &image(&reg, r, &format!("v{n}"), None).await,
        )
        .await;
        digests.push(d);
    }
    // v1..v4 are 10, 9, 8, 7 days old; v5 is new. `latest` shares v1's
    // manifest and is old, but the filter does not match it.
    for n in 1..=4 {
        tag_days_ago(&reg, r, &format!("v{n}"), 11 - n as i64).await;
    }
    let body = image(&reg, r, "v1", None).await;
    put(&reg, r, Some("latest"), &body).await;
    tag_days_ago(&reg, r, "latest", 20).await;
    // A signature of v2's manifest, and another repository the filter
    // does not match.
    let sig = put(
        &reg,
        r,
        None,
        &image(&reg, r, "sig2", Some(&digests[1])).await,
    )
    .await;
    let other = put(
        &reg,
        "web-other",
        Some("v1"),
        &image(&reg, "web-other", "o", None).await,
    )
    .await;
    tag_days_ago(&reg, "web-other", "v1", 30).await;
    // An old untagged manifest, and a young one.
    let stale = put(&reg, r, None, &image(&reg, r, "stale", None).await).await;
    untagged_days_ago(&reg, &stale, 9).await;
    let fresh = put(&reg, r, None, &image(&reg, r, "fresh", None).await).await;

    // Dry run: older than 5 days, keep the newest one of those (v4).
    let dry =
        berth_store::purge::purge(reg.meta(), &purge_opts(&["web/f.*:v.*"], 5, 1, false, true))
            .await
            .expect("dry run");
    assert_eq!(tags_of(&dry), ["v1", "v2", "v3"], "{dry:#?}");
    assert_eq!(dry.repositories, 1);
    // v1's manifest keeps `latest`; v2's goes with its signature; v3's goes.
    let dry_manifests: HashSet<String> = dry
        .deleted
        .iter()
        .filter(|d| d.kind == PurgeKind::Manifest)
        .map(|d| d.digest.clone())
        .collect();
    let expect: HashSet<String> = [&digests[1], &digests[2], &sig]
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(dry_manifests, expect, "{dry:#?}");
    for d in &digests {
        assert!(exists(&reg, r, d).await, "a dry run deletes nothing");
    }

    let run = berth_store::purge::purge(
        reg.meta(),
        &purge_opts(&["web/f.*:v.*"], 5, 1, false, false),
    )
    .await
    .expect("purge");
    assert_eq!(tags_of(&run), tags_of(&dry));
    assert_eq!((run.tags, run.manifests), (3, 3), "{run:#?}");
    assert!(
        exists(&reg, r, &digests[0]).await,
        "v1's manifest is still tagged latest"
    );
    assert!(!exists(&reg, r, &digests[1]).await && !exists(&reg, r, &sig).await);
    assert!(!exists(&reg, r, &digests[2]).await);
    assert!(exists(&reg, r, &digests[3]).await && exists(&reg, r, &digests[4]).await);
    assert!(exists(&reg, "web-other", &other).await);
    assert!(
        exists(&reg, r, &stale).await,
        "untagged ones stay without --untagged"
    );
    let tags = reg
        .list_tags(&repo(r), None, 100)
        .await
        .expect("tags")
        .expect("repo");
    assert_eq!(tags, ["latest", "v4", "v5"]);

    // --untagged: the stale manifest goes, the fresh one stays.
    let run = berth_store::purge::purge(
        reg.meta(),
        &purge_opts(&["web/front:nothing"], 5, 0, true, false),
    )
    .await
    .expect("purge untagged");
    assert_eq!((run.tags, run.manifests), (0, 1), "{run:#?}");
    assert!(!exists(&reg, r, &stale).await && exists(&reg, r, &fresh).await);

    // A tagged index goes with its children when its tag is purged.
    let c_body = image(&reg, r, "child", None).await;
    let child = put(&reg, r, None, &c_body).await;
    let idx = put(&reg, r, Some("multi"), &index(&[(&child, c_body.len())])).await;
    tick().await;
    let run = berth_store::purge::purge(
        reg.meta(),
        &purge_opts(&["web/front:multi"], 0, 0, false, false),
    )
    .await
    .expect("purge index");
    assert_eq!((run.tags, run.manifests), (1, 2), "{run:#?}");
    assert!(!exists(&reg, r, &idx).await && !exists(&reg, r, &child).await);

    // The blobs of what purge deleted are freed by the next collection.
    let run = gc(&reg).await;
    assert!(run.links >= 8, "{run:#?}");
}

#[tokio::test]
async fn purge_deletes_old_tags_keeps_the_newest_and_follows_manifests_sqlite() {
    let (reg, _place) = sqlite().await;
    the_purge(reg).await;
}

#[tokio::test]
async fn purge_deletes_old_tags_keeps_the_newest_and_follows_manifests_postgres() {
    let (reg, _place) = postgres().await;
    the_purge(reg).await;
}
