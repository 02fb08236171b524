//! The checks of the official distribution-spec conformance suites
//! (opencontainers/distribution-spec `conformance/`: the v1.1.1 release
//! and the development branch with its optional features switched on),
//! mirrored over real HTTP against `berth serve` with authentication on:
//!
//! * references that are neither a tag nor a digest are not found (404
//!   MANIFEST_UNKNOWN / BLOB_UNKNOWN; v1.1.1 `.INVALID_MANIFEST_NAME`,
//!   development `sha256:baddigeststring`), a PUT under one is a 400;
//! * tag parameters (`PUT /v2/<name>/manifests/<digest>?tag=a&tag=b`,
//!   answered with `OCI-Tag`) with sha256 and sha512 digests: the digest a
//!   manifest was pushed under is the one every tag, the tag list, the
//!   referrers response and the audit log report;
//! * sparse manifests (`berth serve --sparse-manifests`,
//!   `--index-platforms`): strict by default, accepted with the setting,
//!   and a pull of what was never pushed says so;
//! * mount without `from` ("mount anonymous"): mounted from a repository
//!   the caller may pull, otherwise an ordinary upload that reveals nothing;
//! * skopeo round trips: a sha512 image, and a sparse index copied with
//!   `--multi-arch index-only`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::login::{str_field, token_get, Api};
use common::skopeo::{skopeo_available, write_policy};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const TAG_PATTERN: &str = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}";

/// The `message` of the first error in a reply.
fn message(r: &Reply) -> String {
    r.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every value of a (possibly repeated, possibly comma-separated) header.
fn header_values(r: &Reply, name: &str) -> Vec<String> {
    r.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// A descriptor with a sha512 digest.
fn descriptor512(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha512(data), "size": data.len()})
}

/// Push a blob under its sha512 digest (POST + PUT); returns the digest.
async fn push_blob512(reg: &Registry, repo: &str, data: &[u8]) -> String {
    let digest = sha512(data);
    let loc = reg.start_upload(repo).await;
    reg.req(Method::PUT, &with_query(&loc, "digest", &digest))
        .header("Content-Type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .expect_status(201);
    digest
}

/// `PUT /v2/<repo>/manifests/<reference>?tag=…` (one parameter per tag).
async fn put_with_tags(
    reg: &Registry,
    repo: &str,
    reference: &str,
    tags: &[&str],
    media_type: &str,
    body: &[u8],
) -> Reply {
    let mut url = reg.url(&format!("/v2/{repo}/manifests/{reference}"));
    for t in tags {
        url = with_query(&url, "tag", t);
    }
    reg.req(Method::PUT, &url)
        .header("Content-Type", media_type)
        .body(body.to_vec())
        .send()
        .await
}

/// A single-platform image whose config and layers are described (and
/// pushed) with sha512 digests.
struct Image512 {
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
    manifest: Vec<u8>,
}

impl Image512 {
    fn random(arch: &str) -> Image512 {
        let layers = vec![random_bytes(300), random_bytes(200)];
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256(l)).collect::<Vec<_>>()},
            "berth-test": random_suffix(),
        }))
        .expect("config json");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor512(OCI_CONFIG, &config),
            "layers": layers.iter().map(|l| descriptor512(OCI_LAYER, l)).collect::<Vec<_>>(),
        }))
        .expect("manifest json");
        Image512 {
            config,
            layers,
            manifest,
        }
    }

    fn digest(&self) -> String {
        sha512(&self.manifest)
    }

    async fn push_blobs(&self, reg: &Registry, repo: &str) {
        push_blob512(reg, repo, &self.config).await;
        for l in &self.layers {
            push_blob512(reg, repo, l).await;
        }
    }
}

/// An OCI index over `children` (manifest bytes and platform architecture)
/// with digests of `digest`'s algorithm.
fn index_of(children: &[(&[u8], &str)], digest: fn(&[u8]) -> String) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(m, arch)| {
            json!({"mediaType": OCI_MANIFEST, "digest": digest(m), "size": m.len(),
                "platform": {"os": "linux", "architecture": arch}})
        })
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
        .expect("index json")
}

// ---------------------------------------------------------------------------
// References that are neither a tag nor a digest
// ---------------------------------------------------------------------------

#[tokio::test]
async fn manifest_references_that_are_neither_tag_nor_digest_are_not_found() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "conformance/invalid-ref";
    reg.push_image(repo, "v1", &Image::random(1, 32)).await;

    // v1.1.1 01_pull_test.go: nonexistentManifest = ".INVALID_MANIFEST_NAME";
    // "HEAD/GET nonexistent manifest should return 404".
    let r = reg.get_manifest(repo, ".INVALID_MANIFEST_NAME").await;
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);
    let m = message(&r);
    assert!(
        m.contains("not a valid tag") && m.contains(TAG_PATTERN),
        "the 404 still says why: {m}"
    );
    let r = reg
        .head("/v2/conformance/invalid-ref/manifests/.INVALID_MANIFEST_NAME")
        .await;
    r.expect_status(404);
    assert!(r.body.is_empty(), "HEAD has no body");
    let r = reg
        .delete("/v2/conformance/invalid-ref/manifests/.INVALID_MANIFEST_NAME")
        .await;
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);

    // Development suite TestManifestErrors: GET "sha256:baddigeststring"
    // expects 404 (or 400); berth answers 404 like a nonexistent tag.
    for bad in [
        "sha256:baddigeststring",
        "sha512:abcdef",
        "md5:0123456789abcdef",
    ] {
        let r = reg.get_manifest(repo, bad).await;
        r.expect_error(404, &["MANIFEST_UNKNOWN"]);
        assert!(
            message(&r).contains("not a valid digest"),
            "{}",
            r.describe()
        );
        reg.head(&format!("/v2/{repo}/manifests/{bad}"))
            .await
            .expect_status(404);
        reg.delete(&format!("/v2/{repo}/manifests/{bad}"))
            .await
            .expect_error(404, &["MANIFEST_UNKNOWN"]);
    }
    // The valid tag is still there.
    reg.get_manifest(repo, "v1").await.expect_status(200);
}

#[tokio::test]
async fn manifest_put_under_an_invalid_reference_stays_a_400() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "conformance/invalid-put";
    let img = Image::random(1, 16);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    let r = reg
        .put_manifest(repo, ".INVALID_MANIFEST_NAME", OCI_MANIFEST, &img.manifest)
        .await;
    r.expect_error(400, &["MANIFEST_INVALID"]);
    assert!(message(&r).contains(TAG_PATTERN), "{}", r.describe());
    // Development suite: PUT "sha256:baddigeststring" ExpectBadDigest (400).
    reg.put_manifest(repo, "sha256:baddigeststring", OCI_MANIFEST, &img.manifest)
        .await
        .expect_error(400, &["DIGEST_INVALID"]);
    // v1.1.1 "400 response body should contain OCI-conforming JSON message":
    // PUT "sha256:totallywrong" with an invalid manifest.
    let r = reg
        .put_manifest(
            repo,
            "sha256:totallywrong",
            OCI_MANIFEST,
            br#"{"schemaVersion": 2, "invalid": true}"#,
        )
        .await;
    r.expect_status(400);
    r.expect_error_envelope();
    reg.get_manifest(repo, &img.digest())
        .await
        .expect_status(404);
}

#[tokio::test]
async fn blob_references_that_are_not_digests_are_not_found() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "conformance/invalid-blob";
    reg.push_blob(repo, b"some blob").await;
    for bad in ["not-a-digest", "sha256:abc", "sha256:baddigeststring"] {
        let r = reg.get_blob(repo, bad).await;
        r.expect_error(404, &["BLOB_UNKNOWN"]);
        assert!(
            message(&r).contains("not a valid digest"),
            "{}",
            r.describe()
        );
        reg.head_blob(repo, bad).await.expect_status(404);
        reg.delete(&format!("/v2/{repo}/blobs/{bad}"))
            .await
            .expect_error(404, &["BLOB_UNKNOWN"]);
    }
    // The referrers API is the exception the spec names: "If the request is
    // invalid, such as a <digest> with an invalid syntax, a 400 Bad Request
    // MUST be returned" (it must never answer 404).
    reg.get(&format!("/v2/{repo}/referrers/not-a-digest"))
        .await
        .expect_error(400, &["DIGEST_INVALID"]);
}

// ---------------------------------------------------------------------------
// Tag parameters, sha256 and sha512
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sha512_index_pushed_with_tag_parameters_keeps_its_digest_everywhere() {
    // Development suite data "tag-param-sha512": genIndexFull with sha512,
    // every manifest pushed by digest with tag parameters
    // "tag-param-sha512-<i>", the index also under "tag-param-sha512".
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "conformance/tag-param-sha512";
    let amd = Image512::random("amd64");
    let arm = Image512::random("arm64");
    let index = index_of(
        &[(&amd.manifest, "amd64"), (&arm.manifest, "arm64")],
        sha512,
    );
    let index_digest = sha512(&index);
    amd.push_blobs(&reg, repo).await;
    arm.push_blobs(&reg, repo).await;

    let pushes: Vec<(&[u8], String, Vec<&str>, &str)> = vec![
        (
            &amd.manifest,
            amd.digest(),
            vec!["tag-param-sha512-0"],
            OCI_MANIFEST,
        ),
        (
            &arm.manifest,
            arm.digest(),
            vec!["tag-param-sha512-1"],
            OCI_MANIFEST,
        ),
        (
            &index,
            index_digest.clone(),
            vec!["tag-param-sha512", "tag-param-sha512-2"],
            OCI_INDEX,
        ),
    ];
    for (body, digest, tags, mt) in &pushes {
        let r = put_with_tags(&reg, repo, digest, tags, mt, body).await;
        r.expect_status(201);
        assert_eq!(
            r.header("Docker-Content-Digest").as_deref(),
            Some(digest.as_str())
        );
        let oci_tags = header_values(&r, "OCI-Tag");
        for t in tags {
            assert!(
                oci_tags.contains(&t.to_string()),
                "OCI-Tag lists {t}\n{}",
                r.describe()
            );
        }
        // The Location is a pullable manifest URL.
        let loc = reg.resolve_location(&r.must_header("Location"));
        let got = reg.req(Method::GET, &loc).header("Accept", mt).send().await;
        got.expect_status(200);
        assert_eq!(&got.body, body);
    }

    // TestList: every tag is listed.
    let listed = reg.tags(repo).await;
    for (_, _, tags, _) in &pushes {
        for t in tags {
            assert!(listed.contains(&t.to_string()), "{t} in {listed:?}");
        }
    }
    // TestHead / TestPull, by tag and by digest: the sha512 digest, the
    // media type, the length and the bytes.
    for (body, digest, tags, mt) in &pushes {
        let mut refs: Vec<&str> = tags.clone();
        refs.push(digest);
        for reference in refs {
            let r = reg.get_manifest(repo, reference).await;
            r.expect_status(200);
            assert_eq!(
                r.header("Docker-Content-Digest").as_deref(),
                Some(digest.as_str()),
                "GET {reference}"
            );
            assert_eq!(r.header("Content-Type").as_deref(), Some(*mt));
            assert_eq!(&r.body, body);
            let h = reg
                .req(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Accept", &format!("{OCI_INDEX}, {OCI_MANIFEST}"))
                .send()
                .await;
            h.expect_status(200);
            assert_eq!(
                h.header("Docker-Content-Digest").as_deref(),
                Some(digest.as_str()),
                "HEAD {reference}"
            );
            assert_eq!(h.header("Content-Length"), Some(body.len().to_string()));
        }
    }
    for blob in amd.layers.iter().chain(std::iter::once(&arm.config)) {
        let r = reg.get_blob(repo, &sha512(blob)).await;
        r.expect_status(200);
        assert_eq!(r.header("Docker-Content-Digest"), Some(sha512(blob)));
        assert_eq!(&r.body, blob);
    }

    // Referrers of the sha512 index: an artifact pushed by its sha512 digest.
    let subject = descriptor512(OCI_INDEX, &index);
    let artifact = referrer_manifest(
        &subject,
        Some("application/vnd.example.sig"),
        OCI_EMPTY,
        b"sig",
        &json!({"k": "v"}),
    );
    reg.push_blob(repo, EMPTY_JSON).await;
    reg.push_blob(repo, b"sig").await;
    let artifact_digest = sha512(&artifact);
    let r = put_with_tags(
        &reg,
        repo,
        &artifact_digest,
        &["signature"],
        OCI_MANIFEST,
        &artifact,
    )
    .await;
    r.expect_status(201);
    assert_eq!(
        r.header("OCI-Subject").as_deref(),
        Some(index_digest.as_str())
    );
    let refs = reg
        .get(&format!("/v2/{repo}/referrers/{index_digest}"))
        .await;
    refs.expect_status(200);
    let listed = refs.json();
    let entries = listed["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["digest"], artifact_digest.as_str());
    assert_eq!(entries[0]["size"], artifact.len());
    assert_eq!(entries[0]["artifactType"], "application/vnd.example.sig");
    let by_tag = reg.get_manifest(repo, "signature").await;
    assert_eq!(
        by_tag.header("Docker-Content-Digest"),
        Some(artifact_digest.clone())
    );

    // The audit log records the push under the sha512 digest and its tags.
    let api = reg.client.clone();
    let url = format!(
        "{}/api/v1/logs/repository?repository={repo}&operation=push",
        server.base_url()
    );
    let mut found = None;
    for _ in 0..100 {
        let v: Value = api
            .get(&url)
            .send()
            .await
            .expect("logs")
            .json()
            .await
            .expect("json");
        let events = v["events"].as_array().cloned().unwrap_or_default();
        if let Some(e) = events.iter().find(|e| e["digest"] == index_digest.as_str()) {
            found = Some(e.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let event = found.expect("push event of the index");
    assert_eq!(
        event["tag"], "tag-param-sha512,tag-param-sha512-2",
        "{event}"
    );
    assert_eq!(event["result"], 201);

    // TestDelete: tags, then manifests (reverse order), each gone at once.
    for (_, _, tags, _) in &pushes {
        for t in tags {
            reg.delete(&format!("/v2/{repo}/manifests/{t}"))
                .await
                .expect_status(202);
            reg.head(&format!("/v2/{repo}/manifests/{t}"))
                .await
                .expect_status(404);
        }
    }
    for (_, digest, _, _) in pushes.iter().rev() {
        reg.delete(&format!("/v2/{repo}/manifests/{digest}"))
            .await
            .expect_status(202);
        reg.head(&format!("/v2/{repo}/manifests/{digest}"))
            .await
            .expect_status(404);
    }
}

#[tokio::test]
async fn tag_parameters_with_sha256_and_invalid_tag_parameters() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "conformance/tag-param-sha256";
    let img = Image::random(1, 64);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    // An invalid tag parameter refuses the whole push.
    let r = put_with_tags(
        &reg,
        repo,
        &img.digest(),
        &["ok", "-bad"],
        OCI_MANIFEST,
        &img.manifest,
    )
    .await;
    r.expect_error(400, &["MANIFEST_INVALID"]);
    assert!(
        message(&r).contains("-bad") && message(&r).contains(TAG_PATTERN),
        "{}",
        r.describe()
    );
    reg.get_manifest(repo, &img.digest())
        .await
        .expect_status(404);
    assert!(reg.tags(repo).await.is_empty());

    let r = put_with_tags(
        &reg,
        repo,
        &img.digest(),
        &["a", "b", "a"],
        OCI_MANIFEST,
        &img.manifest,
    )
    .await;
    r.expect_status(201);
    let mut tags = header_values(&r, "OCI-Tag");
    tags.sort();
    tags.dedup();
    assert_eq!(tags, ["a", "b"]);
    let mut listed = reg.tags(repo).await;
    listed.sort();
    assert_eq!(listed, ["a", "b"]);
    for t in ["a", "b"] {
        assert_eq!(
            reg.get_manifest(repo, t)
                .await
                .header("Docker-Content-Digest"),
            Some(img.digest())
        );
    }
    // A push by tag takes tag parameters too; its digest is sha256.
    let r = put_with_tags(&reg, repo, "c", &["d"], OCI_MANIFEST, &img.manifest).await;
    r.expect_status(201);
    assert_eq!(r.header("Docker-Content-Digest"), Some(img.digest()));
    assert_eq!(header_values(&r, "OCI-Tag"), ["d"]);
    assert_eq!(reg.tags(repo).await.len(), 4);
}

// ---------------------------------------------------------------------------
// Sparse manifests
// ---------------------------------------------------------------------------

/// The development suite's "sparse" data: an image with one layer never
/// pushed, and an index whose arm64 child was never pushed. Returns
/// (image, index bytes, the pushed amd64 child, the absent child's digest).
async fn sparse_fixture(reg: &Registry, repo: &str) -> (Image, Vec<u8>, Image, String) {
    let image = Image::random(2, 64);
    reg.push_blob(repo, &image.config).await;
    reg.push_blob(repo, &image.layers[1]).await;
    let child = Image::random(1, 32);
    for b in child.blobs() {
        reg.push_blob(repo, b).await;
    }
    let absent = random_bytes(1024);
    let absent_digest = sha256(&absent);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child.digest(), "size": child.manifest.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": absent_digest, "size": 1024,
             "platform": {"os": "linux", "architecture": "arm64"}},
        ]
    }))
    .expect("index json");
    (image, index, child, absent_digest)
}

#[tokio::test]
async fn strict_validation_refuses_sparse_manifests_by_default() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "conformance/strict";
    let (image, index, child, absent) = sparse_fixture(&reg, repo).await;
    let r = reg
        .put_manifest(repo, "sparse-image", OCI_MANIFEST, &image.manifest)
        .await;
    let v = r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    assert_eq!(v["errors"][0]["detail"]["digest"], sha256(&image.layers[0]));
    reg.put_manifest_ok(repo, &child.digest(), OCI_MANIFEST, &child.manifest)
        .await;
    let r = reg
        .put_manifest(repo, "sparse-index", OCI_INDEX, &index)
        .await;
    let v = r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    assert_eq!(v["errors"][0]["detail"]["digest"], absent.as_str());
    assert!(!reg.tags(repo).await.contains(&"sparse-index".to_string()));
}

#[tokio::test]
async fn sparse_manifests_are_accepted_with_the_setting_and_absent_content_is_named() {
    let server = TestServer::start_with(&["--sparse-manifests"]).await;
    let reg = server.registry();
    let repo = "conformance/sparse";
    let (image, index, child, absent) = sparse_fixture(&reg, repo).await;
    reg.put_manifest_ok(repo, &child.digest(), OCI_MANIFEST, &child.manifest)
        .await;
    // TestPush of the sparse data: both accepted.
    let r = reg
        .put_manifest(repo, "sparse-image", OCI_MANIFEST, &image.manifest)
        .await;
    r.expect_status(201);
    assert_eq!(r.header("Docker-Content-Digest"), Some(image.digest()));
    let r = reg
        .put_manifest(repo, "sparse-index", OCI_INDEX, &index)
        .await;
    r.expect_status(201);
    assert_eq!(r.header("Docker-Content-Digest"), Some(sha256(&index)));
    // TestPull: the manifests and the pushed blobs are served.
    for (reference, body) in [("sparse-image", &image.manifest), ("sparse-index", &index)] {
        let got = reg.get_manifest(repo, reference).await;
        got.expect_status(200);
        assert_eq!(&got.body, body);
    }
    reg.get_blob(repo, &sha256(&image.layers[1]))
        .await
        .expect_status(200);

    // What was never pushed answers 404 and says so.
    let missing_layer = sha256(&image.layers[0]);
    let r = reg.get_blob(repo, &missing_layer).await;
    let v = r.expect_error(404, &["BLOB_UNKNOWN"]);
    let m = message(&r);
    assert!(
        m.contains("never pushed") && m.contains(&image.digest()),
        "{m}"
    );
    assert_eq!(v["errors"][0]["detail"]["digest"], missing_layer.as_str());
    reg.head_blob(repo, &missing_layer).await.expect_status(404);
    let r = reg.get_manifest(repo, &absent).await;
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);
    let m = message(&r);
    assert!(
        m.contains("never pushed") && m.contains(&sha256(&index)),
        "{m}"
    );
    reg.head(&format!("/v2/{repo}/manifests/{absent}"))
        .await
        .expect_status(404);
    // An unrelated missing blob gets the ordinary 404.
    let r = reg.get_blob(repo, &sha256(b"nobody")).await;
    r.expect_error(404, &["BLOB_UNKNOWN"]);
    assert!(!message(&r).contains("never pushed"));

    // The config is still required: clients read it to know the image.
    let no_config = Image::random(1, 8);
    reg.push_blob(repo, &no_config.layers[0]).await;
    let r = reg
        .put_manifest(repo, "no-config", OCI_MANIFEST, &no_config.manifest)
        .await;
    let v = r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    assert_eq!(
        v["errors"][0]["detail"]["digest"],
        sha256(&no_config.config)
    );

    // Once the layer is pushed it is served; deleting the manifest forgets it.
    reg.push_blob(repo, &image.layers[0]).await;
    reg.get_blob(repo, &missing_layer).await.expect_status(200);
    reg.delete(&format!("/v2/{repo}/manifests/{}", sha256(&index)))
        .await
        .expect_status(202);
    let r = reg.get_manifest(repo, &absent).await;
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);
    assert!(!message(&r).contains("never pushed"), "{}", r.describe());
}

#[tokio::test]
async fn index_platforms_name_the_children_that_must_be_present() {
    let server = TestServer::start_with_env(
        &["--sparse-manifests"],
        &[("BERTH_INDEX_PLATFORMS", "linux/amd64,linux/s390x")],
    )
    .await;
    let reg = server.registry();
    let repo = "conformance/index-platforms";
    let (_, index, child, _) = sparse_fixture(&reg, repo).await;
    // The amd64 child is named: without it the index is refused.
    let r = reg
        .put_manifest(repo, "sparse-index", OCI_INDEX, &index)
        .await;
    let v = r.expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    assert_eq!(v["errors"][0]["detail"]["digest"], child.digest().as_str());
    // With it, the absent arm64 child is fine.
    reg.put_manifest_ok(repo, &child.digest(), OCI_MANIFEST, &child.manifest)
        .await;
    reg.put_manifest_ok(repo, "sparse-index", OCI_INDEX, &index)
        .await;
}

#[test]
fn index_platforms_without_sparse_manifests_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(berth_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--index-platforms", "linux/amd64"])
        .env("BERTH_BOOTSTRAP_PASSWORD", OWNER_PASSWORD)
        .output()
        .expect("run berth serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sparse-manifests"), "{err}");
    let out = Command::new(berth_bin())
        .args(["serve", "--sparse-manifests", "--index-platforms", "amd64"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run berth serve");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("os/architecture"));
}

// ---------------------------------------------------------------------------
// Mount without `from`
// ---------------------------------------------------------------------------

/// `POST /v2/<repo>/blobs/uploads/?mount=<digest>` (no `from`) with `reg`.
async fn mount_anywhere(reg: &Registry, repo: &str, digest: &str) -> Reply {
    let url = with_query(
        &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
        "mount",
        digest,
    );
    reg.req(Method::POST, &url)
        .header("Content-Length", "0")
        .send()
        .await
}

#[tokio::test]
async fn mount_without_from_mounts_from_a_repository_the_caller_may_pull() {
    // Development suite "mount anonymous": push to repo2, mount into repo
    // without from; 201 expected (a 202 is reported as unsupported).
    let server = TestServer::start().await;
    let reg = server.registry();
    for use_sha512 in [false, true] {
        let data = random_bytes(512);
        let digest = if use_sha512 {
            push_blob512(&reg, "conformance/repo2", &data).await
        } else {
            reg.push_blob("conformance/repo2", &data).await
        };
        let r = mount_anywhere(&reg, "conformance/repo1", &digest).await;
        r.expect_status(201);
        assert_eq!(
            r.header("Docker-Content-Digest").as_deref(),
            Some(digest.as_str())
        );
        let loc = r.must_header("Location");
        assert_eq!(loc, format!("/v2/conformance/repo1/blobs/{digest}"));
        let got = reg.get(&reg.resolve_location(&loc)).await;
        got.expect_status(200);
        assert_eq!(got.body, data);
        // Deleting it from the source leaves the mounted link.
        reg.delete(&format!("/v2/conformance/repo2/blobs/{digest}"))
            .await
            .expect_status(202);
        reg.head_blob("conformance/repo1", &digest)
            .await
            .expect_status(200);
    }
    // A blob nobody holds: an ordinary upload session.
    let r = mount_anywhere(&reg, "conformance/repo1", &sha256(b"nowhere")).await;
    r.expect_status(202);
    assert!(r.must_header("Location").contains("/blobs/uploads/"));
    // An invalid digest falls back to an upload as well (spec: "If a mount
    // fails due to invalid repository or digest arguments, the registry
    // will fall back to the standard upload behavior").
    mount_anywhere(&reg, "conformance/repo1", "sha256:nope")
        .await
        .expect_status(202);
}

#[tokio::test]
async fn mount_without_from_never_reveals_a_blob_the_caller_cannot_read() {
    let server = TestServer::start().await;
    let owner = server.registry();
    let api = Api::owner(&server).await;
    let password = api.user("mounter").await;
    api.assign("mounter", "AcrPush", Some("repositories/mnt/target"))
        .await;
    let secret = random_bytes(256);
    let secret_digest = owner.push_blob("mnt/secret", &secret).await;
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("mounter:{password}"))
    };
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Basic {basic}").parse().expect("header"),
    );
    let mounter = Registry {
        base: server.base_url(),
        client: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client"),
    };
    // The mounter may not pull mnt/secret: the answer is exactly the one
    // for a blob that exists nowhere.
    let hidden = mount_anywhere(&mounter, "mnt/target", &secret_digest).await;
    let nowhere = mount_anywhere(&mounter, "mnt/target", &sha256(b"exists nowhere")).await;
    for r in [&hidden, &nowhere] {
        r.expect_status(202);
        assert!(r
            .must_header("Location")
            .contains("/v2/mnt/target/blobs/uploads/"));
        assert!(
            r.header("Docker-Content-Digest").is_none(),
            "{}",
            r.describe()
        );
    }
    let names = |r: &Reply| {
        let mut v: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
        v.retain(|k| k != "date" && k != "x-correlation-id");
        v.sort();
        v
    };
    assert_eq!(names(&hidden), names(&nowhere));
    owner
        .head_blob("mnt/target", &secret_digest)
        .await
        .expect_status(404);
    // The session it got is an ordinary upload: finish it with the bytes.
    let loc = mounter.resolve_location(&hidden.must_header("Location"));
    mounter
        .req(Method::PUT, &with_query(&loc, "digest", &secret_digest))
        .body(secret.clone())
        .send()
        .await
        .expect_status(201);

    // Pull on a repository holding a blob makes the mount happen.
    let shared = random_bytes(128);
    let shared_digest = owner.push_blob("mnt/shared", &shared).await;
    mount_anywhere(&mounter, "mnt/target", &shared_digest)
        .await
        .expect_status(202);
    api.assign("mounter", "AcrPull", Some("repositories/mnt/shared"))
        .await;
    let mut mounted = false;
    for _ in 0..40 {
        // Policy changes reach the request path at once in this process;
        // poll briefly anyway, as a replica would.
        if mount_anywhere(&mounter, "mnt/target", &shared_digest)
            .await
            .status
            == 201
        {
            mounted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(mounted, "mount from a readable repository");
    assert_eq!(
        mounter.get_blob("mnt/target", &shared_digest).await.body,
        shared
    );

    // A bearer token covers only its scope: a token for mnt/target alone
    // does not read mnt/shared, even though the identity may.
    let other = owner.push_blob("mnt/shared", &random_bytes(64)).await;
    let r = token_get(
        &server,
        "mounter",
        &password,
        &["repository:mnt/target:pull,push"],
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    let token = str_field(
        &r.json::<Value>().await.expect("token json"),
        "access_token",
    );
    let url = with_query(&owner.url("/v2/mnt/target/blobs/uploads/"), "mount", &other);
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
}

// ---------------------------------------------------------------------------
// skopeo round trips
// ---------------------------------------------------------------------------

fn skopeo_run(server: &TestServer, policy: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("skopeo");
    cmd.arg("--policy").arg(policy);
    let (sub, rest) = args.split_first().expect("subcommand");
    cmd.arg(sub);
    cmd.args(server.skopeo_auth_args());
    cmd.args(rest);
    cmd.output().expect("run skopeo")
}

#[track_caller]
fn skopeo_ok(server: &TestServer, policy: &Path, args: &[&str]) -> Output {
    let out = skopeo_run(server, policy, args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed\nstdout: {}\nstderr: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_tail(3000)
    );
    out
}

#[tokio::test]
async fn skopeo_round_trips_a_manifest_pushed_under_sha512() {
    // skopeo 1.9 (containers/image 5.23) verifies blobs against sha256 only
    // ("Download config.json digest sha256:… does not match expected
    // sha512:…") and digests the manifests it pushes with sha256, so it can
    // neither copy sha512 blobs nor push a sha512 manifest. What it can do:
    // read manifests by a sha512 tag or digest reference (`inspect --raw`),
    // and copy, by tag, an image whose manifest is addressed by sha512 and
    // whose blobs are sha256 (a copy by `@sha512:` reference fails in 1.9:
    // "Manifest does not match provided manifest digest", it checks with
    // sha256).
    if !skopeo_available() {
        return;
    }
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "conformance/skopeo-sha512";
    let tmp = tempfile::tempdir().expect("tmp");
    let policy = write_policy(tmp.path());
    let host = server.host();

    // All-sha512 image: skopeo reads its manifest by tag and by digest.
    let full = Image512::random("amd64");
    full.push_blobs(&reg, repo).await;
    put_with_tags(
        &reg,
        repo,
        &full.digest(),
        &["all-sha512"],
        OCI_MANIFEST,
        &full.manifest,
    )
    .await
    .expect_status(201);
    for reference in [":all-sha512".to_string(), format!("@{}", full.digest())] {
        let out = skopeo_ok(
            &server,
            &policy,
            &[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{host}/{repo}{reference}"),
            ],
        );
        assert!(out.stdout == full.manifest, "manifest bytes by {reference}");
    }

    // A manifest addressed by sha512 over sha256 blobs: copied out and back.
    let img = Image::random(2, 256);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    let digest = sha512(&img.manifest);
    put_with_tags(&reg, repo, &digest, &["v1"], OCI_MANIFEST, &img.manifest)
        .await
        .expect_status(201);
    let by_digest = format!("docker://{host}/{repo}@{digest}");
    let by_tag = format!("docker://{host}/{repo}:v1");
    let dir = tmp.path().join("out");
    let digestfile = tmp.path().join("digest");
    skopeo_ok(
        &server,
        &policy,
        &[
            "copy",
            "--src-tls-verify=false",
            "--digestfile",
            &digestfile.display().to_string(),
            &by_tag,
            &format!("dir:{}", dir.display()),
        ],
    );
    let copied = std::fs::read(dir.join("manifest.json")).expect("manifest.json");
    assert!(copied == img.manifest, "manifest copied byte for byte");
    for blob in img.blobs() {
        let hex = sha256(blob).trim_start_matches("sha256:").to_string();
        assert_eq!(std::fs::read(dir.join(&hex)).expect("blob file"), blob);
    }
    // skopeo 1.9 computes the digest it reports itself, with sha256.
    let written = std::fs::read_to_string(&digestfile).expect("digestfile");
    assert_eq!(written.trim(), sha256(&img.manifest), "skopeo's own digest");
    // Back into berth: skopeo pushes by tag, so the copy is sha256-addressed;
    // the source keeps its sha512 digest on every path.
    skopeo_ok(
        &server,
        &policy,
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("dir:{}", dir.display()),
            &format!("docker://{host}/{repo}-copy:v1"),
        ],
    );
    let back = reg.get_manifest(&format!("{repo}-copy"), "v1").await;
    back.expect_status(200);
    assert_eq!(back.body, img.manifest);
    assert_eq!(
        back.header("Docker-Content-Digest"),
        Some(sha256(&img.manifest))
    );
    for reference in ["v1", digest.as_str()] {
        let r = reg.get_manifest(repo, reference).await;
        assert_eq!(
            r.header("Docker-Content-Digest"),
            Some(digest.clone()),
            "{reference}"
        );
    }
    let raw = skopeo_ok(
        &server,
        &policy,
        &["inspect", "--tls-verify=false", "--raw", &by_digest],
    );
    assert!(raw.stdout == img.manifest);
}

#[tokio::test]
async fn skopeo_copies_a_sparse_index_with_index_only() {
    if !skopeo_available() {
        return;
    }
    let strict = TestServer::start().await;
    let sparse = TestServer::start_with(&["--sparse-manifests"]).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let policy = write_policy(tmp.path());
    let amd = Image::random(1, 64);
    let arm = Image::random(1, 64);
    let index = index_of(
        &[(&amd.manifest, "amd64"), (&arm.manifest, "arm64")],
        sha256,
    );
    let index_digest = sha256(&index);
    for server in [&strict, &sparse] {
        let reg = server.registry();
        reg.push_image("mirror/src", &amd.digest(), &amd).await;
        reg.push_image("mirror/src", &arm.digest(), &arm).await;
        reg.put_manifest_ok("mirror/src", "multi", OCI_INDEX, &index)
            .await;
    }
    let copy = |server: &TestServer| {
        let host = server.host();
        skopeo_run(
            server,
            &policy,
            &[
                "copy",
                "--multi-arch",
                "index-only",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{host}/mirror/src:multi"),
                &format!("docker://{host}/mirror/dst:multi"),
            ],
        )
    };
    // Strict validation refuses an index whose children were not pushed.
    let out = copy(&strict);
    assert!(
        !out.status.success(),
        "strict registry refuses the sparse index"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MANIFEST_BLOB_UNKNOWN")
            || String::from_utf8_lossy(&out.stderr).contains("manifest blob unknown")
            || String::from_utf8_lossy(&out.stderr).contains("not in repository"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With --sparse-manifests the index arrives under its digest.
    let out = copy(&sparse);
    assert!(
        out.status.success(),
        "skopeo copy --multi-arch index-only\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        sparse.log_tail(2000)
    );
    let reg = sparse.registry();
    let got = reg.get_manifest("mirror/dst", "multi").await;
    got.expect_status(200);
    assert_eq!(got.body, index);
    assert_eq!(
        got.header("Docker-Content-Digest"),
        Some(index_digest.clone())
    );
    let host = sparse.host();
    let raw = skopeo_ok(
        &sparse,
        &policy,
        &[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{host}/mirror/dst@{index_digest}"),
        ],
    );
    assert!(raw.stdout == index);
    let r = reg.get_manifest("mirror/dst", &amd.digest()).await;
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);
    assert!(message(&r).contains("never pushed"), "{}", r.describe());
}
