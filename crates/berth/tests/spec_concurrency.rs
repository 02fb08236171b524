//! Concurrent clients: the same blob pushed by many tasks at once (spec
//! "Layer Upload De-duplication": "If process A and B upload the same layer
//! at the same time, both operations will proceed"), the same tag pushed by
//! many tasks, many tags at once.

mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::Method;

const TASKS: usize = 16;

/// Push `data` with one of three upload styles.
async fn push_with_style(reg: &Registry, repo: &str, data: &[u8], style: usize) -> Reply {
    let digest = sha256(data);
    match style % 3 {
        0 => {
            let loc = reg.start_upload(repo).await;
            reg.req(Method::PUT, &with_query(&loc, "digest", &digest))
                .header("Content-Type", "application/octet-stream")
                .body(data.to_vec())
                .send()
                .await
        }
        1 => {
            let url = with_query(
                &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
                "digest",
                &digest,
            );
            reg.req(Method::POST, &url)
                .header("Content-Type", "application/octet-stream")
                .body(data.to_vec())
                .send()
                .await
        }
        _ => {
            let mut loc = reg.start_upload(repo).await;
            let chunk = data.len().div_ceil(4).max(1);
            for (i, c) in data.chunks(chunk).enumerate() {
                let start = i * chunk;
                let r = reg
                    .req(Method::PATCH, &loc)
                    .header("Content-Type", "application/octet-stream")
                    .header(
                        "Content-Range",
                        &format!("{}-{}", start, start + c.len() - 1),
                    )
                    .body(c.to_vec())
                    .send()
                    .await;
                r.expect_status(202);
                loc = reg.resolve_location(&r.must_header("Location"));
            }
            reg.req(Method::PUT, &with_query(&loc, "digest", &digest))
                .send()
                .await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_blob_from_many_tasks_into_one_repository() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let data = random_bytes(512 * 1024);
    let digest = sha256(&data);
    let mut handles = vec![];
    for i in 0..TASKS {
        let reg = reg.clone();
        let data = data.clone();
        handles.push(tokio::spawn(async move {
            push_with_style(&reg, "conc/blob", &data, i).await
        }));
    }
    for h in handles {
        let r = h.await.expect("task");
        r.expect_status(201);
    }
    let got = reg.get_blob("conc/blob", &digest).await;
    got.expect_status(200);
    assert!(got.body == data, "blob intact after concurrent pushes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_blob_from_many_tasks_into_many_repositories() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let data = random_bytes(256 * 1024);
    let digest = sha256(&data);
    let mut handles = vec![];
    for i in 0..TASKS {
        let reg = reg.clone();
        let data = data.clone();
        handles.push(tokio::spawn(async move {
            let repo = format!("conc/repo{}", i % 8);
            (repo.clone(), push_with_style(&reg, &repo, &data, i).await)
        }));
    }
    for h in handles {
        let (_, r) = h.await.expect("task");
        r.expect_status(201);
    }
    for i in 0..8 {
        let got = reg.get_blob(&format!("conc/repo{i}"), &digest).await;
        got.expect_status(200);
        assert!(got.body == data, "conc/repo{i} holds the blob intact");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_tag_from_many_tasks() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "conc/tag";
    let images: Vec<Image> = (0..TASKS).map(|_| Image::random(1, 64)).collect();
    for img in &images {
        for b in img.blobs() {
            reg.push_blob(repo, b).await;
        }
    }
    let mut handles = vec![];
    for img in images.clone() {
        let reg = reg.clone();
        handles.push(tokio::spawn(async move {
            reg.put_manifest(repo, "latest", OCI_MANIFEST, &img.manifest)
                .await
        }));
    }
    for h in handles {
        h.await.expect("task").expect_status(201);
    }
    let got = reg.get_manifest(repo, "latest").await;
    got.expect_status(200);
    let digests: BTreeSet<String> = images.iter().map(|i| i.digest()).collect();
    let now = sha256(&got.body);
    assert!(
        digests.contains(&now),
        "the tag points at one of the pushed manifests, byte-exact"
    );
    assert_eq!(got.header("Docker-Content-Digest"), Some(now.clone()));
    // HEAD agrees with GET.
    let h = reg.head(&format!("/v2/{repo}/manifests/latest")).await;
    assert_eq!(h.header("Docker-Content-Digest"), Some(now));
    assert_eq!(reg.tags(repo).await, vec!["latest".to_string()]);
    for img in &images {
        let r = reg.get_manifest(repo, &img.digest()).await;
        r.expect_status(200);
        assert_eq!(r.body, img.manifest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tags_and_repositories_at_once() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let img = Image::random(1, 64);
    for repo in ["conc/many-a", "conc/many-b"] {
        for b in img.blobs() {
            reg.push_blob(repo, b).await;
        }
    }
    let mut handles = vec![];
    for i in 0..32 {
        let reg = reg.clone();
        let manifest = img.manifest.clone();
        handles.push(tokio::spawn(async move {
            let repo = if i % 2 == 0 {
                "conc/many-a"
            } else {
                "conc/many-b"
            };
            reg.put_manifest(repo, &format!("tag{i:02}"), OCI_MANIFEST, &manifest)
                .await
        }));
    }
    for h in handles {
        h.await.expect("task").expect_status(201);
    }
    let a = reg.tags("conc/many-a").await;
    let b = reg.tags("conc/many-b").await;
    assert_eq!(
        a,
        (0..32)
            .step_by(2)
            .map(|i| format!("tag{i:02}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        b,
        (1..32)
            .step_by(2)
            .map(|i| format!("tag{i:02}"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_to_one_session_never_corrupt_it() {
    let server = TestServer::start().await;
    // Losers get a 416 before their body is read; keep-alive behaviour after
    // that is tested in spec_robustness, not here.
    let reg = server.registry_fresh_connections();
    let repo = "conc/session";
    let data = random_bytes(64 * 1024);
    let loc = reg.start_upload(repo).await;
    // Eight clients race to send the same first chunk; at most one may win
    // (202), the rest must get 416 (or the server may serialise them and
    // reject late ones). The session must end up holding exactly one copy.
    let mut handles = vec![];
    for _ in 0..8 {
        let reg = reg.clone();
        let loc = loc.clone();
        let chunk = data[..32 * 1024].to_vec();
        handles.push(tokio::spawn(async move {
            reg.req(Method::PATCH, &loc)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", "0-32767")
                .body(chunk)
                .send()
                .await
        }));
    }
    let mut accepted = 0;
    for h in handles {
        let r = h.await.expect("task");
        match r.status.as_u16() {
            202 => accepted += 1,
            416 => {}
            other => panic!("unexpected status {other}\n{}", r.describe()),
        }
    }
    assert_eq!(accepted, 1, "exactly one racing first chunk is accepted");
    let st = reg.get(&loc).await;
    st.expect_status(204);
    assert_eq!(parse_upload_range(&st.must_header("Range")), (0, 32767));
    let loc = reg.resolve_location(&st.must_header("Location"));
    reg.req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "32768-65535")
        .body(data[32 * 1024..].to_vec())
        .send()
        .await
        .expect_status(202);
    reg.req(Method::PUT, &with_query(&loc, "digest", &sha256(&data)))
        .send()
        .await
        .expect_status(201);
    assert!(reg.get_blob(repo, &sha256(&data)).await.body == data);
}
