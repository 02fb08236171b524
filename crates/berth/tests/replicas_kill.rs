//! A replica killed with kill -9 during 8 concurrent pushes loses nothing
//! that was acknowledged. Two replicas on PostgreSQL + moto S3 behind the
//! round-robin proxy (`common::distributed`); 8 clients push images with
//! chunked uploads, their requests alternating between the replicas. Once
//! a few images are acknowledged, replica A is killed with SIGKILL and the
//! proxy sends everything to B (as a load balancer does once A fails its
//! health check). A client whose request died with A asks the upload
//! session where it stands and carries on from there on B. Afterwards
//! every acknowledged image is pulled from B with identical digests.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::object_servers::{available, Kind};
use common::*;
use reqwest::Method;

const PUSHERS: usize = 8;
const IMAGES_PER_PUSHER: usize = 3;
const CHUNK: usize = 256 * 1024;
/// Attempts per request before a client gives up.
const ATTEMPTS: usize = 100;

/// One acknowledged image: where it was pushed and what it is.
struct Acked {
    repo: String,
    tag: String,
    image: Image,
}

async fn pause() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Where an upload session stands (`GET` on it: 204 with `Range: 0-N`),
/// `None` when that request failed too.
async fn upload_offset(reg: &Registry, loc: &str) -> Option<usize> {
    let r = reg.req(Method::GET, loc).try_send().await.ok()?;
    if r.status != 204 {
        return None;
    }
    let range = r.header("Range")?;
    // `0-0` is what an empty session reports (chunks are 256 KiB, so a
    // session never holds exactly one byte here).
    if range == "0-0" {
        return Some(0);
    }
    let (_, end) = parse_upload_range(&range);
    Some(end as usize + 1)
}

/// A chunked upload that survives its replica dying: a failed PATCH is
/// followed by asking the session for its offset and going on from there.
async fn push_blob(reg: &Registry, repo: &str, data: &[u8]) -> Result<(), String> {
    let digest = sha256(data);
    let mut loc = None;
    for _ in 0..ATTEMPTS {
        if let Ok(r) = reg
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .header("Content-Length", "0")
            .try_send()
            .await
        {
            if r.status == 202 {
                loc = Some(reg.resolve_location(&r.must_header("Location")));
                break;
            }
        }
        pause().await;
    }
    let mut loc = loc.ok_or_else(|| format!("{repo}: no upload session"))?;
    let mut offset = 0usize;
    let mut attempts = 0;
    while offset < data.len() {
        attempts += 1;
        if attempts > ATTEMPTS {
            return Err(format!("{repo}: upload of {digest} stuck at {offset}"));
        }
        let end = (offset + CHUNK).min(data.len());
        let sent = reg
            .req(Method::PATCH, &loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", &format!("{offset}-{}", end - 1))
            .body(data[offset..end].to_vec())
            .try_send()
            .await;
        match sent {
            Ok(r) if r.status == 202 => {
                offset = end;
                loc = reg.resolve_location(&r.must_header("Location"));
            }
            _ => {
                pause().await;
                if let Some(o) = upload_offset(reg, &loc).await {
                    offset = o;
                }
            }
        }
    }
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        match reg
            .req(Method::PUT, &with_query(&loc, "digest", &digest))
            .header("Content-Length", "0")
            .try_send()
            .await
        {
            Ok(r) if r.status == 201 => return Ok(()),
            Ok(r) => last = r.describe(),
            Err(e) => last = e.to_string(),
        }
        // The PUT may have committed on a replica that died before
        // answering: then the session is gone and the blob is there.
        if let Ok(r) = reg
            .req(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))
            .try_send()
            .await
        {
            if r.status == 200 {
                return Ok(());
            }
        }
        pause().await;
    }
    Err(format!("{repo}: could not commit {digest}: {last}"))
}

async fn push_image(reg: &Registry, repo: &str, tag: &str, image: &Image) -> Result<(), String> {
    for b in image.blobs() {
        push_blob(reg, repo, b).await?;
    }
    for _ in 0..ATTEMPTS {
        if let Ok(r) = reg
            .req(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"))
            .header("Content-Type", &image.media_type)
            .body(image.manifest.clone())
            .try_send()
            .await
        {
            if r.status == 201 {
                return Ok(());
            }
        }
        pause().await;
    }
    Err(format!("{repo}:{tag}: manifest not accepted"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_8_concurrent_pushes_loses_nothing_acknowledged() {
    if !available(Kind::S3) {
        return;
    }
    let mut a = common::distributed::start(&[], &[]).await;
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let mut pushers = Vec::new();
    for p in 0..PUSHERS {
        let reg = a.registry_fresh_connections();
        let acked = acked.clone();
        pushers.push(tokio::spawn(async move {
            let repo = format!("kill/p{p}");
            for i in 0..IMAGES_PER_PUSHER {
                let image = Image::random(2, 600 * 1024 + i);
                let tag = format!("v{i}");
                push_image(&reg, &repo, &tag, &image).await?;
                if let Ok(mut a) = acked.lock() {
                    a.push(Acked {
                        repo: repo.clone(),
                        tag,
                        image,
                    });
                }
            }
            Ok::<(), String>(())
        }));
    }
    // Kill A while the pushes are in flight.
    for _ in 0..1200 {
        if acked.lock().map(|a| a.len()).unwrap_or(0) >= 3 {
            break;
        }
        pause().await;
    }
    let before_kill = acked.lock().map(|a| a.len()).unwrap_or(0);
    assert!(
        before_kill >= 3,
        "no pushes were acknowledged before the kill"
    );
    assert!(
        before_kill < PUSHERS * IMAGES_PER_PUSHER,
        "every push finished before the kill"
    );
    a.kill9();
    let cluster = a.cluster().expect("distributed");
    cluster.proxy.set_backends(vec![cluster.b.port()]);

    for p in pushers {
        p.await.expect("pusher task").expect("pusher finished on B");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("acked"));
    assert_eq!(acked.len(), PUSHERS * IMAGES_PER_PUSHER);
    let survivor = cluster.b.registry();
    for Acked { repo, tag, image } in &acked {
        let m = survivor.get_manifest(repo, tag).await;
        m.expect_status(200);
        assert_eq!(m.must_header("Docker-Content-Digest"), image.digest());
        for b in image.blobs() {
            let got = survivor.get_blob(repo, &sha256(b)).await;
            got.expect_status(200);
            assert_eq!(sha256(&got.body), sha256(b), "{repo}:{tag} blob differs");
        }
    }
}
