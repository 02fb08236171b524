//! OCI distribution-spec v1.1 **Push** workflow for blobs: POST+PUT,
//! single POST, streamed PATCH, chunked PATCH (in order, out of order, 416),
//! upload status, cancel, cross-repository mount. Mirrors
//! conformance/02_push_test.go and its blob-upload siblings.

mod common;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn post_then_put_monolithic_upload() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/monolithic";
    let data = random_bytes(4096);
    let digest = sha256(&data);

    let post = reg
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await;
    // spec: "Upon success, the response MUST have a code of 202 Accepted,
    // and MUST include the following header: Location: <location>"
    post.expect_status(202);
    let loc = reg.resolve_location(&post.must_header("Location"));

    let put = reg
        .req(Method::PUT, &with_query(&loc, "digest", &digest))
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await;
    // spec: "the response MUST have code 201 Created and MUST have the
    // following header: Location: <blob-location>" (a pullable blob URL)
    put.expect_status(201);
    let blob_loc = reg.resolve_location(&put.must_header("Location"));
    if let Some(d) = put.header("Docker-Content-Digest") {
        assert_eq!(d, digest);
    }
    let pulled = reg.get(&blob_loc).await;
    pulled.expect_status(200);
    assert_eq!(pulled.body, data, "blob-location is pullable");

    let r = reg.get_blob(repo, &digest).await;
    r.expect_status(200);
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn upload_locations_are_unique_sessions() {
    let server = TestServer::start().await;
    let reg = server.registry();
    // spec: "The <location> MUST contain a UUID representing a unique session ID"
    let a = reg.start_upload("push/unique").await;
    let b = reg.start_upload("push/unique").await;
    assert_ne!(a, b, "two POSTs must open two sessions");
}

#[tokio::test]
async fn single_post_monolithic_upload() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/single-post";
    let data = random_bytes(3000);
    let digest = sha256(&data);
    let r = reg
        .req(
            Method::POST,
            &with_query(
                &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
                "digest",
                &digest,
            ),
        )
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await;
    // spec: "Successful completion of the request MUST return a 201 Created
    // and MUST include the following header: Location: <blob-location>"
    // (registries without single-POST support SHOULD answer 202; berth
    // supports it).
    r.expect_status(201);
    let loc = reg.resolve_location(&r.must_header("Location"));
    let got = reg.get(&loc).await;
    got.expect_status(200);
    assert_eq!(got.body, data);
    let got = reg.get_blob(repo, &digest).await;
    got.expect_status(200);
    assert_eq!(got.body, data);
}

#[tokio::test]
async fn single_post_with_wrong_digest_is_digest_invalid_and_stores_nothing() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/single-post-bad";
    let data = random_bytes(100);
    let wrong = sha256(b"other content");
    let r = reg
        .req(
            Method::POST,
            &with_query(
                &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
                "digest",
                &wrong,
            ),
        )
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await;
    // spec: "the <digest> MUST match the blob's digest"; DIGEST_INVALID is
    // "provided digest did not match uploaded content".
    r.expect_error(400, &["DIGEST_INVALID"]);
    reg.head_blob(repo, &wrong).await.expect_status(404);
    reg.head_blob(repo, &sha256(&data)).await.expect_status(404);
}

#[tokio::test]
async fn put_with_wrong_digest_is_digest_invalid_and_stores_nothing() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/put-bad";
    let data = random_bytes(100);
    let wrong = sha256(b"different");
    let loc = reg.start_upload(repo).await;
    let r = reg
        .req(Method::PUT, &with_query(&loc, "digest", &wrong))
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await;
    r.expect_error(400, &["DIGEST_INVALID"]);
    reg.head_blob(repo, &wrong).await.expect_status(404);
    reg.head_blob(repo, &sha256(&data)).await.expect_status(404);
}

#[tokio::test]
async fn put_with_malformed_or_missing_digest_is_rejected() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/put-malformed";
    for digest in [
        Some("sha256:xyz"),
        Some("sha256:abcd"),
        Some("notadigest"),
        Some("md5:d41d8cd98f00b204e9800998ecf8427e"),
        Some(""),
        None,
    ] {
        let loc = reg.start_upload(repo).await;
        let url = match digest {
            Some(d) => with_query(&loc, "digest", d),
            None => loc.clone(),
        };
        let r = reg
            .req(Method::PUT, &url)
            .header("Content-Type", "application/octet-stream")
            .body(b"payload".to_vec())
            .send()
            .await;
        // The closing PUT "MUST include the <digest> of the whole blob";
        // a malformed one is a DIGEST_INVALID; an algorithm the registry
        // does not implement may instead be UNSUPPORTED.
        if digest.is_some_and(|d| d.starts_with("md5:")) {
            r.expect_status_in(&[400, 405]);
            let v = r.expect_error_envelope();
            let code = v["errors"][0]["code"].as_str().unwrap_or_default();
            assert!(
                ["DIGEST_INVALID", "UNSUPPORTED"].contains(&code),
                "{}",
                r.describe()
            );
        } else {
            r.expect_error(400, &["DIGEST_INVALID", "BLOB_UPLOAD_INVALID"]);
        }
    }
    reg.head_blob(repo, &sha256(b"payload"))
        .await
        .expect_status(404);
}

#[tokio::test]
async fn streamed_patch_then_put() {
    // conformance/02_push_test.go "Blob Upload Streamed".
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/streamed";
    let part1 = random_bytes(10_000);
    let part2 = random_bytes(7_777);
    let mut whole = part1.clone();
    whole.extend_from_slice(&part2);
    let digest = sha256(&whole);

    let loc = reg.start_upload(repo).await;
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .body(part1.clone())
        .send()
        .await;
    r.expect_status(202);
    let loc = reg.resolve_location(&r.must_header("Location"));
    assert_eq!(
        parse_upload_range(&r.must_header("Range")),
        (0, part1.len() as u64 - 1)
    );

    // A second streamed PATCH appends.
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .body(part2.clone())
        .send()
        .await;
    r.expect_status(202);
    let loc = reg.resolve_location(&r.must_header("Location"));
    assert_eq!(
        parse_upload_range(&r.must_header("Range")),
        (0, whole.len() as u64 - 1)
    );

    // Nothing is visible before the closing PUT commits the blob.
    reg.head_blob(repo, &digest).await.expect_status(404);
    reg.get_blob(repo, &digest).await.expect_status(404);

    let r = reg
        .req(Method::PUT, &with_query(&loc, "digest", &digest))
        .header("Content-Type", "application/octet-stream")
        .send()
        .await;
    r.expect_status(201);
    r.must_header("Location");
    let got = reg.get_blob(repo, &digest).await;
    got.expect_status(200);
    assert_eq!(got.body, whole);
}

#[tokio::test]
async fn chunked_upload_in_order_with_final_chunk_in_put() {
    // conformance "Blob Upload Chunked": PATCH first chunk → 202, PUT with
    // final chunk → 201.
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/chunked";
    let data = random_bytes(25_000);
    let digest = sha256(&data);
    let chunks = [&data[..10_000], &data[10_000..20_000], &data[20_000..]];

    let mut loc = reg.start_upload(repo).await;
    let mut offset = 0usize;
    for chunk in &chunks[..2] {
        let end = offset + chunk.len() - 1;
        let r = reg
            .req(Method::PATCH, &loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", &format!("{offset}-{end}"))
            .header("Content-Length", &chunk.len().to_string())
            .body(chunk.to_vec())
            .send()
            .await;
        // spec: "Each successful chunk upload MUST have a 202 Accepted
        // response code, and MUST have the following headers: Location,
        // Range: 0-<end-of-range>"
        r.expect_status(202);
        loc = reg.resolve_location(&r.must_header("Location"));
        assert_eq!(parse_upload_range(&r.must_header("Range")), (0, end as u64));
        offset = end + 1;
    }

    let last = chunks[2];
    let end = offset + last.len() - 1;
    let r = reg
        .req(Method::PUT, &with_query(&loc, "digest", &digest))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", &format!("{offset}-{end}"))
        .header("Content-Length", &last.len().to_string())
        .body(last.to_vec())
        .send()
        .await;
    // spec: "The response to a successful closing of the session MUST be
    // 201 Created, and MUST contain the following header: Location"
    r.expect_status(201);
    r.must_header("Location");
    let got = reg.get_blob(repo, &digest).await;
    got.expect_status(200);
    assert_eq!(got.body, data);
}

#[tokio::test]
async fn chunked_upload_all_chunks_patched_then_empty_put() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/chunked-empty-put";
    let data = random_bytes(3 * 4096 + 17);
    let digest = sha256(&data);
    let mut loc = reg.start_upload(repo).await;
    for (i, chunk) in data.chunks(4096).enumerate() {
        let start = i * 4096;
        let end = start + chunk.len() - 1;
        let r = reg
            .req(Method::PATCH, &loc)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", &format!("{start}-{end}"))
            .body(chunk.to_vec())
            .send()
            .await;
        r.expect_status(202);
        loc = reg.resolve_location(&r.must_header("Location"));
    }
    let r = reg
        .req(Method::PUT, &with_query(&loc, "digest", &digest))
        .send()
        .await;
    r.expect_status(201);
    let got = reg.get_blob(repo, &digest).await;
    assert_eq!(got.body, data);
}

#[tokio::test]
async fn out_of_order_chunk_is_416_and_session_stays_usable() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/out-of-order";
    let data = random_bytes(3000);
    let digest = sha256(&data);

    // A first chunk that does not start at 0 → 416 (conformance:
    // "Out-of-order blob upload should return 416").
    let loc0 = reg.start_upload(repo).await;
    let r = reg
        .req(Method::PATCH, &loc0)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "1000-1999")
        .body(data[1000..2000].to_vec())
        .send()
        .await;
    // spec: "If a chunk is uploaded out of order, the registry MUST respond
    // with a 416 Requested Range Not Satisfiable code."
    r.expect_status(416);

    let loc = reg.start_upload(repo).await;
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "0-999")
        .body(data[..1000].to_vec())
        .send()
        .await;
    r.expect_status(202);
    let loc = reg.resolve_location(&r.must_header("Location"));

    // A gap (skipping bytes 1000..1500) → 416.
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "1500-2999")
        .body(data[1500..].to_vec())
        .send()
        .await;
    r.expect_status(416);
    // berth additionally reports the valid range on the 416 (beyond the
    // spec, which points clients at GET <location>): it must be the truth.
    assert_eq!(
        parse_upload_range(&r.must_header("Range")),
        (0, 999),
        "Range on 416\n{}",
        r.describe()
    );

    // An overlap (re-sending bytes from 0) → 416 as well.
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "0-999")
        .body(data[..1000].to_vec())
        .send()
        .await;
    r.expect_status(416);

    // A closing PUT whose final chunk starts at the wrong offset is just as
    // out of order.
    let r = reg
        .req(Method::PUT, &with_query(&loc, "digest", &digest))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "1200-2999")
        .body(data[1200..].to_vec())
        .send()
        .await;
    r.expect_status(416);
    reg.head_blob(repo, &digest).await.expect_status(404);

    // spec: "To get the current status after a 416 error, issue a GET
    // request to a URL <location>. ... MUST be a 204 No Content response
    // code, and MUST have the following headers: Location, Range"
    let st = reg.get(&loc).await;
    st.expect_status(204);
    assert_eq!(parse_upload_range(&st.must_header("Range")), (0, 999));
    let loc = reg.resolve_location(&st.must_header("Location"));

    // The rejected chunks changed nothing: continue from 1000 and finish.
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "1000-2999")
        .body(data[1000..].to_vec())
        .send()
        .await;
    r.expect_status(202);
    let loc = reg.resolve_location(&r.must_header("Location"));
    let r = reg
        .req(Method::PUT, &with_query(&loc, "digest", &digest))
        .send()
        .await;
    r.expect_status(201);
    let got = reg.get_blob(repo, &digest).await;
    assert_eq!(
        got.body, data,
        "blob assembled from the accepted chunks only"
    );
}

#[tokio::test]
async fn content_range_that_disagrees_with_body_length_is_rejected() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/size-mismatch";
    let loc = reg.start_upload(repo).await;
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "0-99")
        .body(vec![7u8; 50])
        .send()
        .await;
    assert!(
        r.status.is_client_error(),
        "a chunk whose Content-Range length (100) differs from its body (50) must be refused\n{}",
        r.describe()
    );
    if r.status.as_u16() != 416 {
        r.expect_error_envelope();
    }
}

#[tokio::test]
async fn upload_status_reports_progress() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/status";
    let loc = reg.start_upload(repo).await;
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .body(vec![1u8; 1234])
        .send()
        .await;
    r.expect_status(202);
    let loc = reg.resolve_location(&r.must_header("Location"));
    let st = reg.get(&loc).await;
    st.expect_status(204);
    st.must_header("Location");
    assert_eq!(parse_upload_range(&st.must_header("Range")), (0, 1233));
    assert!(st.body.is_empty(), "204 has no body");
}

#[tokio::test]
async fn cancelled_upload_is_unknown_afterwards() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/cancel";
    let data = random_bytes(500);
    let loc = reg.start_upload(repo).await;
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await;
    r.expect_status(202);
    let loc = reg.resolve_location(&r.must_header("Location"));

    let d = reg.delete(&loc).await;
    // The v1.0 detail doc: DELETE upload → 204 No Content.
    assert!(d.status.is_success(), "cancel upload\n{}", d.describe());

    reg.get(&loc)
        .await
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    let r = reg
        .req(Method::PATCH, &loc)
        .header("Content-Type", "application/octet-stream")
        .body(vec![0u8; 10])
        .send()
        .await;
    r.expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    let r = reg
        .req(Method::PUT, &with_query(&loc, "digest", &sha256(&data)))
        .send()
        .await;
    r.expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    reg.head_blob(repo, &sha256(&data)).await.expect_status(404);
}

#[tokio::test]
async fn unknown_upload_session_is_404_blob_upload_unknown() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/unknown-session";
    reg.push_blob(repo, b"make the repository exist").await;
    let path = format!("/v2/{repo}/blobs/uploads/3f1c9a1e-0000-4000-8000-000000000000");
    reg.get(&path)
        .await
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    reg.req(Method::PATCH, &path)
        .body(vec![1u8; 3])
        .send()
        .await
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    reg.req(
        Method::PUT,
        &with_query(&reg.url(&path), "digest", &sha256(&[1u8; 3])),
    )
    .body(vec![1u8; 3])
    .send()
    .await
    .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    reg.delete(&path)
        .await
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
}

#[tokio::test]
async fn finished_upload_session_is_gone() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/finished";
    let data = random_bytes(64);
    let loc = reg.start_upload(repo).await;
    reg.req(Method::PUT, &with_query(&loc, "digest", &sha256(&data)))
        .body(data.clone())
        .send()
        .await
        .expect_status(201);
    reg.get(&loc)
        .await
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    reg.req(Method::PATCH, &loc)
        .body(vec![0u8; 4])
        .send()
        .await
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
}

#[tokio::test]
async fn pushing_an_existing_blob_again_succeeds() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/again";
    let data = random_bytes(2048);
    let d1 = reg.push_blob(repo, &data).await;
    let d2 = reg.push_blob(repo, &data).await;
    assert_eq!(d1, d2);
    let got = reg.get_blob(repo, &d1).await;
    assert_eq!(got.body, data);
}

#[tokio::test]
async fn empty_blob_round_trips() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/empty";
    let digest = reg.push_blob(repo, b"").await;
    assert_eq!(
        digest,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let r = reg.get_blob(repo, &digest).await;
    r.expect_status(200);
    assert!(r.body.is_empty());
    let h = reg.head_blob(repo, &digest).await;
    h.expect_status(200);
    assert_eq!(h.header("Content-Length").as_deref(), Some("0"));
}

#[tokio::test]
async fn sha512_blob_upload() {
    // The image spec registers sha512 alongside sha256; berth accepts both.
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "push/sha512";
    let data = random_bytes(999);
    let digest = sha512(&data);
    let loc = reg.start_upload(repo).await;
    reg.req(Method::PUT, &with_query(&loc, "digest", &digest))
        .body(data.clone())
        .send()
        .await
        .expect_status(201);
    let r = reg.get_blob(repo, &digest).await;
    r.expect_status(200);
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn cross_repository_mount_succeeds_with_201() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let data = random_bytes(5000);
    let digest = reg.push_blob("mount/source", &data).await;

    let url = with_query(
        &with_query(
            &reg.url("/v2/mount/target/blobs/uploads/"),
            "mount",
            &digest,
        ),
        "from",
        "mount/source",
    );
    let r = reg.req(Method::POST, &url).send().await;
    // spec: "The response to a successful mount MUST be 201 Created, and
    // MUST contain the following header: Location: <blob-location>"
    r.expect_status(201);
    let loc = reg.resolve_location(&r.must_header("Location"));
    if let Some(d) = r.header("Docker-Content-Digest") {
        assert_eq!(d, digest);
    }
    let got = reg.get(&loc).await;
    got.expect_status(200);
    assert_eq!(got.body, data);
    let got = reg.get_blob("mount/target", &digest).await;
    got.expect_status(200);
    assert_eq!(got.body, data);
}

#[tokio::test]
async fn mount_of_unavailable_blob_falls_back_to_upload_session() {
    let server = TestServer::start().await;
    let reg = server.registry();
    reg.push_blob("mount/other", b"unrelated").await;
    let data = random_bytes(300);
    let digest = sha256(&data);

    // The blob exists nowhere, or the source repository does not exist.
    for from in ["mount/other", "mount/does-not-exist"] {
        let url = with_query(
            &with_query(&reg.url("/v2/mount/dest/blobs/uploads/"), "mount", &digest),
            "from",
            from,
        );
        let r = reg.req(Method::POST, &url).send().await;
        // spec: "if a registry ... is unable to mount the requested blob, it
        // SHOULD return a 202. This indicates that the upload session has
        // begun and that the client MAY proceed with the upload."
        r.expect_status(202);
        let loc = reg.resolve_location(&r.must_header("Location"));
        reg.req(Method::PUT, &with_query(&loc, "digest", &digest))
            .body(data.clone())
            .send()
            .await
            .expect_status(201);
    }
    let got = reg.get_blob("mount/dest", &digest).await;
    assert_eq!(got.body, data);
}

#[tokio::test]
async fn mount_requires_the_blob_in_the_named_source_repository() {
    // ARCHITECTURE.md: "a repository can read only the blobs linked to it".
    // Mounting from a repository that does not hold the blob must not leak a
    // blob that only a third repository holds.
    let server = TestServer::start().await;
    let reg = server.registry();
    let secret = random_bytes(256);
    let digest = reg.push_blob("mount/private", &secret).await;
    reg.push_blob("mount/public", b"public stuff").await;

    let url = with_query(
        &with_query(&reg.url("/v2/mount/thief/blobs/uploads/"), "mount", &digest),
        "from",
        "mount/public",
    );
    let r = reg.req(Method::POST, &url).send().await;
    r.expect_status(202);
    reg.head_blob("mount/thief", &digest)
        .await
        .expect_status(404);
}

#[tokio::test]
async fn upload_session_cannot_be_used_through_another_repository() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let data = random_bytes(100);
    let digest = sha256(&data);
    let loc = reg.start_upload("session/owner").await;
    let id = loc
        .split("/blobs/uploads/")
        .nth(1)
        .expect("upload URL contains /blobs/uploads/<id>")
        .split('?')
        .next()
        .expect("id")
        .to_string();
    let foreign = reg.url(&format!("/v2/session/intruder/blobs/uploads/{id}"));
    let r = reg
        .req(Method::PUT, &with_query(&foreign, "digest", &digest))
        .body(data.clone())
        .send()
        .await;
    assert!(
        r.status.is_client_error(),
        "a session of session/owner must not be finished via session/intruder\n{}",
        r.describe()
    );
    r.expect_error_envelope();
    reg.head_blob("session/intruder", &digest)
        .await
        .expect_status(404);
    reg.head_blob("session/owner", &digest)
        .await
        .expect_status(404);
}

#[tokio::test]
async fn mount_without_from_links_only_what_the_caller_may_read() {
    // spec: "The registry MAY treat the from parameter as optional, and it
    // MAY cross-mount the blob if it can be found". berth mounts from a
    // repository holding the blob that the caller may pull (the Owner may
    // pull everything); tests/spec_conformance.rs covers callers who may not.
    let server = TestServer::start().await;
    let reg = server.registry();
    let data = random_bytes(128);
    let digest = reg.push_blob("mount/elsewhere", &data).await;
    let url = with_query(
        &reg.url("/v2/mount/anywhere/blobs/uploads/"),
        "mount",
        &digest,
    );
    let r = reg.req(Method::POST, &url).send().await;
    r.expect_status(201);
    assert_eq!(
        r.must_header("Location"),
        format!("/v2/mount/anywhere/blobs/{digest}")
    );
    assert_eq!(reg.get_blob("mount/anywhere", &digest).await.body, data);
}
