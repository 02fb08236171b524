//! What only PostgreSQL has to get right: several replicas on one
//! database. Each "replica" here is its own `MetaStore` (its own pool and
//! listener connection), as in separate `berth serve` processes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_auth::jwt::{KeySet, SigningKey};
use berth_core::manifest::parse_manifest;
use berth_core::Digest;
use berth_store::meta::MetaStore;
use berth_store::{DatabaseUrl, IdentityRepo};
use berth_testpg::PgServer;
use serde_json::json;

fn fresh(pg: &PgServer) -> DatabaseUrl {
    DatabaseUrl::parse(&pg.create_database()).expect("url")
}

#[tokio::test]
async fn migrations_run_once_when_replicas_start_together() {
    let pg = PgServer::start();
    let url = fresh(&pg);
    let starts = (0..6).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { MetaStore::open_postgres(&url).await })
    });
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.expect("task").expect("every replica starts"));
    }
    let db = url.expose().rsplit('/').next().unwrap().to_string();
    let applied = pg.psql(
        &db,
        "SELECT string_agg(version::text, ',' ORDER BY version) || ' ' || count(*) \
         FROM _sqlx_migrations WHERE success",
    );
    let mut versions: Vec<u32> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .expect("migrations dir")
            .filter_map(|e| e.ok()?.file_name().to_str()?.get(..4)?.parse().ok())
            .collect();
    versions.sort();
    let list: Vec<String> = versions.iter().map(u32::to_string).collect();
    let want = format!("{} {}", list.join(","), versions.len());
    assert_eq!(applied.trim(), want, "each migration once");
    // A later start finds nothing to do.
    MetaStore::open_postgres(&url).await.expect("restart");
    for s in stores {
        s.close().await;
    }
}

#[tokio::test]
async fn replicas_starting_together_agree_on_one_signing_key() {
    let pg = PgServer::start();
    let url = fresh(&pg);
    let meta = MetaStore::open_postgres(&url).await.expect("open");
    let tasks = (0..5).map(|_| {
        let repo = IdentityRepo::new(&meta);
        tokio::spawn(async move {
            repo.load_or_init_signing_keys(|| {
                Ok(KeySet::new(SigningKey::generate().expect("key")).export())
            })
            .await
            .expect("keys")
        })
    });
    let mut kids = Vec::new();
    let mut created = 0;
    for t in tasks {
        let (keys, generated) = t.await.expect("task");
        created += usize::from(generated);
        kids.push(keys[0].kid.clone());
    }
    assert_eq!(created, 1, "one replica generates the key");
    assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
}

async fn put_tagged(meta: &MetaStore, repo: &str, seed: &str, tag: &str) -> Digest {
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let c = Digest::sha256(config.as_bytes());
    meta.commit_blob(repo, &c, config.len() as u64, None, || async { Ok(true) })
        .await
        .expect("blob");
    let m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": c.to_string(), "size": config.len()},
        "layers": [],
    });
    let bytes = serde_json::to_vec(&m).unwrap();
    let d = Digest::sha256(&bytes);
    let info = parse_manifest(None, &bytes).expect("manifest");
    meta.put_manifest(repo, &d, &info, &[], &bytes, &[tag])
        .await
        .expect("put");
    d
}

/// Poll `f` until it holds or `within` passes; how long it took.
async fn within<F, Fut>(within: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if f().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test]
async fn a_tag_moved_on_one_replica_is_seen_at_once_and_a_deletion_empties_the_others_cache() {
    let pg = PgServer::start();
    let url = fresh(&pg);
    let a = MetaStore::open_postgres(&url).await.expect("a");
    let b = MetaStore::open_postgres(&url).await.expect("b");
    for round in 0..5 {
        let d = put_tagged(&a, "app", &format!("r{round}"), "latest").await;
        // No retry: tags are never served from a cache on PostgreSQL.
        let seen = b.manifest_by_tag("app", "latest").await.unwrap().unwrap();
        assert_eq!(seen.digest, d.to_string(), "round {round}");
    }
    // B caches a manifest by digest; A deletes it.
    let d = put_tagged(&a, "app", "doomed", "doomed").await;
    b.manifest_by_digest("app", &d)
        .await
        .unwrap()
        .expect("cached");
    assert!(a.delete_manifest("app", &d).await.unwrap());
    // Well inside the cache's 1 s TTL: only the notification explains it.
    let took = within(Duration::from_millis(300), || async {
        b.manifest_by_digest("app", &d).await.unwrap().is_none()
    })
    .await;
    assert!(
        took.is_some(),
        "B still serves a deleted manifest after 300 ms"
    );
}

#[tokio::test]
async fn a_policy_change_on_one_replica_reaches_the_others() {
    let pg = PgServer::start();
    let url = fresh(&pg);
    let a = MetaStore::open_postgres(&url).await.expect("a");
    let b = MetaStore::open_postgres(&url).await.expect("b");
    let heard = Arc::new(AtomicUsize::new(0));
    let h = heard.clone();
    b.changes().on_policy_change(move || {
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert!(a.changes().is_shared());
    a.changes().notify_policy().await;
    let took = within(Duration::from_secs(2), || async {
        heard.load(Ordering::SeqCst) > 0
    })
    .await;
    assert!(took.is_some(), "B never heard of A's policy change");
}

#[tokio::test]
async fn errors_never_show_the_password() {
    let pg = PgServer::start();
    let wrong = format!(
        "postgres://berth:not-the-password-XYZ@127.0.0.1:{}/postgres",
        pg.port()
    );
    let url = DatabaseUrl::parse(&wrong).unwrap();
    let err = MetaStore::open_postgres(&url)
        .await
        .expect_err("bad password");
    let text = format!("{err:#} {err:?}");
    assert!(!text.contains("not-the-password-XYZ"), "{text}");
    assert!(text.contains("berth:***@127.0.0.1"), "{text}");
}
