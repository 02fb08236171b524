//! OCI distribution-spec v1.1, "Determining Support" and the **Pull**
//! workflow: `/v2/`, GET/HEAD of manifests and blobs, Range requests.
//! Mirrors conformance/01_pull_test.go and goes further where the spec says
//! more (headers, byte-exact bodies, Range per RFC 9110).

mod common;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn base_endpoint_answers_200_with_api_version_header() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let r = reg.get("/v2/").await;
    // spec: "If the response is 200 OK, then the registry implements this specification."
    r.expect_status(200);
    // Legacy header the brief promises (spec: OPTIONAL, clients MAY require it).
    assert_eq!(
        r.header("Docker-Distribution-API-Version").as_deref(),
        Some("registry/2.0"),
        "{}",
        r.describe()
    );
    // `/v2` without the trailing slash is what some clients send too.
    let r = reg.get("/v2").await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "GET /v2 should reach the base endpoint\n{}",
        r.describe()
    );
}

#[tokio::test]
async fn unknown_paths_are_client_errors() {
    let server = TestServer::start().await;
    let reg = server.registry();
    for p in [
        "/v2/foo",
        "/v2/foo/unknown/x",
        "/v2/foo/manifests/",
        "/v2/foo/blobs/",
        "/v3/",
    ] {
        let r = reg.get(p).await;
        assert!(
            r.status.is_client_error(),
            "GET {p} must be a 4xx\n{}",
            r.describe()
        );
    }
}

#[tokio::test]
async fn pull_manifest_by_tag_and_digest() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pull/manifest";
    let img = Image::random(2, 1024);
    let put = reg.push_image(repo, "v1", &img).await;
    // spec (Pushing Manifests): 201 with a Location header.
    put.must_header("Location");
    let digest = img.digest();
    if let Some(d) = put.header("Docker-Content-Digest") {
        assert_eq!(d, digest, "PUT Docker-Content-Digest");
    }

    for reference in ["v1", digest.as_str()] {
        let r = reg.get_manifest(repo, reference).await;
        // spec: "A GET request to an existing manifest URL MUST provide the
        // expected manifest, with a response code that MUST be 200 OK."
        r.expect_status(200);
        assert_eq!(r.body, img.manifest, "manifest bytes via {reference}");
        assert_eq!(
            r.header("Content-Type").as_deref(),
            Some(OCI_MANIFEST),
            "Content-Type via {reference}"
        );
        // spec: Docker-Content-Digest SHOULD be present and, if used, MUST
        // match the returned manifest.
        assert_eq!(
            r.header("Docker-Content-Digest").as_deref(),
            Some(digest.as_str()),
            "Docker-Content-Digest via {reference}\n{}",
            r.describe()
        );
    }
}

#[tokio::test]
async fn head_manifest_reports_digest_length_and_type_without_body() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pull/head";
    let img = Image::random(1, 100);
    reg.push_image(repo, "latest", &img).await;
    for reference in ["latest".to_string(), img.digest()] {
        let r = reg
            .req(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"))
            .header("Accept", OCI_MANIFEST)
            .send()
            .await;
        // spec: "A HEAD request to an existing blob or manifest URL MUST return 200 OK."
        r.expect_status(200);
        assert!(r.body.is_empty(), "HEAD must not carry a body");
        assert_eq!(
            r.header("Docker-Content-Digest"),
            Some(img.digest()),
            "{}",
            r.describe()
        );
        // spec: "A successful response SHOULD contain the size in bytes of
        // the uploaded blob in the header Content-Length."
        assert_eq!(
            r.header("Content-Length"),
            Some(img.manifest.len().to_string()),
            "{}",
            r.describe()
        );
        assert_eq!(r.header("Content-Type").as_deref(), Some(OCI_MANIFEST));
    }
}

#[tokio::test]
async fn missing_manifest_is_404_manifest_unknown() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pull/missing";
    // Make the repository exist so that the 404 is about the manifest.
    reg.push_image(repo, "exists", &Image::random(1, 10)).await;
    let absent_digest = sha256(b"no such manifest");
    for reference in ["nosuchtag", absent_digest.as_str()] {
        // spec: "If the manifest is not found in the repository, the response
        // code MUST be 404 Not Found."
        reg.get_manifest(repo, reference)
            .await
            .expect_error(404, &["MANIFEST_UNKNOWN"]);
        let h = reg.head(&format!("/v2/{repo}/manifests/{reference}")).await;
        h.expect_status(404);
        assert!(h.body.is_empty(), "HEAD 404 must not carry a body");
    }
}

#[tokio::test]
async fn manifest_in_unknown_repository_is_404() {
    let server = TestServer::start().await;
    let reg = server.registry();
    // spec: "An attempt to pull a nonexistent repository MUST return response
    // code 404 Not Found."
    reg.get_manifest("no/such/repo", "latest")
        .await
        .expect_error(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
    reg.get_blob("no/such/repo", &sha256(b"x"))
        .await
        .expect_error(404, &["NAME_UNKNOWN", "BLOB_UNKNOWN"]);
}

#[tokio::test]
async fn pull_blob_get_and_head() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pull/blob";
    let data = random_bytes(70_001);
    let digest = reg.push_blob(repo, &data).await;

    let r = reg.get_blob(repo, &digest).await;
    // spec: "A GET request to an existing blob URL MUST provide the expected
    // blob, with a response code that MUST be 200 OK."
    r.expect_status(200);
    assert_eq!(r.body, data, "blob bytes");
    // spec: if present, Docker-Content-Digest "MUST be a digest matching that
    // of the response body".
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest.clone()));
    assert_eq!(r.header("Content-Length"), Some(data.len().to_string()));

    let h = reg.head_blob(repo, &digest).await;
    h.expect_status(200);
    assert!(h.body.is_empty(), "HEAD must not carry a body");
    assert_eq!(h.header("Content-Length"), Some(data.len().to_string()));
    assert_eq!(h.header("Docker-Content-Digest"), Some(digest.clone()));
}

#[tokio::test]
async fn missing_blob_is_404_blob_unknown() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pull/noblob";
    reg.push_blob(repo, b"something else").await;
    let absent = sha256(b"never pushed");
    // spec: "If the blob is not found in the repository, the response code
    // MUST be 404 Not Found."
    reg.get_blob(repo, &absent)
        .await
        .expect_error(404, &["BLOB_UNKNOWN"]);
    let h = reg.head_blob(repo, &absent).await;
    h.expect_status(404);
    assert!(h.body.is_empty());
}

#[tokio::test]
async fn blob_range_requests_follow_rfc9110() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "pull/range";
    let data = random_bytes(1000);
    let digest = reg.push_blob(repo, &data).await;
    let path = format!("/v2/{repo}/blobs/{digest}");
    let len = data.len();

    // spec: "A registry SHOULD support the Range request header in
    // accordance with RFC 9110" (berth claims support).
    let cases: [(&str, usize, usize); 4] = [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, len - 1),
        ("bytes=-5", len - 5, len - 1),
    ];
    for (range, first, last) in cases {
        let r = reg
            .req(Method::GET, &path)
            .header("Range", range)
            .send()
            .await;
        r.expect_status(206);
        assert_eq!(r.body, &data[first..=last], "body for {range}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {first}-{last}/{len}")),
            "Content-Range for {range}\n{}",
            r.describe()
        );
        assert_eq!(
            r.header("Content-Length"),
            Some((last - first + 1).to_string()),
            "Content-Length for {range}"
        );
    }

    // A last-byte-pos past the end is clamped (RFC 9110 §14.1.2).
    let r = reg
        .req(Method::GET, &path)
        .header("Range", "bytes=995-5000")
        .send()
        .await;
    r.expect_status(206);
    assert_eq!(r.body, &data[995..]);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 995-999/{len}"))
    );

    // Unsatisfiable: first-byte-pos at or past the end → 416 with
    // "Content-Range: bytes */<len>" (RFC 9110 §15.5.17).
    let r = reg
        .req(Method::GET, &path)
        .header("Range", &format!("bytes={len}-"))
        .send()
        .await;
    r.expect_status(416);
    assert_eq!(r.header("Content-Range"), Some(format!("bytes */{len}")));

    // A server that supports ranges advertises it.
    let h = reg.head_blob(repo, &digest).await;
    h.expect_status(200);
    if let Some(ar) = h.header("Accept-Ranges") {
        assert_eq!(ar, "bytes");
    }
}

#[tokio::test]
async fn error_responses_carry_spec_json() {
    // conformance/01_pull_test.go "400 response body should contain
    // OCI-conforming JSON message".
    let server = TestServer::start().await;
    let reg = server.registry();
    let r = reg
        .put_manifest(
            "pull/errors",
            "sha256:totallywrong",
            OCI_MANIFEST,
            b"{\"schemaVersion\": 2, \"invalid\": true}",
        )
        .await;
    r.expect_status_in(&[400, 404]);
    if r.status.as_u16() == 400 {
        r.expect_error_envelope();
    }
}
