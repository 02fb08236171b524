//! Crash safety: `kill -9` the server while big blobs stream in and while
//! manifests are being pushed in a loop, restart on the same data
//! directory, and check ARCHITECTURE.md's storage rule — "Commit is atomic;
//! a crash leaves no partial blob and no manifest whose blobs are missing" —
//! plus that every acknowledged write survived:
//!
//! * every blob whose upload was answered 201 is readable and hashes to its
//!   digest; every manifest answered 201 is readable byte-exact with all of
//!   its blobs present;
//! * anything that was in flight is either absent or complete and intact;
//! * each tag points at its last acknowledged manifest or at one pushed
//!   after it, never at something partial;
//! * an unfinished upload session is either unknown (404) or reports an
//!   offset that covers every acknowledged chunk, and resuming from that
//!   offset produces the correct blob;
//! * no file in the data directory that is named by a sha256 digest holds
//!   bytes with a different digest.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rand::Rng;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::Notify;

const MIB: usize = 1024 * 1024;

/// A blob upload that was started.
struct BlobRecord {
    repo: String,
    digest: String,
    data: Arc<Vec<u8>>,
    /// Upload URL path (relative to the server, so it survives the port
    /// change on restart); None once the upload finished.
    session: Option<String>,
    /// Last byte offset (inclusive) the server acknowledged with 202.
    acked_end: Option<u64>,
    /// The closing PUT was answered 201.
    acked: bool,
}

/// A manifest PUT that was started.
#[derive(Clone)]
struct ManifestRecord {
    repo: String,
    tag: String,
    body: Vec<u8>,
    media_type: String,
    acked: bool,
}

#[derive(Default)]
struct Ledger {
    blobs: Vec<BlobRecord>,
    manifests: Vec<ManifestRecord>,
    /// (repo, tag) → indices into `manifests` in push order.
    tag_history: BTreeMap<(String, String), Vec<usize>>,
}

type Shared = Arc<Mutex<Ledger>>;

fn lock(l: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

fn path_of(reg: &Registry, url: &str) -> String {
    url.strip_prefix(&reg.base).unwrap_or(url).to_string()
}

/// A request body that streams `data[range]` in `chunk`-sized pieces with a
/// pause before each, updating `progress` (bytes handed to the socket).
fn paced_body(
    data: Arc<Vec<u8>>,
    start: usize,
    end: usize,
    chunk: usize,
    pace: Duration,
    progress: Arc<AtomicUsize>,
) -> reqwest::Body {
    let s = futures::stream::unfold(start, move |pos| {
        let data = data.clone();
        let progress = progress.clone();
        async move {
            if pos >= end {
                return None;
            }
            tokio::time::sleep(pace).await;
            let next = (pos + chunk).min(end);
            progress.store(next, Ordering::SeqCst);
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(&data[pos..next])),
                next,
            ))
        }
    });
    reqwest::Body::wrap_stream(s)
}

/// One streamed upload: POST, a single paced PATCH without Content-Range,
/// PUT. Stops quietly at the first transport error (the server died).
async fn streamed_upload(
    reg: Registry,
    ledger: Shared,
    repo: String,
    size: usize,
    half_way: Arc<Notify>,
    done: Arc<Notify>,
) {
    let data = Arc::new(random_bytes(size));
    let digest = sha256(&data);
    let idx = {
        let mut l = lock(&ledger);
        l.blobs.push(BlobRecord {
            repo: repo.clone(),
            digest: digest.clone(),
            data: data.clone(),
            session: None,
            acked_end: None,
            acked: false,
        });
        l.blobs.len() - 1
    };
    let Ok(post) = reg
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .try_send()
        .await
    else {
        return;
    };
    post.expect_status(202);
    let loc = reg.resolve_location(&post.must_header("Location"));
    lock(&ledger).blobs[idx].session = Some(path_of(&reg, &loc));

    let progress = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                if progress.load(Ordering::SeqCst) >= size / 2 {
                    half_way.notify_one();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let body = paced_body(
        data.clone(),
        0,
        size,
        MIB,
        Duration::from_millis(8),
        progress,
    );
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .try_send()
        .await;
    watcher.abort();
    let Ok(r) = r else { return };
    r.expect_status(202);
    let loc = reg.resolve_location(&r.must_header("Location"));
    let (_, end) = parse_upload_range(&r.must_header("Range"));
    assert_eq!(end as usize, size - 1, "streamed PATCH took every byte");
    {
        let mut l = lock(&ledger);
        l.blobs[idx].session = Some(path_of(&reg, &loc));
        l.blobs[idx].acked_end = Some(end);
    }
    let Ok(r) = reg
        .req(Method::PUT, &with_query(&loc, "digest", &digest))
        .try_send()
        .await
    else {
        return;
    };
    r.expect_status(201);
    {
        let mut l = lock(&ledger);
        l.blobs[idx].acked = true;
        l.blobs[idx].session = None;
    }
    done.notify_one();
}

/// One chunked upload: POST, PATCHes of `chunk` bytes with Content-Range
/// and a pause between them, PUT. `between` fires after the first
/// acknowledged chunk.
async fn chunked_upload(
    reg: Registry,
    ledger: Shared,
    repo: String,
    size: usize,
    chunk: usize,
    between: Arc<Notify>,
) {
    let data = Arc::new(random_bytes(size));
    let digest = sha256(&data);
    let idx = {
        let mut l = lock(&ledger);
        l.blobs.push(BlobRecord {
            repo: repo.clone(),
            digest: digest.clone(),
            data: data.clone(),
            session: None,
            acked_end: None,
            acked: false,
        });
        l.blobs.len() - 1
    };
    let Ok(post) = reg
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .header("Content-Length", "0")
        .try_send()
        .await
    else {
        return;
    };
    post.expect_status(202);
    let mut loc = reg.resolve_location(&post.must_header("Location"));
    lock(&ledger).blobs[idx].session = Some(path_of(&reg, &loc));
    let mut pos = 0;
    while pos < size {
        let end = (pos + chunk).min(size);
        let Ok(r) = reg
            .req(Method::PATCH, &loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", &format!("{}-{}", pos, end - 1))
            .body(data[pos..end].to_vec())
            .try_send()
            .await
        else {
            return;
        };
        r.expect_status(202);
        loc = reg.resolve_location(&r.must_header("Location"));
        let (_, acked) = parse_upload_range(&r.must_header("Range"));
        assert_eq!(acked as usize, end - 1);
        {
            let mut l = lock(&ledger);
            l.blobs[idx].session = Some(path_of(&reg, &loc));
            l.blobs[idx].acked_end = Some(acked);
        }
        if pos == 0 {
            between.notify_one();
        }
        pos = end;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let Ok(r) = reg
        .req(Method::PUT, &with_query(&loc, "digest", &digest))
        .try_send()
        .await
    else {
        return;
    };
    r.expect_status(201);
    let mut l = lock(&ledger);
    l.blobs[idx].acked = true;
    l.blobs[idx].session = None;
}

/// Push small images in a loop (blobs, then manifest by tag; every fourth
/// round an index over the last two images) until the server goes away.
async fn manifest_pusher(reg: Registry, ledger: Shared, repo: String, pusher: usize) {
    let mut previous: Vec<Image> = vec![];
    for i in 0usize.. {
        let tag = format!("p{pusher}-t{}", i % 3);
        let (media_type, body) = if i % 4 == 3 && previous.len() >= 2 {
            let children: Vec<Value> = previous[previous.len() - 2..]
                .iter()
                .map(|c| {
                    serde_json::json!({"mediaType": OCI_MANIFEST, "digest": c.digest(), "size": c.manifest.len()})
                })
                .collect();
            let idx = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children,
            }))
            .expect("json");
            (OCI_INDEX.to_string(), idx)
        } else {
            let img = Image::random(2, 1024 + i % 4096);
            for b in img.blobs() {
                let data = Arc::new(b.to_vec());
                let digest = sha256(b);
                let idx = {
                    let mut l = lock(&ledger);
                    l.blobs.push(BlobRecord {
                        repo: repo.clone(),
                        digest: digest.clone(),
                        data: data.clone(),
                        session: None,
                        acked_end: None,
                        acked: false,
                    });
                    l.blobs.len() - 1
                };
                let url = with_query(
                    &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
                    "digest",
                    &digest,
                );
                let Ok(r) = reg
                    .req(Method::POST, &url)
                    .header("Content-Type", "application/octet-stream")
                    .body(b.to_vec())
                    .try_send()
                    .await
                else {
                    return;
                };
                r.expect_status(201);
                lock(&ledger).blobs[idx].acked = true;
            }
            let body = img.manifest.clone();
            previous.push(img);
            (OCI_MANIFEST.to_string(), body)
        };
        let midx = {
            let mut l = lock(&ledger);
            l.manifests.push(ManifestRecord {
                repo: repo.clone(),
                tag: tag.clone(),
                body: body.clone(),
                media_type: media_type.clone(),
                acked: false,
            });
            let n = l.manifests.len() - 1;
            l.tag_history
                .entry((repo.clone(), tag.clone()))
                .or_default()
                .push(n);
            n
        };
        let Ok(r) = put_manifest_try(&reg, &repo, &tag, &media_type, &body).await else {
            return;
        };
        r.expect_status(201);
        lock(&ledger).manifests[midx].acked = true;
        // Child manifests must stay pushed by digest too, so that the index
        // above always refers to manifests (the tag may move).
        if media_type == OCI_MANIFEST {
            let digest = sha256(&body);
            let midx = {
                let mut l = lock(&ledger);
                l.manifests.push(ManifestRecord {
                    repo: repo.clone(),
                    tag: digest.clone(),
                    body: body.clone(),
                    media_type: media_type.clone(),
                    acked: false,
                });
                l.manifests.len() - 1
            };
            let Ok(r) = put_manifest_try(&reg, &repo, &digest, &media_type, &body).await else {
                return;
            };
            r.expect_status(201);
            lock(&ledger).manifests[midx].acked = true;
        }
    }
}

async fn put_manifest_try(
    reg: &Registry,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> Result<Reply, reqwest::Error> {
    reg.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
        .header("Content-Type", media_type)
        .body(body.to_vec())
        .try_send()
        .await
}

/// The blobs a manifest references: (digest, size). Index children are
/// manifests, returned separately.
fn references(body: &[u8]) -> (Vec<(String, u64)>, Vec<String>) {
    let v: Value = serde_json::from_slice(body).expect("our own manifest is JSON");
    let mut blobs = vec![];
    let mut children = vec![];
    if let Some(c) = v.get("config") {
        blobs.push((
            c["digest"].as_str().expect("digest").to_string(),
            c["size"].as_u64().expect("size"),
        ));
    }
    for l in v["layers"].as_array().into_iter().flatten() {
        blobs.push((
            l["digest"].as_str().expect("digest").to_string(),
            l["size"].as_u64().expect("size"),
        ));
    }
    for m in v["manifests"].as_array().into_iter().flatten() {
        children.push(m["digest"].as_str().expect("digest").to_string());
    }
    (blobs, children)
}

/// Everything a visible manifest needs is there.
async fn check_manifest_complete(reg: &Registry, repo: &str, body: &[u8], what: &str) {
    let (blobs, children) = references(body);
    for (d, size) in blobs {
        let h = reg.head_blob(repo, &d).await;
        assert_eq!(
            h.status.as_u16(),
            200,
            "{what}: manifest is visible but its blob {d} is missing\n{}",
            h.describe()
        );
        assert_eq!(
            h.header("Content-Length"),
            Some(size.to_string()),
            "{what}: blob {d} size"
        );
    }
    for c in children {
        let r = reg.get_manifest(repo, &c).await;
        assert_eq!(
            r.status.as_u16(),
            200,
            "{what}: index is visible but its child manifest {c} is missing"
        );
    }
}

/// Verify the ledger against the restarted server. Returns counters for the
/// log line.
async fn verify(
    reg: &Registry,
    ledger: &Shared,
    only_from: (usize, usize),
) -> (usize, usize, usize) {
    let (blob_checks, manifests, tags) = {
        let l = lock(ledger);
        let blobs: Vec<(String, String, Arc<Vec<u8>>, bool)> = l.blobs[only_from.0..]
            .iter()
            .map(|b| (b.repo.clone(), b.digest.clone(), b.data.clone(), b.acked))
            .collect();
        let manifests: Vec<ManifestRecord> = l.manifests[only_from.1..].to_vec();
        let tags: Vec<((String, String), Vec<ManifestRecord>)> = l
            .tag_history
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().map(|i| l.manifests[*i].clone()).collect(),
                )
            })
            .collect();
        (blobs, manifests, tags)
    };

    // Blobs: acknowledged → intact; unacknowledged → absent or intact.
    let mut seen: HashMap<(String, String), bool> = HashMap::new();
    for (repo, digest, _, acked) in &blob_checks {
        let key = (repo.clone(), digest.clone());
        let acked_any = *acked || seen.get(&key).copied().unwrap_or(false);
        seen.insert(key, acked_any);
    }
    let mut acked_blobs = 0;
    for ((repo, digest), acked) in &seen {
        let data = blob_checks
            .iter()
            .find(|b| &b.0 == repo && &b.1 == digest)
            .map(|b| b.2.clone())
            .expect("recorded");
        let r = reg.get_blob(repo, digest).await;
        if *acked {
            acked_blobs += 1;
            assert_eq!(
                r.status.as_u16(),
                200,
                "acknowledged blob {digest} in {repo} lost after kill -9\n{}",
                r.describe()
            );
        }
        match r.status.as_u16() {
            200 => {
                assert_eq!(
                    r.body.len(),
                    data.len(),
                    "blob {digest}: length after crash"
                );
                assert!(
                    digest_matches(digest, &r.body),
                    "blob {digest} in {repo}: bytes do not hash to the digest after crash"
                );
            }
            404 => {}
            other => panic!(
                "blob {digest} in {repo}: status {other} after crash\n{}",
                r.describe()
            ),
        }
    }

    // Manifests by digest.
    let mut acked_manifests = 0;
    for m in &manifests {
        let digest = sha256(&m.body);
        let r = reg.get_manifest(&m.repo, &digest).await;
        if m.acked {
            acked_manifests += 1;
            assert_eq!(
                r.status.as_u16(),
                200,
                "acknowledged manifest {digest} ({}:{}) lost after kill -9\n{}",
                m.repo,
                m.tag,
                r.describe()
            );
        }
        match r.status.as_u16() {
            200 => {
                assert!(
                    r.body == m.body,
                    "manifest {digest}: bytes changed after crash"
                );
                assert_eq!(
                    r.header("Content-Type").as_deref(),
                    Some(m.media_type.as_str())
                );
                check_manifest_complete(reg, &m.repo, &r.body, &format!("manifest {digest}")).await;
            }
            404 => {}
            other => panic!(
                "manifest {digest}: status {other} after crash\n{}",
                r.describe()
            ),
        }
    }

    // Tags: the last acknowledged manifest or something pushed after it.
    let mut tag_checks = 0;
    for ((repo, tag), history) in &tags {
        let last_acked = history.iter().rposition(|m| m.acked);
        let candidates: Vec<String> = match last_acked {
            Some(i) => history[i..].iter().map(|m| sha256(&m.body)).collect(),
            None => history.iter().map(|m| sha256(&m.body)).collect(),
        };
        let r = reg.get_manifest(repo, tag).await;
        if last_acked.is_some() {
            assert_eq!(
                r.status.as_u16(),
                200,
                "tag {repo}:{tag} was acknowledged but is gone after kill -9\n{}",
                r.describe()
            );
        }
        if r.status.as_u16() == 200 {
            tag_checks += 1;
            let now = sha256(&r.body);
            assert!(
                candidates.contains(&now),
                "tag {repo}:{tag} points at {now}, which is neither its last acknowledged manifest nor a later push"
            );
            check_manifest_complete(reg, repo, &r.body, &format!("tag {repo}:{tag}")).await;
        } else {
            r.expect_status(404);
        }
    }
    (acked_blobs, acked_manifests, tag_checks)
}

/// Unfinished upload sessions: unknown, or resumable from an offset that
/// covers every acknowledged chunk, yielding the right blob.
async fn verify_sessions(reg: &Registry, ledger: &Shared) -> (usize, usize) {
    /// (ledger index, repo, session path, data, acknowledged end)
    type OpenSession = (usize, String, String, Arc<Vec<u8>>, Option<u64>);
    let open: Vec<OpenSession> = {
        let l = lock(ledger);
        l.blobs
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.acked && b.session.is_some())
            .map(|(i, b)| {
                (
                    i,
                    b.repo.clone(),
                    b.session.clone().expect("session"),
                    b.data.clone(),
                    b.acked_end,
                )
            })
            .collect()
    };
    let (mut resumed, mut unknown) = (0, 0);
    for (idx, repo, session, data, acked_end) in open {
        let url = reg.url(&session);
        let st = reg.get(&url).await;
        match st.status.as_u16() {
            404 => {
                st.expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
                unknown += 1;
            }
            204 => {
                let end = st.header("Range").map(|r| parse_upload_range(&r).1);
                if let (Some(acked), Some(end)) = (acked_end, end) {
                    assert!(
                        end >= acked,
                        "upload session {session}: acknowledged bytes 0-{acked} but after restart only 0-{end}"
                    );
                }
                if let Some(end) = end {
                    assert!(
                        (end as usize) < data.len(),
                        "upload session {session} claims more bytes ({end}) than were ever sent"
                    );
                }
                eprintln!(
                    "  session {session}: {} bytes sent, acknowledged up to {acked_end:?}, \
                     server reports Range {:?} after restart",
                    data.len(),
                    st.header("Range")
                );
                let loc = reg.resolve_location(&st.must_header("Location"));
                // "0-0" is ambiguous (nothing, or one byte): try both.
                let starts: Vec<usize> = match end {
                    None => vec![0],
                    Some(0) => vec![1, 0],
                    Some(e) => vec![e as usize + 1],
                };
                let mut finished = false;
                for start in starts {
                    if start >= data.len() {
                        let r = reg
                            .req(Method::PUT, &with_query(&loc, "digest", &sha256(&data)))
                            .send()
                            .await;
                        if r.status.as_u16() == 201 {
                            finished = true;
                            break;
                        }
                        continue;
                    }
                    // A wrong guess is refused with 416 — possibly before the
                    // body is read, which may reset the connection (see
                    // spec_robustness); either way, try the next offset.
                    let Ok(r) = reg
                        .req(Method::PATCH, &loc)
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Range", &format!("{}-{}", start, data.len() - 1))
                        .body(data[start..].to_vec())
                        .try_send()
                        .await
                    else {
                        continue;
                    };
                    if r.status.as_u16() == 416 {
                        continue;
                    }
                    r.expect_status(202);
                    let loc = reg.resolve_location(&r.must_header("Location"));
                    let r = reg
                        .req(Method::PUT, &with_query(&loc, "digest", &sha256(&data)))
                        .send()
                        .await;
                    assert_eq!(
                        r.status.as_u16(),
                        201,
                        "resuming session {session} from offset {start} did not produce the right blob\n{}",
                        r.describe()
                    );
                    finished = true;
                    break;
                }
                assert!(
                    finished,
                    "session {session} could not be resumed from its reported offset"
                );
                let got = reg.get_blob(&repo, &sha256(&data)).await;
                got.expect_status(200);
                assert!(got.body == *data, "resumed blob intact");
                resumed += 1;
                let mut l = lock(ledger);
                l.blobs[idx].acked = true;
                l.blobs[idx].session = None;
            }
            other => panic!(
                "upload session {session}: status {other} after restart\n{}",
                st.describe()
            ),
        }
    }
    (resumed, unknown)
}

/// Files named by a sha256 hex digest (or inside a directory so named,
/// under a `sha256` directory) must hold bytes with that digest.
fn scan_data_dir(dir: &Path) -> usize {
    fn is_hex64(s: &str) -> bool {
        s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
    let mut checked = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parent = p
                .parent()
                .and_then(|q| q.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let hex = if is_hex64(&name) {
                name
            } else if is_hex64(&parent) {
                parent
            } else {
                continue;
            };
            let under_sha256 = p
                .ancestors()
                .any(|a| a.file_name().is_some_and(|n| n == "sha256"));
            if !under_sha256 {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            assert_eq!(
                sha256(&bytes),
                format!("sha256:{}", hex.to_ascii_lowercase()),
                "data dir file {} is named by a digest its bytes do not have (partial blob?)",
                p.display()
            );
            checked += 1;
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_uploads_and_manifest_puts_keeps_acknowledged_data_intact() {
    let mut server = TestServer::start().await;
    let ledger: Shared = Arc::new(Mutex::new(Ledger::default()));
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let reg = server.registry();
        let marks = {
            let l = lock(&ledger);
            (l.blobs.len(), l.manifests.len())
        };
        let streamed_half = Arc::new(Notify::new());
        let streamed_done = Arc::new(Notify::new());
        let chunk_between = Arc::new(Notify::new());
        let mut tasks = vec![];
        let big = if round == 0 { 64 * MIB } else { 32 * MIB };
        tasks.push(tokio::spawn(streamed_upload(
            reg.clone(),
            ledger.clone(),
            format!("crash/big{}", round % 2),
            big,
            streamed_half.clone(),
            streamed_done.clone(),
        )));
        tasks.push(tokio::spawn(chunked_upload(
            reg.clone(),
            ledger.clone(),
            "crash/chunked".to_string(),
            32 * MIB,
            4 * MIB,
            chunk_between.clone(),
        )));
        for p in 0..2 {
            tasks.push(tokio::spawn(manifest_pusher(
                reg.clone(),
                ledger.clone(),
                format!("crash/m{p}"),
                p,
            )));
        }

        // When to pull the plug: mid-stream of the big upload, right after
        // an acknowledged chunk, right after the big blob was acknowledged,
        // or at a random moment.
        let delay_ms = rand::thread_rng().gen_range(30..1500);
        match round % 4 {
            0 => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(60), streamed_half.notified()).await;
            }
            1 => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(60), chunk_between.notified()).await;
                tokio::time::sleep(Duration::from_millis(delay_ms % 40)).await;
            }
            2 => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(60), streamed_done.notified()).await;
            }
            _ => tokio::time::sleep(Duration::from_millis(delay_ms)).await,
        }
        server.kill9();
        for t in tasks {
            match tokio::time::timeout(Duration::from_secs(60), t).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Ok(Err(e)) => panic!("client task failed: {e}"),
                Err(_) => panic!("client task did not notice the dead server within 60 s"),
            }
        }

        server.restart().await;
        let reg = server.registry();
        let (blobs, manifests, tags) = verify(&reg, &ledger, marks).await;
        // A refused chunk (416) may cost the connection; resume over fresh
        // connections so that only crash behaviour is under test here.
        let (resumed, unknown) =
            verify_sessions(&server.registry_fresh_connections(), &ledger).await;
        let files = scan_data_dir(server.data_dir());
        eprintln!(
            "round {round}: verified {blobs} acknowledged blobs, {manifests} acknowledged manifests, \
             {tags} tags; {resumed} sessions resumed, {unknown} unknown; {files} digest-named files hashed"
        );
        reg.get("/v2/_catalog").await.expect_status(200);
    }
    // Everything acknowledged in any round survived every later crash too.
    let reg = server.registry();
    let (blobs, manifests, _) = verify(&reg, &ledger, (0, 0)).await;
    assert!(blobs > 0 && manifests > 0, "the test acknowledged nothing");
}
