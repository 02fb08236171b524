//! The metadata store's SQL (blobs, manifests, tags, referrers, uploads,
//! listings) against SQLite and PostgreSQL alike.

use berth_core::manifest::parse_manifest;
use berth_core::Digest;
use berth_store::meta::MetaStore;
use berth_store::DatabaseUrl;
use berth_testpg::PgServer;
use serde_json::json;

const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Keeps the database alive for the test.
enum Place {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { _server: PgServer },
}

async fn sqlite() -> (Place, MetaStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = MetaStore::open_sqlite(&dir.path().join("meta.db"))
        .await
        .expect("open");
    (Place::Sqlite { _dir: dir }, meta)
}

async fn postgres() -> (Place, MetaStore) {
    let pg = PgServer::start();
    let url = DatabaseUrl::parse(&pg.create_database()).expect("url");
    let meta = MetaStore::open_postgres(&url).await.expect("open");
    (Place::Postgres { _server: pg }, meta)
}

macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let (_place, meta) = super::sqlite().await;
                    super::$name(&meta).await
                }

                #[tokio::test]
                async fn postgres() {
                    let (_place, meta) = super::postgres().await;
                    super::$name(&meta).await
                }
            }
        )*
    };
}

on_both_engines!(
    blobs_link_mount_unlink,
    manifests_tags_and_referrers,
    tag_order_and_pagination,
    upload_sessions,
    delete_repository_removes_everything,
);

fn digest(data: &[u8]) -> Digest {
    Digest::sha256(data)
}

/// Commit a blob into `repo`; its digest.
async fn blob(meta: &MetaStore, repo: &str, data: &[u8]) -> Digest {
    let d = digest(data);
    meta.commit_blob(repo, &d, data.len() as u64, None, || async { Ok(true) })
        .await
        .expect("commit blob");
    d
}

/// An image manifest over a fresh config and layer in `repo`, optionally
/// with a subject and an artifact type.
async fn image(
    meta: &MetaStore,
    repo: &str,
    seed: &str,
    subject: Option<(&Digest, usize)>,
    artifact_type: Option<&str>,
) -> (Digest, Vec<u8>) {
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let layer = format!("layer {seed}");
    let c = blob(meta, repo, config.as_bytes()).await;
    let l = blob(meta, repo, layer.as_bytes()).await;
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": IMAGE,
        "config": {"mediaType": CONFIG, "digest": c.to_string(), "size": config.len()},
        "layers": [{"mediaType": LAYER, "digest": l.to_string(), "size": layer.len()}],
        "annotations": {"seed": seed},
    });
    if let Some((s, size)) = subject {
        m["subject"] = json!({"mediaType": IMAGE, "digest": s.to_string(), "size": size});
    }
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    let bytes = serde_json::to_vec(&m).expect("json");
    (digest(&bytes), bytes)
}

async fn put(meta: &MetaStore, repo: &str, d: &Digest, bytes: &[u8], tag: Option<&str>) {
    let info = parse_manifest(Some(IMAGE), bytes).expect("valid manifest");
    meta.put_manifest(repo, d, &info, &[], bytes, tag.as_slice())
        .await
        .expect("put manifest");
}

async fn blobs_link_mount_unlink(meta: &MetaStore) {
    let d = blob(meta, "a/one", b"hello").await;
    assert_eq!(meta.linked_blob_size("a/one", &d).await.unwrap(), Some(5));
    assert_eq!(meta.linked_blob_size("b/two", &d).await.unwrap(), None);
    assert!(!meta.mount_blob("b/two", "nowhere", &d).await.unwrap());
    assert!(meta.mount_blob("b/two", "a/one", &d).await.unwrap());
    assert_eq!(meta.linked_blob_size("b/two", &d).await.unwrap(), Some(5));
    // Committing the same content again is idempotent.
    blob(meta, "a/one", b"hello").await;
    assert!(meta.unlink_blob("a/one", &d).await.unwrap());
    assert!(!meta.unlink_blob("a/one", &d).await.unwrap());
    assert_eq!(meta.linked_blob_size("a/one", &d).await.unwrap(), None);
    assert_eq!(
        meta.list_repositories(None, 10).await.unwrap(),
        ["a/one", "b/two"]
    );
    assert_eq!(
        meta.list_repositories(Some("a/one"), 10).await.unwrap(),
        ["b/two"]
    );
    assert!(meta.repository_id("a/one").await.unwrap().is_some());
    assert!(meta.repository_id("zzz").await.unwrap().is_none());
}

async fn manifests_tags_and_referrers(meta: &MetaStore) {
    let repo = "app";
    let (d1, m1) = image(meta, repo, "one", None, None).await;
    put(meta, repo, &d1, &m1, Some("v1")).await;
    let got = meta
        .manifest_by_tag(repo, "v1")
        .await
        .unwrap()
        .expect("tag");
    assert_eq!(got.digest, d1.to_string());
    assert_eq!(&got.content[..], &m1[..]);
    assert_eq!(got.media_type, IMAGE);
    let by_digest = meta.manifest_by_digest(repo, &d1).await.unwrap();
    assert_eq!(by_digest.expect("digest").content, got.content);

    // Moving the tag is seen at once (the cache is invalidated).
    let (d2, m2) = image(meta, repo, "two", None, None).await;
    put(meta, repo, &d2, &m2, Some("v1")).await;
    let moved = meta
        .manifest_by_tag(repo, "v1")
        .await
        .unwrap()
        .expect("tag");
    assert_eq!(moved.digest, d2.to_string());

    // A manifest referring to a missing blob writes nothing.
    let missing = json!({
        "schemaVersion": 2, "mediaType": IMAGE,
        "config": {"mediaType": CONFIG, "digest": digest(b"nope").to_string(), "size": 4},
        "layers": [],
    });
    let mb = serde_json::to_vec(&missing).unwrap();
    let info = parse_manifest(Some(IMAGE), &mb).unwrap();
    assert!(meta
        .put_manifest(repo, &digest(&mb), &info, &[], &mb, &["bad"])
        .await
        .is_err());
    assert!(meta.manifest_by_tag(repo, "bad").await.unwrap().is_none());

    // Referrers: by subject, filtered by artifact type.
    let (r1, rm1) = image(meta, repo, "sig", Some((&d1, m1.len())), Some("x/sig")).await;
    put(meta, repo, &r1, &rm1, None).await;
    let (r2, rm2) = image(meta, repo, "sbom", Some((&d1, m1.len())), Some("x/sbom")).await;
    put(meta, repo, &r2, &rm2, None).await;
    let all = meta.referrers(repo, &d1, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let sigs = meta.referrers(repo, &d1, Some("x/sig")).await.unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].digest, r1);
    assert_eq!(sigs[0].size, rm1.len() as i64);
    assert_eq!(sigs[0].artifact_type.as_deref(), Some("x/sig"));
    let ann = sigs[0].annotations.as_ref().expect("annotations");
    assert_eq!(ann["seed"], "sig");
    assert!(meta.referrers(repo, &d2, None).await.unwrap().is_empty());

    // Listings.
    let tags = meta.tag_details(repo).await.unwrap().expect("repo");
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].name, "v1");
    assert_eq!(tags[0].digest, d2.to_string());
    assert_eq!(tags[0].size, m2.len() as i64);
    let manifests = meta.manifest_details(repo).await.unwrap().expect("repo");
    assert_eq!(manifests.len(), 4);
    let tagged = manifests
        .iter()
        .find(|m| m.digest == d2.to_string())
        .unwrap();
    assert_eq!(tagged.tags, ["v1"]);
    assert!(meta.tag_details("nope").await.unwrap().is_none());

    // Deletes.
    assert!(meta.delete_tag(repo, "v1").await.unwrap());
    assert!(!meta.delete_tag(repo, "v1").await.unwrap());
    assert!(meta.manifest_by_tag(repo, "v1").await.unwrap().is_none());
    put(meta, repo, &d1, &m1, Some("keep")).await;
    assert!(meta.delete_manifest(repo, &d1).await.unwrap());
    assert!(!meta.delete_manifest(repo, &d1).await.unwrap());
    assert!(meta.manifest_by_tag(repo, "keep").await.unwrap().is_none());
    assert!(meta.manifest_by_digest(repo, &d1).await.unwrap().is_none());
}

async fn tag_order_and_pagination(meta: &MetaStore) {
    let repo = "order";
    let (d, m) = image(meta, repo, "x", None, None).await;
    for tag in ["b", "A", "a", "B", "_z", "10", "9"] {
        put(meta, repo, &d, &m, Some(tag)).await;
    }
    let id = meta.repository_id(repo).await.unwrap().expect("repo");
    let all = meta.list_tags(id, None, 100).await.unwrap();
    // Case-insensitive, ties by exact bytes ('_' sorts before letters).
    assert_eq!(all, ["10", "9", "_z", "A", "a", "B", "b"]);
    let page = meta.list_tags(id, Some("A"), 2).await.unwrap();
    assert_eq!(page, ["a", "B"]);
    let page = meta.list_tags(id, Some("_z"), 10).await.unwrap();
    assert_eq!(page, ["A", "a", "B", "b"]);
    let names: Vec<String> = meta
        .tag_details(repo)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, all);
}

async fn upload_sessions(meta: &MetaStore) {
    meta.create_upload("u1", "app").await.unwrap();
    let u = meta.upload("u1").await.unwrap().expect("session");
    assert_eq!((u.repository.as_str(), u.size), ("app", 0));
    assert!(meta.advance_upload("u1", 0, 100).await.unwrap());
    assert!(
        !meta.advance_upload("u1", 0, 50).await.unwrap(),
        "a stale offset loses"
    );
    assert_eq!(meta.upload("u1").await.unwrap().unwrap().size, 100);
    let ids = meta.upload_ids().await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].0, "u1");
    // Committing a blob finishes its session.
    let d = digest(b"done");
    meta.commit_blob("app", &d, 4, Some("u1"), || async { Ok(true) })
        .await
        .unwrap();
    assert!(meta.upload("u1").await.unwrap().is_none());
    meta.create_upload("u2", "app").await.unwrap();
    assert!(meta.delete_upload("u2").await.unwrap());
    assert!(!meta.delete_upload("u2").await.unwrap());
}

async fn delete_repository_removes_everything(meta: &MetaStore) {
    let repo = "gone";
    let (d, m) = image(meta, repo, "g", None, None).await;
    put(meta, repo, &d, &m, Some("latest")).await;
    meta.create_upload("ug", repo).await.unwrap();
    assert!(meta
        .manifest_by_tag(repo, "latest")
        .await
        .unwrap()
        .is_some());
    assert!(meta.delete_repository(repo).await.unwrap());
    assert!(!meta.delete_repository(repo).await.unwrap());
    assert!(meta
        .manifest_by_tag(repo, "latest")
        .await
        .unwrap()
        .is_none());
    assert!(meta.manifest_by_digest(repo, &d).await.unwrap().is_none());
    assert!(meta.upload("ug").await.unwrap().is_none());
    assert!(meta.repository_id(repo).await.unwrap().is_none());
    // The name can be used again.
    put_again(meta, repo).await;
}

async fn put_again(meta: &MetaStore, repo: &str) {
    let (d, m) = image(meta, repo, "again", None, None).await;
    put(meta, repo, &d, &m, Some("latest")).await;
    let got = meta.manifest_by_tag(repo, "latest").await.unwrap();
    assert_eq!(got.expect("tag").digest, d.to_string());
}
