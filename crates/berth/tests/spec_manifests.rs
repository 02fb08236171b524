//! OCI distribution-spec v1.1 **Pushing Manifests**: PUT by tag and by
//! digest, byte-exact storage, Content-Type round trip, digests (sha256 and
//! sha512), MANIFEST_BLOB_UNKNOWN, MANIFEST_INVALID, size limit (413),
//! invalid tags and references.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn put_by_tag_returns_201_location_and_digest() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/by-tag";
    let img = Image::random(1, 256);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    let r = reg
        .put_manifest(repo, "v1", OCI_MANIFEST, &img.manifest)
        .await;
    // spec: "Upon a successful upload, the registry MUST return response
    // code 201 Created, and MUST have the following header: Location"
    r.expect_status(201);
    let loc = reg.resolve_location(&r.must_header("Location"));
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(img.digest()),
        "{}",
        r.describe()
    );
    assert!(
        r.header("OCI-Subject").is_none(),
        "OCI-Subject only answers a manifest with a subject\n{}",
        r.describe()
    );
    // "The <location> is a pullable manifest URL."
    let got = reg
        .req(Method::GET, &loc)
        .header("Accept", OCI_MANIFEST)
        .send()
        .await;
    got.expect_status(200);
    assert_eq!(got.body, img.manifest);
}

#[tokio::test]
async fn put_by_digest_is_pullable_by_digest_and_untagged() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/by-digest";
    let img = Image::random(2, 64);
    reg.push_image(repo, "keep", &Image::random(1, 1)).await;
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    let digest = img.digest();
    let r = reg
        .put_manifest(repo, &digest, OCI_MANIFEST, &img.manifest)
        .await;
    r.expect_status(201);
    r.must_header("Location");
    // spec: "The Docker-Content-Digest header returns the canonical digest of
    // the uploaded blob, and MUST be equal to the client provided digest."
    if let Some(d) = r.header("Docker-Content-Digest") {
        assert_eq!(d, digest);
    }
    let got = reg.get_manifest(repo, &digest).await;
    got.expect_status(200);
    assert_eq!(got.body, img.manifest);
    assert_eq!(reg.tags(repo).await, vec!["keep".to_string()]);
}

#[tokio::test]
async fn put_by_digest_that_does_not_match_body_is_digest_invalid() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/digest-mismatch";
    let img = Image::random(1, 10);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    let wrong = sha256(b"not the manifest");
    let r = reg
        .put_manifest(repo, &wrong, OCI_MANIFEST, &img.manifest)
        .await;
    r.expect_error(400, &["DIGEST_INVALID"]);
    reg.get_manifest(repo, &wrong).await.expect_status(404);
    reg.get_manifest(repo, &img.digest())
        .await
        .expect_status(404);
}

/// A manifest serialised unusually: indentation, odd key order, escaped
/// unicode, trailing newline. The registry "MUST store the manifest in the
/// exact byte representation provided by the client".
fn odd_bytes(v: &serde_json::Value) -> Vec<u8> {
    let pretty = serde_json::to_string_pretty(v).expect("pretty json");
    format!(
        "\n  {}\r\n",
        pretty.replace("\"schemaVersion\"", "\"schemaVersion\" ")
    )
    .replace(
        "\"annotations\": {}",
        "\"annotations\": {\"x\": \"\\u00e9t\\u00e9\"}",
    )
    .into_bytes()
}

#[tokio::test]
async fn manifest_bytes_and_content_type_round_trip_exactly() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/round-trip";

    // OCI image manifest.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = random_bytes(200);
    reg.push_blob(repo, config).await;
    reg.push_blob(repo, &layer).await;
    let oci = odd_bytes(&json!({
        "layers": [descriptor(OCI_LAYER, &layer)],
        "config": descriptor(OCI_CONFIG, config),
        "mediaType": OCI_MANIFEST,
        "schemaVersion": 2,
        "annotations": {},
    }));
    // Docker schema 2 manifest over the same blobs.
    let docker = odd_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER, &layer)],
    }));
    let mut pushed = vec![];
    for (tag, mt, body) in [
        ("oci", OCI_MANIFEST, &oci),
        ("docker", DOCKER_MANIFEST, &docker),
    ] {
        reg.put_manifest_ok(repo, tag, mt, body).await;
        pushed.push((tag, mt, body.clone()));
    }
    // OCI index and Docker manifest list over them.
    let index = odd_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": sha256(&oci), "size": oci.len(),
            "platform": {"architecture": "amd64", "os": "linux"}
        }],
        "annotations": {},
    }));
    let list = odd_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{
            "mediaType": DOCKER_MANIFEST, "digest": sha256(&docker), "size": docker.len(),
            "platform": {"architecture": "amd64", "os": "linux"}
        }],
    }));
    for (tag, mt, body) in [("index", OCI_INDEX, &index), ("list", DOCKER_LIST, &list)] {
        reg.put_manifest_ok(repo, tag, mt, body).await;
        pushed.push((tag, mt, body.clone()));
    }

    for (tag, mt, body) in pushed {
        let digest = sha256(&body);
        for reference in [tag.to_string(), digest.clone()] {
            let r = reg.get_manifest(repo, &reference).await;
            r.expect_status(200);
            assert_eq!(r.body, body, "{tag}: bytes via {reference}");
            // spec: "The Content-Type header SHOULD match what the client
            // pushed as the manifest's Content-Type."
            assert_eq!(r.header("Content-Type").as_deref(), Some(mt), "{tag}");
            assert_eq!(
                r.header("Docker-Content-Digest"),
                Some(digest.clone()),
                "{tag}"
            );
            let h = reg.head(&format!("/v2/{repo}/manifests/{reference}")).await;
            h.expect_status(200);
            assert_eq!(h.header("Content-Type").as_deref(), Some(mt), "{tag} HEAD");
            assert_eq!(h.header("Content-Length"), Some(body.len().to_string()));
        }
    }
}

#[tokio::test]
async fn content_type_parameters_are_ignored_on_push() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/ct-params";
    let img = Image::random(1, 16);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    // spec: "The registry SHOULD ignore parameters on the Content-Type header."
    let r = reg
        .put_manifest(
            repo,
            "v1",
            &format!("{OCI_MANIFEST}; charset=utf-8"),
            &img.manifest,
        )
        .await;
    r.expect_status(201);
    let got = reg.get_manifest(repo, "v1").await;
    got.expect_status(200);
    let ct = got.must_header("Content-Type");
    assert_eq!(
        ct.split(';').next().map(str::trim),
        Some(OCI_MANIFEST),
        "{}",
        got.describe()
    );
}

#[tokio::test]
async fn manifest_without_media_type_field_is_accepted() {
    // image-spec: mediaType "SHOULD be used" — optional, so a manifest
    // without it is still valid.
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/no-mediatype";
    let config = random_bytes(30);
    reg.push_blob(repo, &config).await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [],
    }))
    .expect("json");
    reg.put_manifest_ok(repo, "v1", OCI_MANIFEST, &body).await;
    let got = reg.get_manifest(repo, "v1").await;
    assert_eq!(got.body, body);
    assert_eq!(got.header("Content-Type").as_deref(), Some(OCI_MANIFEST));
}

#[tokio::test]
async fn manifest_with_no_layers_and_artifact_manifest_are_accepted() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/artifact";
    reg.push_blob(repo, EMPTY_JSON).await;
    let layer = random_bytes(99);
    reg.push_blob(repo, &layer).await;
    // An artifact per image-spec 1.1: artifactType + empty config.
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing.v1",
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
        "layers": [descriptor("application/vnd.example.thing.layer.v1", &layer)],
    }))
    .expect("json");
    reg.put_manifest_ok(repo, "artifact", OCI_MANIFEST, &artifact)
        .await;
    // conformance: "Registry should accept a manifest upload with no layers"
    let empty = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
        "layers": [],
    }))
    .expect("json");
    reg.put_manifest_ok(repo, "empty", OCI_MANIFEST, &empty)
        .await;
    assert_eq!(reg.get_manifest(repo, "artifact").await.body, artifact);
    assert_eq!(reg.get_manifest(repo, "empty").await.body, empty);
}

#[tokio::test]
async fn sha512_manifest_by_digest() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/sha512";
    let img = Image::random(1, 128);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    let digest = sha512(&img.manifest);
    let r = reg
        .put_manifest(repo, &digest, OCI_MANIFEST, &img.manifest)
        .await;
    r.expect_status(201);
    r.must_header("Location");
    // "MUST be equal to the client provided digest"
    if let Some(d) = r.header("Docker-Content-Digest") {
        assert_eq!(d, digest);
    }
    let got = reg.get_manifest(repo, &digest).await;
    got.expect_status(200);
    assert_eq!(got.body, img.manifest);
    assert_eq!(got.header("Content-Type").as_deref(), Some(OCI_MANIFEST));
    if let Some(d) = got.header("Docker-Content-Digest") {
        assert!(
            digest_matches(&d, &got.body),
            "Docker-Content-Digest {d} must match the body"
        );
    }
    reg.head(&format!("/v2/{repo}/manifests/{digest}"))
        .await
        .expect_status(200);

    // A wrong sha512 is refused like a wrong sha256.
    let other = sha512(b"something else");
    reg.put_manifest(repo, &other, OCI_MANIFEST, &img.manifest)
        .await
        .expect_error(400, &["DIGEST_INVALID"]);
}

#[tokio::test]
async fn missing_layer_or_config_is_manifest_blob_unknown() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/blob-unknown";
    let img = Image::random(2, 100);

    // Config present, one layer missing.
    reg.push_blob(repo, &img.config).await;
    reg.push_blob(repo, &img.layers[0]).await;
    let r = reg
        .put_manifest(repo, "v1", OCI_MANIFEST, &img.manifest)
        .await;
    // spec: "When a manifest is rejected for this reason, it MUST result in
    // one or more MANIFEST_BLOB_UNKNOWN errors"
    r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    reg.get_manifest(repo, "v1").await.expect_status(404);
    reg.get_manifest(repo, &img.digest())
        .await
        .expect_status(404);

    // All layers present, config missing.
    let img2 = Image::random(1, 100);
    reg.push_blob(repo, &img2.layers[0]).await;
    let r = reg
        .put_manifest(repo, "v2", OCI_MANIFEST, &img2.manifest)
        .await;
    r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    reg.get_manifest(repo, "v2").await.expect_status(404);

    // After the missing blob arrives, the same manifest is accepted.
    reg.push_blob(repo, &img.layers[1]).await;
    reg.put_manifest_ok(repo, "v1", OCI_MANIFEST, &img.manifest)
        .await;
}

#[tokio::test]
async fn index_with_missing_child_manifest_is_manifest_blob_unknown() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/index-child";
    let present = Image::random(1, 10);
    reg.push_image(repo, "present", &present).await;
    let absent = Image::random(1, 10);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": present.digest(), "size": present.manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": absent.digest(), "size": absent.manifest.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .expect("json");
    let r = reg.put_manifest(repo, "multi", OCI_INDEX, &index).await;
    r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    reg.get_manifest(repo, "multi").await.expect_status(404);

    // A child that exists only as a *blob* is not a manifest.
    for b in absent.blobs() {
        reg.push_blob(repo, b).await;
    }
    reg.push_blob(repo, &absent.manifest).await;
    let r = reg.put_manifest(repo, "multi", OCI_INDEX, &index).await;
    r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);

    // Once the child manifest is pushed, the index is accepted.
    reg.put_manifest_ok(repo, &absent.digest(), OCI_MANIFEST, &absent.manifest)
        .await;
    reg.put_manifest_ok(repo, "multi", OCI_INDEX, &index).await;
    assert_eq!(reg.get_manifest(repo, "multi").await.body, index);
}

/// A valid manifest (config + no layers) padded with an annotation to
/// exactly `size` bytes.
fn manifest_of_size(config: &[u8], size: usize) -> Vec<u8> {
    let base = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [],
        "annotations": {"pad": ""},
    }))
    .expect("json");
    assert!(base.len() < size);
    let pad = "a".repeat(size - base.len());
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [],
        "annotations": {"pad": pad},
    }))
    .expect("json");
    assert_eq!(body.len(), size);
    body
}

#[tokio::test]
async fn manifest_size_limit_is_4_mib() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/size";
    let config = random_bytes(50);
    reg.push_blob(repo, &config).await;
    const FOUR_MIB: usize = 4 * 1024 * 1024;

    // spec: "Client and registry implementations SHOULD expect to be able to
    // support manifest pushes of at least 4 megabytes."
    let at_limit = manifest_of_size(&config, FOUR_MIB);
    reg.put_manifest_ok(repo, "at-limit", OCI_MANIFEST, &at_limit)
        .await;
    let got = reg.get_manifest(repo, "at-limit").await;
    assert_eq!(got.body.len(), FOUR_MIB);
    assert!(got.body == at_limit);

    // spec: "A registry that enforces this limit SHOULD respond to a request
    // to push a manifest over this limit with a response code 413 Payload
    // Too Large."
    let over = manifest_of_size(&config, FOUR_MIB + 1);
    let r = reg.put_manifest(repo, "over", OCI_MANIFEST, &over).await;
    r.expect_status(413);
    if !r.body.is_empty() {
        r.expect_error_envelope();
    }
    reg.get_manifest(repo, "over").await.expect_status(404);

    // Far over the limit, sent as a stream without Content-Length.
    let big = manifest_of_size(&config, FOUR_MIB * 3);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(65536).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let r = reg
        .req(Method::PUT, &format!("/v2/{repo}/manifests/streamed"))
        .header("Content-Type", OCI_MANIFEST)
        .body(body)
        .try_send()
        .await;
    // The server may stop reading and close the connection once the limit
    // is passed; if an answer gets through, it is a 413.
    if let Ok(r) = r {
        r.expect_status(413);
    }
    reg.get_manifest(repo, "streamed").await.expect_status(404);
}

#[tokio::test]
async fn invalid_manifests_are_manifest_invalid() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/invalid";
    let config = random_bytes(20);
    reg.push_blob(repo, &config).await;
    let cfg = descriptor(OCI_CONFIG, &config);
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("not json", OCI_MANIFEST, b"this is not json".to_vec()),
        ("truncated json", OCI_MANIFEST, b"{\"schemaVersion\": 2, \"config\": {".to_vec()),
        ("json array", OCI_MANIFEST, b"[1,2,3]".to_vec()),
        ("empty body", OCI_MANIFEST, Vec::new()),
        (
            "schemaVersion 1",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 1, "mediaType": OCI_MANIFEST, "config": cfg, "layers": []})).expect("json"),
        ),
        (
            "no schemaVersion",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"mediaType": OCI_MANIFEST, "config": cfg, "layers": []})).expect("json"),
        ),
        (
            "no config",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})).expect("json"),
        ),
        (
            "layers not an array",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": "nope"})).expect("json"),
        ),
        (
            "mediaType field differs from Content-Type",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": cfg, "layers": []})).expect("json"),
        ),
        (
            "index body pushed as image manifest",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})).expect("json"),
        ),
        (
            "descriptor without digest",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "size": 20}, "layers": []})).expect("json"),
        ),
        (
            "descriptor size negative",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": -1}, "layers": []})).expect("json"),
        ),
    ];
    for (name, ct, body) in cases {
        let r = reg.put_manifest(repo, "bad", ct, &body).await;
        assert_eq!(
            r.status.as_u16(),
            400,
            "{name}: expected 400\n{}",
            r.describe()
        );
        let v = r.expect_error_envelope();
        let code = v["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            code == "MANIFEST_INVALID",
            "{name}: expected MANIFEST_INVALID, got {code}\n{}",
            r.describe()
        );
    }
    // Malformed digest inside a descriptor.
    let r = reg
        .put_manifest(
            repo,
            "bad",
            OCI_MANIFEST,
            &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": "sha256:nothex", "size": 20}, "layers": []}))
            .expect("json"),
        )
        .await;
    r.expect_error(400, &["MANIFEST_INVALID", "DIGEST_INVALID"]);
    reg.get_manifest(repo, "bad").await.expect_status(404);
}

#[tokio::test]
async fn tag_grammar_is_enforced() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/tags";
    let img = Image::random(1, 8);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    // spec: a tag "MUST be at most 128 characters in length and MUST match
    // [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
    let long_ok = format!("a{}", "b".repeat(127));
    for good in ["_underscore", "UPPER", "v1.0.0-rc_1", "0", long_ok.as_str()] {
        reg.put_manifest_ok(repo, good, OCI_MANIFEST, &img.manifest)
            .await;
        let got = reg.get_manifest(repo, good).await;
        got.expect_status(200);
        assert_eq!(got.body, img.manifest, "tag {good}");
    }
    let too_long = "c".repeat(129);
    for bad in [
        "-dash",
        ".dot",
        too_long.as_str(),
        "bad%20tag",
        "tag!",
        "t%C3%A9",
    ] {
        let r = reg
            .put_manifest(repo, bad, OCI_MANIFEST, &img.manifest)
            .await;
        r.expect_error(400, &["MANIFEST_INVALID", "TAG_INVALID"]);
        let got = reg.get_manifest(repo, bad).await;
        assert!(
            got.status.is_client_error(),
            "GET with invalid tag {bad} must be a 4xx\n{}",
            got.describe()
        );
    }
    let mut tags = reg.tags(repo).await;
    tags.sort();
    let mut expected = vec!["0", "UPPER", "_underscore", "v1.0.0-rc_1", long_ok.as_str()];
    expected.sort();
    assert_eq!(tags, expected);
}

#[tokio::test]
async fn malformed_digest_references_are_client_errors() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/bad-digest";
    reg.push_image(repo, "v1", &Image::random(1, 4)).await;
    for reference in [
        "sha256:abc",
        "sha256:ZZZZ5b8f2f5c7a2f8a3a3b3ea0b0c3a3d3e3f3a3b3c3d3e3f3a3b3c3d3e3f3a3b",
        "sha256:",
        "sha512:abcdef",
    ] {
        let r = reg.get_manifest(repo, reference).await;
        r.expect_status_in(&[400, 404]);
        r.expect_error_envelope();
        let r = reg.get_blob(repo, reference).await;
        r.expect_status_in(&[400, 404]);
        r.expect_error_envelope();
    }
}

#[tokio::test]
async fn retagging_moves_the_tag_and_keeps_the_old_manifest() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/retag";
    let a = Image::random(1, 32);
    let b = Image::random(1, 32);
    reg.push_image(repo, "latest", &a).await;
    reg.push_image(repo, "latest", &b).await;
    let got = reg.get_manifest(repo, "latest").await;
    assert_eq!(got.body, b.manifest, "tag points at the newest push");
    let old = reg.get_manifest(repo, &a.digest()).await;
    old.expect_status(200);
    assert_eq!(
        old.body, a.manifest,
        "overwritten tag leaves manifest A by digest"
    );
    assert_eq!(reg.tags(repo).await, vec!["latest".to_string()]);
    // Same manifest, many tags (conformance pushes manifestContent to test0..3).
    for t in ["t0", "t1", "t2", "t3"] {
        reg.put_manifest_ok(repo, t, OCI_MANIFEST, &a.manifest)
            .await;
        assert_eq!(reg.get_manifest(repo, t).await.body, a.manifest);
    }
}

#[tokio::test]
async fn manifest_with_unknown_subject_is_accepted_with_oci_subject() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manifests/subject";
    reg.push_blob(repo, EMPTY_JSON).await;
    let layer = random_bytes(10);
    reg.push_blob(repo, &layer).await;
    let ghost = Image::random(1, 1);
    let subject =
        json!({"mediaType": OCI_MANIFEST, "digest": ghost.digest(), "size": ghost.manifest.len()});
    let body = referrer_manifest(
        &subject,
        Some("application/vnd.example.sig"),
        OCI_EMPTY,
        &layer,
        &json!({"k": "v"}),
    );
    // spec: "A registry MUST initially accept an otherwise valid manifest
    // with a subject field that references a manifest that does not exist in
    // the repository"
    let r = reg
        .put_manifest(repo, &sha256(&body), OCI_MANIFEST, &body)
        .await;
    r.expect_status(201);
    // spec: "a registry implementation that supports the referrers API MUST
    // respond with the response header OCI-Subject: <subject digest>"
    assert_eq!(
        r.header("OCI-Subject"),
        Some(ghost.digest()),
        "{}",
        r.describe()
    );
}
