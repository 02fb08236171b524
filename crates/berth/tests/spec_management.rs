//! OCI distribution-spec v1.1 **Content Management** (deleting tags,
//! manifests and blobs) and berth's storage rule that blobs are visible
//! only in the repositories they were pushed to or mounted into. Mirrors
//! conformance/04_management_test.go.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn delete_tag_keeps_manifest_and_other_tags() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manage/tag";
    let img = Image::random(1, 64);
    reg.push_image(repo, "t1", &img).await;
    reg.put_manifest_ok(repo, "t2", OCI_MANIFEST, &img.manifest)
        .await;

    let r = reg.delete(&format!("/v2/{repo}/manifests/t1")).await;
    // spec: "Upon success, the registry MUST respond with a 202 Accepted code."
    r.expect_status(202);
    // "Once deleted, a GET to /v2/<name>/manifests/<tag> will return a 404."
    reg.get_manifest(repo, "t1")
        .await
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
    reg.head(&format!("/v2/{repo}/manifests/t1"))
        .await
        .expect_status(404);
    assert_eq!(reg.get_manifest(repo, "t2").await.body, img.manifest);
    assert_eq!(
        reg.get_manifest(repo, &img.digest()).await.body,
        img.manifest
    );
    assert_eq!(reg.tags(repo).await, vec!["t2".to_string()]);

    // Deleting it again: the tag is unknown.
    reg.delete(&format!("/v2/{repo}/manifests/t1"))
        .await
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
}

#[tokio::test]
async fn repository_whose_last_tag_was_deleted_lists_no_tags() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manage/last-tag";
    let img = Image::random(1, 8);
    reg.push_image(repo, "only", &img).await;
    reg.delete(&format!("/v2/{repo}/manifests/only"))
        .await
        .expect_status(202);
    // The repository still holds the (untagged) manifest, so it is found:
    // spec: "Assuming a repository is found, this request MUST return a
    // 200 OK response code. The list of tags MAY be empty".
    assert!(reg.tags(repo).await.is_empty());
}

#[tokio::test]
async fn delete_manifest_by_digest_removes_it_and_its_tags() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manage/manifest";
    let img = Image::random(2, 64);
    let other = Image::random(1, 64);
    reg.push_image(repo, "a", &img).await;
    reg.put_manifest_ok(repo, "b", OCI_MANIFEST, &img.manifest)
        .await;
    reg.push_image(repo, "other", &other).await;
    let before = reg.tags(repo).await.len();

    let r = reg
        .delete(&format!("/v2/{repo}/manifests/{}", img.digest()))
        .await;
    r.expect_status(202);
    // spec: "Once deleted, a GET to /v2/<name>/manifests/<digest> and any tag
    // pointing to that digest will return a 404."
    for reference in [img.digest(), "a".to_string(), "b".to_string()] {
        reg.get_manifest(repo, &reference)
            .await
            .expect_error(404, &["MANIFEST_UNKNOWN"]);
    }
    // conformance: "GET request to tags list should reflect manifest deletion"
    let tags = reg.tags(repo).await;
    assert!(tags.len() < before);
    assert_eq!(tags, vec!["other".to_string()]);
    assert_eq!(reg.get_manifest(repo, "other").await.body, other.manifest);

    // Deleting an unknown digest → 404.
    reg.delete(&format!("/v2/{repo}/manifests/{}", img.digest()))
        .await
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
}

#[tokio::test]
async fn delete_manifest_in_unknown_repository_is_404() {
    let server = TestServer::start().await;
    let reg = server.registry();
    // spec: "If the repository does not exist, the response MUST return 404 Not Found."
    reg.delete(&format!("/v2/manage/nothing/manifests/{}", sha256(b"m")))
        .await
        .expect_error(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
    reg.delete(&format!("/v2/manage/nothing/blobs/{}", sha256(b"b")))
        .await
        .expect_error(404, &["NAME_UNKNOWN", "BLOB_UNKNOWN"]);
}

#[tokio::test]
async fn deleted_index_leaves_children() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manage/index";
    let child = Image::random(1, 8);
    reg.push_image(repo, &child.digest(), &child).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child.digest(), "size": child.manifest.len()}],
    }))
    .expect("json");
    reg.put_manifest_ok(repo, "multi", OCI_INDEX, &index).await;
    reg.delete(&format!("/v2/{repo}/manifests/{}", sha256(&index)))
        .await
        .expect_status(202);
    reg.get_manifest(repo, "multi").await.expect_status(404);
    assert_eq!(
        reg.get_manifest(repo, &child.digest()).await.body,
        child.manifest
    );
}

#[tokio::test]
async fn delete_blob_then_404() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "manage/blob";
    let data = random_bytes(1000);
    let digest = reg.push_blob(repo, &data).await;
    let r = reg.delete(&format!("/v2/{repo}/blobs/{digest}")).await;
    // spec: "Upon success, the registry MUST respond with code 202 Accepted."
    r.expect_status(202);
    // conformance: "GET request to deleted blob URL should yield 404 response"
    reg.get_blob(repo, &digest)
        .await
        .expect_error(404, &["BLOB_UNKNOWN"]);
    reg.head_blob(repo, &digest).await.expect_status(404);
    // spec: "If the blob is not found, a 404 Not Found code MUST be returned."
    reg.delete(&format!("/v2/{repo}/blobs/{digest}"))
        .await
        .expect_error(404, &["BLOB_UNKNOWN"]);
    // And it can be pushed again afterwards.
    reg.push_blob(repo, &data).await;
    assert_eq!(reg.get_blob(repo, &digest).await.body, data);
}

#[tokio::test]
async fn deleting_a_blob_in_one_repository_leaves_it_in_others() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let data = random_bytes(2000);
    let digest = reg.push_blob("manage/one", &data).await;
    reg.push_blob("manage/two", &data).await;
    let mount = with_query(
        &with_query(
            &reg.url("/v2/manage/three/blobs/uploads/"),
            "mount",
            &digest,
        ),
        "from",
        "manage/one",
    );
    reg.req(Method::POST, &mount)
        .send()
        .await
        .expect_status(201);

    reg.delete(&format!("/v2/manage/one/blobs/{digest}"))
        .await
        .expect_status(202);
    reg.get_blob("manage/one", &digest).await.expect_status(404);
    for repo in ["manage/two", "manage/three"] {
        let got = reg.get_blob(repo, &digest).await;
        got.expect_status(200);
        assert_eq!(got.body, data, "{repo} still holds the blob");
    }
}

#[tokio::test]
async fn blobs_are_isolated_between_repositories() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let data = random_bytes(777);
    let digest = reg.push_blob("iso/owner", &data).await;
    reg.push_blob("iso/neighbour", b"the neighbour exists")
        .await;

    // ARCHITECTURE.md: "a repository can read only the blobs linked to it
    // (pushed there or mounted)".
    for repo in ["iso/neighbour", "iso/ghost"] {
        reg.get_blob(repo, &digest)
            .await
            .expect_error(404, &["BLOB_UNKNOWN", "NAME_UNKNOWN"]);
        reg.head_blob(repo, &digest).await.expect_status(404);
        let r = reg
            .req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .header("Range", "bytes=0-9")
            .send()
            .await;
        r.expect_status(404);
    }

    // Repositories nested under or above the owner are separate too.
    for repo in ["iso/owner/sub", "iso"] {
        reg.head_blob(repo, &digest).await.expect_status(404);
    }
    reg.push_blob("iso/owner/sub", b"child repo exists").await;
    reg.push_blob("iso", b"parent repo exists").await;
    for repo in ["iso/owner/sub", "iso"] {
        reg.head_blob(repo, &digest).await.expect_status(404);
    }

    // A manifest in the neighbour referencing the owner's blob is refused.
    let config = random_bytes(10);
    reg.push_blob("iso/neighbour", &config).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER, &data)],
    }))
    .expect("json");
    reg.put_manifest("iso/neighbour", "v1", OCI_MANIFEST, &manifest)
        .await
        .expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);

    // Manifests are per repository, too.
    let img = Image::random(1, 8);
    reg.push_image("iso/owner", "v1", &img).await;
    reg.get_manifest("iso/neighbour", &img.digest())
        .await
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
    // And an index in the neighbour cannot point at the owner's manifest.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": img.digest(), "size": img.manifest.len()}],
    }))
    .expect("json");
    reg.put_manifest("iso/neighbour", "idx", OCI_INDEX, &index)
        .await
        .expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    // The owner's manifest is not a blob in the neighbour either.
    reg.get_blob("iso/neighbour", &img.digest())
        .await
        .expect_status(404);
}

#[tokio::test]
async fn deleting_a_manifest_in_one_repository_leaves_it_in_others() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let img = Image::random(1, 100);
    reg.push_image("iso/m1", "v1", &img).await;
    reg.push_image("iso/m2", "v1", &img).await;
    reg.delete(&format!("/v2/iso/m1/manifests/{}", img.digest()))
        .await
        .expect_status(202);
    reg.get_manifest("iso/m1", "v1").await.expect_status(404);
    assert_eq!(reg.get_manifest("iso/m2", "v1").await.body, img.manifest);
    assert_eq!(
        reg.get_manifest("iso/m2", &img.digest()).await.body,
        img.manifest
    );
}
