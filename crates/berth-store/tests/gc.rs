//! Garbage collection: each safety rule of issue 12 on the store itself
//! (filesystem + SQLite, filesystem + PostgreSQL, S3 (moto) + SQLite).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_core::manifest::parse_manifest;
use berth_core::{Digest, ErrorCode, Reference, RepositoryName};
use berth_store::gc::{GcKind, GcOptions, GcRun, GcStart};
use berth_store::object::location::{BlobStoreLocation, Credentials};
use berth_store::object::ObjectBlobStore;
use berth_store::{BlobBackend, BlobRead, DatabaseUrl, ManifestValidation, Registry, StoreError};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use sqlx::Row;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn repo(name: &str) -> RepositoryName {
    name.parse().expect("repository name")
}

fn blob(seed: &str) -> (Digest, Bytes) {
    let data = Bytes::from(format!("blob content {seed} ").repeat(64));
    (Digest::sha256(&data), data)
}

fn body(data: Bytes) -> berth_store::ByteStream {
    Box::pin(futures::stream::iter([Ok::<_, std::io::Error>(data)]))
}

async fn push_blob(reg: &Registry, r: &str, data: &Bytes) -> Digest {
    let d = Digest::sha256(data);
    for _ in 0..3 {
        match reg
            .put_blob(&repo(r), &d, body(data.clone()), Some(data.len() as u64))
            .await
        {
            Ok(()) => return d,
            // Object storage: the collector removed an older copy of the
            // same digest while this upload finished; the client retries.
            Err(StoreError::Oci(e)) if e.code == ErrorCode::BlobUploadInvalid => continue,
            Err(e) => panic!("blob push: {e}"),
        }
    }
    panic!("blob push refused three times")
}

fn image(config: &(Digest, Bytes), layers: &[&(Digest, Bytes)]) -> Vec<u8> {
    let desc = |(d, b): &(Digest, Bytes), mt: &str| json!({"mediaType": mt, "digest": d.to_string(), "size": b.len()});
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(config, "application/vnd.oci.image.config.v1+json"),
        "layers": layers.iter().map(|l| desc(l, "application/vnd.oci.image.layer.v1.tar")).collect::<Vec<_>>(),
    }))
    .expect("json")
}

async fn push_manifest(reg: &Registry, r: &str, tag: &str, m: &[u8]) -> Result<Digest, StoreError> {
    reg.put_manifest(
        &repo(r),
        &Reference::Tag(tag.parse().expect("tag")),
        &[],
        Some(OCI_MANIFEST),
        m,
        &ManifestValidation::default(),
    )
    .await
    .map(|o| o.digest)
}

async fn read_all(read: BlobRead) -> Vec<u8> {
    match read {
        BlobRead::File { mut file, .. } => {
            use tokio::io::AsyncReadExt;
            let mut v = Vec::new();
            file.read_to_end(&mut v).await.expect("read file");
            v
        }
        BlobRead::Bytes(b) => b.to_vec(),
        BlobRead::Object(o) => {
            let mut s = o.open(0, o.size()).await.expect("open object");
            let mut v = Vec::new();
            while let Some(c) = s.next().await {
                v.extend_from_slice(&c.expect("object chunk"));
            }
            v
        }
    }
}

/// Pull a manifest and every blob it references, checking each digest.
async fn pull_whole(reg: &Registry, r: &str, digest: &Digest) -> Result<(), String> {
    let m = reg
        .get_manifest(&repo(r), &Reference::Digest(digest.clone()))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("manifest {digest} missing in {r}"))?;
    let info = parse_manifest(Some(&m.media_type), &m.content).map_err(|e| e.to_string())?;
    for b in &info.blobs {
        let read = reg
            .read_blob(&repo(r), b)
            .await
            .map_err(|e| format!("blob {b} in {r}: {e}"))?
            .ok_or_else(|| format!("blob {b} of {digest} missing in {r}"))?;
        let data = read_all(read).await;
        if &Digest::sha256(&data) != b {
            return Err(format!("blob {b} in {r} has other content"));
        }
    }
    Ok(())
}

/// The invariant: every repository link has its bytes.
async fn assert_links_have_bytes(reg: &Registry) {
    let rows = sqlx::query("SELECT DISTINCT digest FROM repository_blobs")
        .fetch_all(reg.meta().read_pool())
        .await
        .expect("links");
    for r in rows {
        let d: Digest = r.get::<String, _>(0).parse().expect("digest");
        assert!(
            reg.blob_backend().has_blob(&d).await.expect("stat"),
            "linked blob {d} has no bytes"
        );
    }
}

fn ran(s: GcStart) -> GcRun {
    match s {
        GcStart::Ran(r) => *r,
        GcStart::Busy(_) => panic!("collection was busy"),
    }
}

fn opts(grace: Duration) -> GcOptions {
    GcOptions {
        grace,
        ..GcOptions::default()
    }
}

async fn gc(reg: &Registry, grace: Duration) -> GcRun {
    ran(reg.collector().run(&opts(grace)).await.expect("gc"))
}

/// A fresh sleep so that "older than a zero grace" holds for what exists.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

async fn open_fs(dir: &Path) -> Registry {
    Registry::open(dir).await.expect("open")
}

// ---- grace period -----------------------------------------------------

#[tokio::test]
async fn unreferenced_blob_survives_the_grace_period_then_goes() {
    let dir = tempfile::tempdir().expect("tmp");
    let reg = open_fs(dir.path()).await;
    let (d, data) = blob("lonely");
    push_blob(&reg, "a/b", &data).await;
    tick().await;
    let run = gc(&reg, Duration::from_secs(3600)).await;
    assert_eq!((run.links, run.blobs), (0, 0), "{run:?}");
    assert!(reg
        .stat_blob(&repo("a/b"), &d)
        .await
        .expect("stat")
        .is_some());
    // A manifest pushed now still finds its layer.
    let cfg = blob("cfg");
    push_blob(&reg, "a/b", &cfg.1).await;
    push_manifest(
        &reg,
        "a/b",
        "v1",
        &image(&cfg, &[&(d.clone(), data.clone())]),
    )
    .await
    .expect("manifest after a collection within the grace period");
    // Without the manifest and past the grace period, both go.
    let lonely = blob("lonely2");
    push_blob(&reg, "a/b", &lonely.1).await;
    tick().await;
    let run = gc(&reg, Duration::ZERO).await;
    assert_eq!((run.links, run.blobs), (1, 1), "{run:?}");
    assert!(!reg.blob_backend().has_blob(&lonely.0).await.expect("stat"));
    assert!(reg.blob_backend().has_blob(&d).await.expect("stat"));
    assert_eq!(run.bytes_freed, lonely.1.len() as u64);
}

// ---- shared blobs, deletes, dry run -----------------------------------

#[tokio::test]
async fn shared_blob_stays_until_its_last_link_goes() {
    let dir = tempfile::tempdir().expect("tmp");
    let reg = open_fs(dir.path()).await;
    let cfg = blob("c");
    let layer = blob("shared");
    for r in ["one", "two"] {
        push_blob(&reg, r, &cfg.1).await;
    }
    push_blob(&reg, "one", &layer.1).await;
    // The second repository mounts it.
    assert!(reg
        .mount_blob(&repo("two"), &repo("one"), &layer.0)
        .await
        .expect("mount"));
    let m = image(&cfg, &[&layer]);
    let d1 = push_manifest(&reg, "one", "v1", &m).await.expect("one");
    let d2 = push_manifest(&reg, "two", "v1", &m).await.expect("two");
    assert!(reg
        .delete_manifest(&repo("one"), &Reference::Digest(d1.clone()))
        .await
        .expect("delete"));
    tick().await;
    // Dry run first: reports the two links of "one", no blob, deletes nothing.
    let dry = ran(reg
        .collector()
        .run(&GcOptions {
            grace: Duration::ZERO,
            dry_run: true,
            ..GcOptions::default()
        })
        .await
        .expect("dry run"));
    assert_eq!((dry.links, dry.blobs), (2, 0), "{dry:?}");
    assert!(dry.dry_run);
    assert!(reg
        .stat_blob(&repo("one"), &layer.0)
        .await
        .expect("stat")
        .is_some());
    let run = gc(&reg, Duration::ZERO).await;
    assert_eq!((run.links, run.blobs), (2, 0), "{run:?}");
    assert_eq!(run.deleted.len(), 2);
    assert!(run
        .deleted
        .iter()
        .all(|d| d.kind == GcKind::BlobLink && d.repository.as_deref() == Some("one")));
    assert!(reg
        .stat_blob(&repo("one"), &layer.0)
        .await
        .expect("stat")
        .is_none());
    pull_whole(&reg, "two", &d2).await.expect("two pulls whole");
    // Now the last manifest goes: its links, then the blobs.
    reg.delete_manifest(&repo("two"), &Reference::Digest(d2))
        .await
        .expect("delete two");
    tick().await;
    let run = gc(&reg, Duration::ZERO).await;
    assert_eq!((run.links, run.blobs), (2, 2), "{run:?}");
    assert!(!reg.blob_backend().has_blob(&layer.0).await.expect("stat"));
    assert!(!reg.blob_backend().has_blob(&cfg.0).await.expect("stat"));
    // The record is readable afterwards (what GET /api/v1/gc/{id} shows).
    let stored = reg
        .collector()
        .get(&run.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(stored.state, "finished");
    assert_eq!(stored.blobs, 2);
}

#[tokio::test]
async fn manifests_pushed_before_references_were_recorded_keep_their_blobs() {
    let dir = tempfile::tempdir().expect("tmp");
    let reg = open_fs(dir.path()).await;
    let cfg = blob("legacy-c");
    let layer = blob("legacy-l");
    push_blob(&reg, "old", &cfg.1).await;
    push_blob(&reg, "old", &layer.1).await;
    let d = push_manifest(&reg, "old", "v1", &image(&cfg, &[&layer]))
        .await
        .expect("push");
    // As if pushed before migration 0011.
    for sql in [
        "DELETE FROM manifest_blobs",
        "UPDATE manifests SET refs_recorded = 0",
    ] {
        sqlx::query(sql)
            .execute(reg.meta().write_pool())
            .await
            .expect("legacy");
    }
    tick().await;
    let run = gc(&reg, Duration::ZERO).await;
    assert_eq!((run.links, run.blobs), (0, 0), "{run:?}");
    pull_whole(&reg, "old", &d)
        .await
        .expect("legacy manifest pulls whole");
    let refs: i64 = sqlx::query("SELECT COUNT(*) FROM manifest_blobs")
        .fetch_one(reg.meta().read_pool())
        .await
        .expect("count")
        .get(0);
    assert_eq!(refs, 2, "back-filled");
}

// ---- the race: manifest PUT against sweep ------------------------------

/// Many pushers share layers, delete and re-push, while a collector with a
/// zero grace period loops. Every acknowledged manifest that was not
/// deleted must pull whole; a refused one must be MANIFEST_BLOB_UNKNOWN.
async fn race(reg: Arc<Registry>) {
    let shared: Vec<(Digest, Bytes)> = (0..4).map(|i| blob(&format!("shared-{i}"))).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let reg = reg.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut runs = 0u32;
            let mut deleted = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let GcStart::Ran(r) = reg
                    .collector()
                    .run(&opts(Duration::ZERO))
                    .await
                    .expect("gc")
                {
                    runs += 1;
                    deleted += r.links + r.blobs;
                }
                tokio::task::yield_now().await;
            }
            (runs, deleted)
        })
    };
    let mut pushers = Vec::new();
    for w in 0..6 {
        let reg = reg.clone();
        let shared = shared.clone();
        pushers.push(tokio::spawn(async move {
            let mut kept: Vec<(String, Digest)> = Vec::new();
            let mut refused = 0;
            for i in 0..12 {
                let r = format!("race/r{}", (w + i) % 3);
                let own = blob(&format!("own-{w}-{}", i % 4));
                let cfg = blob(&format!("cfg-{w}-{i}"));
                let a = &shared[(w + i) % shared.len()];
                let b = &shared[(w + i + 1) % shared.len()];
                for (_, data) in [&cfg, &own, a, b] {
                    push_blob(&reg, &r, data).await;
                }
                let m = image(&cfg, &[&own, a, b]);
                match push_manifest(&reg, &r, &format!("w{w}-{i}"), &m).await {
                    Ok(d) => {
                        if i % 3 == 2 {
                            reg.delete_manifest(&repo(&r), &Reference::Digest(d))
                                .await
                                .expect("delete");
                        } else {
                            kept.push((r, d));
                        }
                    }
                    Err(StoreError::Oci(e)) if e.code == ErrorCode::ManifestBlobUnknown => {
                        refused += 1
                    }
                    Err(e) => panic!("manifest push failed otherwise: {e}"),
                }
            }
            (kept, refused)
        }));
    }
    let mut kept = Vec::new();
    let mut refused = 0;
    for p in pushers {
        let (k, r) = p.await.expect("pusher");
        kept.extend(k);
        refused += r;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (runs, deleted) = collector.await.expect("collector");
    eprintln!(
        "race: {} kept, {refused} refused, {runs} collections deleting {deleted}",
        kept.len()
    );
    assert!(runs >= 2, "the collector ran during the pushes");
    assert!(
        deleted > 0,
        "the collector deleted something during the pushes"
    );
    for (r, d) in &kept {
        pull_whole(&reg, r, d)
            .await
            .expect("acknowledged manifest pulls whole");
    }
    assert_links_have_bytes(&reg).await;
    // A last collection leaves them whole too.
    tick().await;
    gc(&reg, Duration::ZERO).await;
    for (r, d) in &kept {
        pull_whole(&reg, r, d)
            .await
            .expect("still whole after a final collection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_pushes_deletes_and_collections_filesystem_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    race(Arc::new(open_fs(dir.path()).await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_pushes_deletes_and_collections_postgres() {
    let pg = berth_testpg::PgServer::start();
    let url = DatabaseUrl::parse(&pg.create_database()).expect("url");
    let dir = tempfile::tempdir().expect("tmp");
    let reg = Registry::open_with(
        dir.path(),
        berth_store::RegistryOptions {
            database: Some(url),
            ..Default::default()
        },
    )
    .await
    .expect("open");
    race(Arc::new(reg)).await;
}

// ---- one collector at a time -------------------------------------------

#[tokio::test]
async fn replicas_on_postgres_collect_one_at_a_time() {
    let pg = berth_testpg::PgServer::start();
    let url = DatabaseUrl::parse(&pg.create_database()).expect("url");
    let dir = tempfile::tempdir().expect("tmp");
    let open = |url: DatabaseUrl| {
        let path = dir.path().to_path_buf();
        async move {
            Registry::open_with(
                &path,
                berth_store::RegistryOptions {
                    database: Some(url),
                    ..Default::default()
                },
            )
            .await
            .expect("open")
        }
    };
    let a = open(url.clone()).await;
    let b = open(url.clone()).await;
    // Replica a holds the lock (as its collector does while running).
    let mut conn = a.meta().write_pool().acquire().await.expect("conn");
    let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
        .bind(berth_store::gc::ADVISORY_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await
        .expect("lock")
        .get(0);
    assert!(got);
    assert!(matches!(
        b.collector().run(&opts(Duration::ZERO)).await.expect("b"),
        GcStart::Busy(_)
    ));
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(berth_store::gc::ADVISORY_LOCK_KEY)
        .execute(&mut *conn)
        .await
        .expect("unlock");
    drop(conn);
    ran(b
        .collector()
        .run(&opts(Duration::ZERO))
        .await
        .expect("b runs now"));
}

#[tokio::test]
async fn a_second_collection_in_the_process_is_busy() {
    let dir = tempfile::tempdir().expect("tmp");
    let reg = Arc::new(open_fs(dir.path()).await);
    for i in 0..200 {
        push_blob(&reg, "busy", &blob(&format!("b{i}")).1).await;
    }
    tick().await;
    let o = opts(Duration::ZERO);
    let (a, b) = tokio::join!(reg.collector().run(&o), reg.collector().run(&o));
    let busy = [a.expect("a"), b.expect("b")]
        .into_iter()
        .filter(|s| matches!(s, GcStart::Busy(_)))
        .count();
    assert_eq!(busy, 1, "exactly one of two concurrent collections ran");
}

// ---- crashes -------------------------------------------------------------

/// A collection cut off at arbitrary points (the future dropped, which rolls
/// back its open transaction exactly as a killed process does) leaves every
/// link with its bytes; the next run finishes the job.
#[tokio::test]
async fn a_collection_cut_off_anywhere_leaves_no_link_without_bytes() {
    let dir = tempfile::tempdir().expect("tmp");
    let reg = open_fs(dir.path()).await;
    let cfg = blob("keep-c");
    let keep = blob("keep-l");
    push_blob(&reg, "k", &cfg.1).await;
    push_blob(&reg, "k", &keep.1).await;
    let kept = push_manifest(&reg, "k", "v1", &image(&cfg, &[&keep]))
        .await
        .expect("push");
    for i in 0..600 {
        push_blob(
            &reg,
            &format!("junk{}", i % 5),
            &blob(&format!("junk{i}")).1,
        )
        .await;
    }
    tick().await;
    for cut_us in [200u64, 1_000, 3_000, 8_000, 20_000, 50_000] {
        let _ = tokio::time::timeout(
            Duration::from_micros(cut_us),
            reg.collector().run(&opts(Duration::ZERO)),
        )
        .await;
        assert_links_have_bytes(&reg).await;
        pull_whole(&reg, "k", &kept)
            .await
            .expect("kept manifest whole");
    }
    let last = gc(&reg, Duration::ZERO).await;
    eprintln!("final run after cuts: {last:?}");
    let left: i64 = sqlx::query("SELECT COUNT(*) FROM blobs")
        .fetch_one(reg.meta().read_pool())
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 2, "only the kept manifest's blobs remain");
    assert_eq!(
        reg.blob_backend().list_blobs().await.expect("list").len(),
        2
    );
    // An earlier run cut off is reported as interrupted, not running.
    assert!(reg.collector().running().await.expect("running").is_none());
}

#[tokio::test]
async fn bytes_without_a_row_are_removed_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tmp");
    let reg = open_fs(dir.path()).await;
    let (d, data) = blob("orphan");
    push_blob(&reg, "o", &data).await;
    // As if a crash came between the bytes and the row.
    for sql in ["DELETE FROM repository_blobs", "DELETE FROM blobs"] {
        sqlx::query(sql)
            .execute(reg.meta().write_pool())
            .await
            .expect("sql");
    }
    let run = gc(&reg, Duration::from_secs(3600)).await;
    assert_eq!(run.blobs, 0, "young orphan stays");
    tick().await;
    let run = gc(&reg, Duration::ZERO).await;
    assert_eq!(run.blobs, 1, "{run:?}");
    assert!(!reg.blob_backend().has_blob(&d).await.expect("stat"));
    // And the same digest can be pushed again afterwards.
    push_blob(&reg, "o", &data).await;
    assert!(reg.blob_backend().has_blob(&d).await.expect("stat"));
}

// ---- a pull while its blob is deleted -----------------------------------

#[tokio::test]
async fn pull_of_a_blob_being_deleted_completes_on_the_filesystem() {
    let dir = tempfile::tempdir().expect("tmp");
    let reg = open_fs(dir.path()).await;
    let data = Bytes::from(vec![7u8; 4 << 20]);
    let d = push_blob(&reg, "p", &data).await;
    let read = reg
        .read_blob(&repo("p"), &d)
        .await
        .expect("read")
        .expect("present");
    let BlobRead::File { mut file, .. } = read else {
        panic!("filesystem read")
    };
    // Half of it is sent, then the blob is collected.
    use tokio::io::AsyncReadExt;
    let mut first = vec![0u8; 2 << 20];
    file.read_exact(&mut first).await.expect("first half");
    tick().await;
    let run = gc(&reg, Duration::ZERO).await;
    assert_eq!(run.blobs, 1);
    assert!(!reg.blob_backend().has_blob(&d).await.expect("stat"));
    let mut rest = Vec::new();
    file.read_to_end(&mut rest).await.expect("rest");
    first.extend(rest);
    assert_eq!(Digest::sha256(&first), d, "the open pull completed whole");
}

// ---- S3 (moto) -----------------------------------------------------------

struct Moto(std::process::Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// moto on a free port with one bucket, or `None` (skipped with a notice;
/// a failure under CI).
fn start_moto() -> Option<(Moto, u16)> {
    if !on_path("moto_server") {
        assert!(
            std::env::var_os("CI").is_none(),
            "moto_server missing under CI"
        );
        eprintln!("SKIPPED: moto_server is not on PATH");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn moto");
    let moto = Moto(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let req = format!(
                "PUT /gc-bucket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if s.write_all(req.as_bytes()).is_ok() {
                let mut resp = String::new();
                let _ = s.read_to_string(&mut resp);
                if resp.starts_with("HTTP/1.1 200") {
                    return Some((moto, port));
                }
            }
        }
        assert!(std::time::Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn open_s3(dir: &Path, port: u16) -> Registry {
    let loc: BlobStoreLocation = format!("s3://gc-bucket/p?endpoint=http://127.0.0.1:{port}")
        .parse()
        .expect("location");
    let vars: HashMap<String, String> = [
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let os = ObjectBlobStore::open_with(&loc, &Credentials::Vars(vars)).expect("s3");
    Registry::open_with_backend(dir, BlobBackend::ObjectStorage(os), false, None)
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collection_on_s3_keeps_referenced_blobs_and_races_safely() {
    let Some((_moto, port)) = start_moto() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let reg = Arc::new(open_s3(dir.path(), port).await);
    // Grace, shared links and deletion, as on the filesystem.
    let cfg = blob("s3-c");
    let layer = blob("s3-l");
    let lonely = blob("s3-lonely");
    for b in [&cfg, &layer, &lonely] {
        push_blob(&reg, "s3/one", &b.1).await;
    }
    let d = push_manifest(&reg, "s3/one", "v1", &image(&cfg, &[&layer]))
        .await
        .expect("push");
    let run = gc(&reg, Duration::from_secs(3600)).await;
    assert_eq!((run.links, run.blobs), (0, 0));
    tick().await;
    let run = gc(&reg, Duration::ZERO).await;
    assert_eq!((run.links, run.blobs), (1, 1), "{run:?}");
    assert!(!reg.blob_backend().has_blob(&lonely.0).await.expect("stat"));
    pull_whole(&reg, "s3/one", &d).await.expect("whole");
    let listed: HashSet<Digest> = reg
        .blob_backend()
        .list_blobs()
        .await
        .expect("list")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(listed, HashSet::from([cfg.0.clone(), layer.0.clone()]));
    race(reg).await;
}
