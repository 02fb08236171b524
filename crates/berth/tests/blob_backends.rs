//! The blob-store backend suite: the same cases against the filesystem,
//! S3 (moto's server) and Azure Blob (Azurite), as distribution's
//! storage-driver suite does. Each case drives berth-store's `Registry`
//! (the operations the HTTP layer calls); "a second process" is a fresh
//! `Registry` on the same data directory and blob store, which shares
//! nothing with the first but the database rows and the stored objects.

mod common;

use std::time::Duration;

use berth_core::{Digest, ErrorCode, RepositoryName};
use berth_store::object::location::Credentials;
use berth_store::object::ObjectBlobStore;
use berth_store::{BlobBackend, BlobRead, BlobStoreLocation, ByteStream, Registry, StoreError};
use bytes::Bytes;
use common::object_servers::{available, Kind, ObjectServer};
use futures::StreamExt;

/// 8 MiB, the object backend's part size.
const PART: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Filesystem,
    S3,
    Azure,
}

/// One backend under test: its server (if any), a data directory with the
/// metadata database, and how to open another `Registry` on both.
struct Fixture {
    backend: Backend,
    server: Option<ObjectServer>,
    data_dir: tempfile::TempDir,
    blob_dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(backend: Backend) -> Option<Fixture> {
        let server = match backend {
            Backend::Filesystem => None,
            Backend::S3 if available(Kind::S3) => Some(ObjectServer::start(Kind::S3).await),
            Backend::Azure if available(Kind::Azure) => {
                Some(ObjectServer::start(Kind::Azure).await)
            }
            _ => return None,
        };
        Some(Fixture {
            backend,
            server,
            data_dir: tempfile::tempdir().expect("data dir"),
            blob_dir: tempfile::tempdir().expect("blob dir"),
        })
    }

    /// A fresh `Registry` (a new "process") on the shared state.
    async fn open(&self) -> Registry {
        let backend = match &self.server {
            None => {
                let loc = BlobStoreLocation::Filesystem(self.blob_dir.path().to_path_buf());
                BlobBackend::open(self.data_dir.path(), Some(&loc))
                    .await
                    .expect("open filesystem backend")
            }
            Some(s) => {
                let loc: BlobStoreLocation = s.blob_store_url("reg").parse().expect("url parses");
                let store = ObjectBlobStore::open_with(&loc, &Credentials::Vars(s.env()))
                    .expect("open object store");
                BlobBackend::ObjectStorage(store)
            }
        };
        Registry::open_with_backend(self.data_dir.path(), backend, false, None)
            .await
            .expect("open registry")
    }

    /// Objects (or files) still under `uploads/`.
    async fn upload_leftovers(&self, reg: &Registry) -> Vec<String> {
        match reg.blob_backend() {
            BlobBackend::Filesystem(fs) => std::fs::read_dir(fs.uploads_dir())
                .expect("uploads dir")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            BlobBackend::ObjectStorage(os) => os
                .list("uploads")
                .await
                .expect("list uploads")
                .into_iter()
                .map(|o| o.key)
                .collect(),
        }
    }
}

fn repo(name: &str) -> RepositoryName {
    name.parse().expect("repository name")
}

/// A body yielding `data` in pieces of `piece` bytes.
fn body(data: &[u8], piece: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

/// Read `len` bytes at `start` of a blob as the pull path would.
async fn read_range(blob: BlobRead, start: u64, len: u64) -> Vec<u8> {
    match blob {
        BlobRead::File { file, .. } => {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = file.into_std().await;
            f.seek(SeekFrom::Start(start)).expect("seek");
            let mut out = vec![0u8; len as usize];
            f.read_exact(&mut out).expect("read");
            out
        }
        BlobRead::Bytes(b) => b[start as usize..(start + len) as usize].to_vec(),
        BlobRead::Object(o) => {
            let mut s = o.open(start, len).await.expect("open object");
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk.expect("object chunk"));
            }
            out
        }
    }
}

async fn read_all(reg: &Registry, r: &RepositoryName, d: &Digest) -> Vec<u8> {
    let blob = reg
        .read_blob(r, d)
        .await
        .expect("read blob")
        .expect("blob is there");
    let size = blob.size();
    read_range(blob, 0, size).await
}

fn data(len: usize) -> Vec<u8> {
    common::random_bytes(len)
}

fn code_of(e: &StoreError) -> Option<ErrorCode> {
    match e {
        StoreError::Oci(o) => Some(o.code),
        _ => None,
    }
}

// ---- the cases -------------------------------------------------------------

async fn put_get_range_stat_delete_list(fx: &Fixture) {
    let reg = fx.open().await;
    let r = repo("suite/put");
    let small = data(1000);
    let large = data(2 * PART + 12_345);
    let ds = Digest::sha256(&small);
    let dl = Digest::sha256(&large);
    reg.put_blob(&r, &ds, body(&small, 4096), Some(small.len() as u64))
        .await
        .expect("put small");
    reg.put_blob(&r, &dl, body(&large, 256 * 1024), None)
        .await
        .expect("put large");
    assert_eq!(read_all(&reg, &r, &ds).await, small);
    assert!(read_all(&reg, &r, &dl).await == large, "large blob differs");
    let blob = reg.read_blob(&r, &dl).await.expect("read").expect("there");
    let got = read_range(blob, PART as u64 - 10, 20).await;
    assert_eq!(
        got,
        &large[PART - 10..PART + 10],
        "range across a part edge"
    );
    assert_eq!(
        reg.stat_blob(&r, &dl).await.expect("stat"),
        Some(large.len() as u64)
    );
    let be = reg.blob_backend();
    assert_eq!(
        be.stat_blob(&dl).await.expect("stat"),
        Some(large.len() as u64)
    );
    let listed = be.list_blobs().await.expect("list");
    assert!(listed.contains(&(ds.clone(), 1000)), "{listed:?}");
    assert!(
        listed.contains(&(dl.clone(), large.len() as u64)),
        "{listed:?}"
    );
    be.delete_blob(&ds).await.expect("delete");
    be.delete_blob(&ds)
        .await
        .expect("delete of an absent blob is fine");
    assert_eq!(be.stat_blob(&ds).await.expect("stat"), None);
    assert!(
        fx.upload_leftovers(&reg).await.is_empty(),
        "staging left behind"
    );
    let ready = reg.check_ready().await;
    assert!(ready.is_ready(), "not ready: {ready:?}");
}

async fn multipart_resume_from_a_second_process(fx: &Fixture) {
    let a = fx.open().await;
    let b = fx.open().await;
    let r = repo("suite/resume");
    let blob = data(PART + PART / 2 + 3 * 1024 * 1024 + 1);
    let d = Digest::sha256(&blob);
    let up = a.start_upload(&r).await.expect("start");
    // Chunk 1 on A: more than a part, so a part goes out and a tail stays.
    let c1 = PART + 1000;
    let s = a
        .append_upload(
            &r,
            &up.id,
            Some((0, c1 as u64 - 1)),
            body(&blob[..c1], 65536),
        )
        .await
        .expect("chunk 1");
    assert_eq!(s.size, c1 as u64);
    if fx.backend != Backend::Filesystem {
        let row = b.meta().upload(&up.id).await.expect("row").expect("exists");
        assert!(row.object.multipart_id.is_some(), "multipart id recorded");
        assert_eq!(row.object.parts.len(), 1, "one part acknowledged");
        assert_eq!(row.object.tail_size, 1000);
        assert!(row.object.hash.is_some(), "hash state saved");
    }
    // Chunk 2 on B, a fresh process with only the row: under 5 MiB.
    let c2 = c1 + 3 * 1024 * 1024;
    let s = b
        .append_upload(&r, &up.id, None, body(&blob[c1..c2], 100_000))
        .await
        .expect("chunk 2 on the second process");
    assert_eq!(s.size, c2 as u64);
    assert_eq!(
        a.upload_status(&r, &up.id).await.expect("status").size,
        c2 as u64
    );
    // A stale offset is refused with the acknowledged size.
    let e = a
        .append_upload(&r, &up.id, Some((5, 9)), body(b"12345", 5))
        .await
        .expect_err("stale offset");
    assert!(
        matches!(e, StoreError::UploadRange { size } if size == c2 as u64),
        "{e:?}"
    );
    // The rest and the commit on A.
    let size = a
        .finish_upload(&r, &up.id, None, body(&blob[c2..], 1 << 20), &d)
        .await
        .expect("finish");
    assert_eq!(size, blob.len() as u64);
    assert!(read_all(&b, &r, &d).await == blob, "resumed blob differs");
    assert!(a.meta().upload(&up.id).await.expect("row").is_none());
    assert!(
        fx.upload_leftovers(&a).await.is_empty(),
        "staging left behind"
    );
}

async fn small_chunks_across_part_edges(fx: &Fixture) {
    let regs = [fx.open().await, fx.open().await];
    let r = repo("suite/small");
    let blob = data(PART + 777_777);
    let d = Digest::sha256(&blob);
    let up = regs[0].start_upload(&r).await.expect("start");
    let mut at = 0usize;
    for (i, chunk) in blob.chunks(700_001).enumerate() {
        let end = at + chunk.len();
        let s = regs[i % 2]
            .append_upload(
                &r,
                &up.id,
                Some((at as u64, end as u64 - 1)),
                body(chunk, 70_000),
            )
            .await
            .unwrap_or_else(|e| panic!("chunk {i}: {e:?}"));
        assert_eq!(s.size, end as u64);
        at = end;
    }
    regs[1]
        .finish_upload(&r, &up.id, None, body(&[], 1), &d)
        .await
        .expect("finish with an empty body");
    assert!(read_all(&regs[0], &r, &d).await == blob, "blob differs");
    // An empty blob through a session, and a sha512 one monolithically.
    let empty = Digest::sha256(b"");
    let up = regs[0].start_upload(&r).await.expect("start");
    regs[1]
        .finish_upload(&r, &up.id, None, body(&[], 1), &empty)
        .await
        .expect("empty blob");
    assert_eq!(read_all(&regs[0], &r, &empty).await, b"");
    let five = data(5 * 1024 * 1024 + 3);
    let d512 = Digest::compute(berth_core::Algorithm::Sha512, &five);
    regs[0]
        .put_blob(&r, &d512, body(&five, 1 << 20), None)
        .await
        .expect("sha512 put");
    assert!(read_all(&regs[1], &r, &d512).await == five);
    // A session finished with a sha512 digest (hashed again from the store).
    let big = data(PART + 5);
    let dbig = Digest::compute(berth_core::Algorithm::Sha512, &big);
    let up = regs[0].start_upload(&r).await.expect("start");
    regs[0]
        .append_upload(&r, &up.id, None, body(&big, 1 << 20))
        .await
        .expect("append");
    regs[1]
        .finish_upload(&r, &up.id, None, body(&[], 1), &dbig)
        .await
        .expect("sha512 session");
    assert!(read_all(&regs[0], &r, &dbig).await == big);
}

async fn digest_mismatch_leaves_nothing(fx: &Fixture) {
    let reg = fx.open().await;
    let r = repo("suite/mismatch");
    let blob = data(PART + 4242);
    let actual = Digest::sha256(&blob);
    let wrong = Digest::sha256(b"something else");
    let up = reg.start_upload(&r).await.expect("start");
    reg.append_upload(&r, &up.id, None, body(&blob[..PART + 1], 1 << 20))
        .await
        .expect("append");
    let e = reg
        .finish_upload(&r, &up.id, None, body(&blob[PART + 1..], 4096), &wrong)
        .await
        .expect_err("wrong digest");
    assert_eq!(code_of(&e), Some(ErrorCode::DigestInvalid), "{e:?}");
    let e = reg
        .put_blob(&r, &wrong, body(&blob, 1 << 20), None)
        .await
        .expect_err("wrong digest, monolithic");
    assert_eq!(code_of(&e), Some(ErrorCode::DigestInvalid), "{e:?}");
    let e = reg
        .put_blob(&r, &actual, body(&blob, 1 << 20), Some(3))
        .await
        .expect_err("wrong length");
    assert_eq!(code_of(&e), Some(ErrorCode::SizeInvalid), "{e:?}");
    for d in [&actual, &wrong] {
        assert_eq!(reg.blob_backend().stat_blob(d).await.expect("stat"), None);
        assert_eq!(reg.stat_blob(&r, d).await.expect("stat"), None);
    }
    assert!(reg.meta().upload(&up.id).await.expect("row").is_none());
    assert!(reg.meta().uploads().await.expect("rows").is_empty());
    let left = fx.upload_leftovers(&reg).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

async fn abort_and_purge(fx: &Fixture) {
    let reg = fx.open().await;
    let r = repo("suite/abort");
    let blob = data(PART + 100);
    // DELETE of a session removes its parts and tail.
    let up = reg.start_upload(&r).await.expect("start");
    reg.append_upload(&r, &up.id, None, body(&blob, 1 << 20))
        .await
        .expect("append");
    reg.cancel_upload(&r, &up.id).await.expect("cancel");
    let e = reg
        .append_upload(&r, &up.id, None, body(b"x", 1))
        .await
        .expect_err("cancelled");
    assert_eq!(code_of(&e), Some(ErrorCode::BlobUploadUnknown));
    assert!(fx.upload_leftovers(&reg).await.is_empty());
    // A session abandoned for longer than the expiry is purged with its
    // objects; a live one is kept.
    let old = reg.start_upload(&r).await.expect("start");
    reg.append_upload(&r, &old.id, None, body(&blob, 1 << 20))
        .await
        .expect("append");
    let live = reg.start_upload(&r).await.expect("start");
    reg.append_upload(&r, &live.id, None, body(&blob[..1000], 1000))
        .await
        .expect("append");
    sqlx::query("UPDATE uploads SET updated_at = 0 WHERE id = $1")
        .bind(&old.id)
        .execute(reg.meta().write_pool())
        .await
        .expect("backdate");
    let removed = reg.purge_uploads(Duration::ZERO).await.expect("purge");
    assert!(removed >= 1, "removed {removed}");
    assert!(reg.meta().upload(&old.id).await.expect("row").is_none());
    assert!(
        reg.upload_status(&r, &live.id).await.is_ok(),
        "live session kept"
    );
    let left = fx.upload_leftovers(&reg).await;
    assert!(
        left.iter().all(|k| k.contains(&live.id)),
        "only the live session's objects remain: {left:?}"
    );
    let d = Digest::sha256(&blob[..1000]);
    reg.finish_upload(&r, &live.id, None, body(&[], 1), &d)
        .await
        .expect("the live session still finishes after the purge");
    assert_eq!(read_all(&reg, &r, &d).await, &blob[..1000]);
}

async fn concurrent_uploads_of_the_same_digest(fx: &Fixture) {
    let regs = std::sync::Arc::new([fx.open().await, fx.open().await]);
    let blob = std::sync::Arc::new(data(PART + 300_000));
    let d = Digest::sha256(&blob);
    let mut tasks = Vec::new();
    for i in 0..4usize {
        let regs = regs.clone();
        let blob = blob.clone();
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let reg = &regs[i % 2];
            let r = repo(&format!("suite/same{}", i % 2));
            if i < 2 {
                reg.put_blob(&r, &d, body(&blob, 1 << 20), None).await
            } else {
                let up = reg.start_upload(&r).await?;
                reg.append_upload(&r, &up.id, None, body(&blob[..PART + 1], 1 << 20))
                    .await?;
                let other = &regs[(i + 1) % 2];
                other
                    .finish_upload(&r, &up.id, None, body(&blob[PART + 1..], 1 << 16), &d)
                    .await
                    .map(|_| ())
            }
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("upload");
    }
    for i in 0..2 {
        let r = repo(&format!("suite/same{i}"));
        assert!(read_all(&regs[0], &r, &d).await == *blob);
    }
    assert!(fx.upload_leftovers(&regs[0]).await.is_empty());
}

async fn run_suite(backend: Backend) {
    let Some(fx) = Fixture::start(backend).await else {
        return;
    };
    put_get_range_stat_delete_list(&fx).await;
    multipart_resume_from_a_second_process(&fx).await;
    small_chunks_across_part_edges(&fx).await;
    digest_mismatch_leaves_nothing(&fx).await;
    abort_and_purge(&fx).await;
    concurrent_uploads_of_the_same_digest(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_backend() {
    run_suite(Backend::Filesystem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_on_moto() {
    run_suite(Backend::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_backend_on_azurite() {
    run_suite(Backend::Azure).await;
}
