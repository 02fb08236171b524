//! Repository names: the spec's grammar
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
//! NAME_INVALID for names outside it, NAME_UNKNOWN for repositories that do
//! not exist, and names that look like API keywords.

mod common;

use common::*;
use reqwest::Method;

const INVALID_NAMES: &[&str] = &[
    "Upper",
    "upper/Case",
    "a//b",
    "-lead",
    "trail-",
    "a..b",
    "a___b",
    "a/.b",
    "_a",
    "a_",
    "sp%20ace",
    "caf%C3%A9",
    "a/-b",
    "a/b/",
];

#[tokio::test]
async fn invalid_names_are_name_invalid_on_every_endpoint() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let digest = sha256(b"x");
    let img = Image::random(1, 4);
    for name in INVALID_NAMES {
        // spec: "<name> MUST match the following regular expression"; the
        // code for a name outside it is NAME_INVALID ("invalid repository name").
        let checks = vec![
            reg.req(Method::POST, &format!("/v2/{name}/blobs/uploads/"))
                .send()
                .await,
            reg.req(
                Method::POST,
                &with_query(
                    &reg.url(&format!("/v2/{name}/blobs/uploads/")),
                    "digest",
                    &digest,
                ),
            )
            .body(b"x".to_vec())
            .send()
            .await,
            reg.put_manifest(name, "v1", OCI_MANIFEST, &img.manifest)
                .await,
            reg.get_manifest(name, "v1").await,
            reg.get_blob(name, &digest).await,
            reg.get(&format!("/v2/{name}/tags/list")).await,
            reg.get(&format!("/v2/{name}/referrers/{digest}")).await,
            reg.delete(&format!("/v2/{name}/manifests/{}", img.digest()))
                .await,
            reg.delete(&format!("/v2/{name}/blobs/{digest}")).await,
        ];
        for r in checks {
            // Names with a trailing slash may route nowhere at all (404);
            // everything else must be refused as NAME_INVALID.
            if name.ends_with('/') && r.status.as_u16() == 404 {
                continue;
            }
            r.expect_error(400, &["NAME_INVALID"]);
        }
    }
}

#[tokio::test]
async fn too_long_names_are_refused_not_crashed() {
    let server = TestServer::start().await;
    let reg = server.registry();
    // The spec only notes that clients cap host + "/" + name at 255
    // characters; a name of several KiB must be refused cleanly.
    let long = vec!["abcdefgh"; 600].join("/");
    let r = reg
        .req(Method::POST, &format!("/v2/{long}/blobs/uploads/"))
        .send()
        .await;
    assert!(r.status.is_client_error(), "{}", r.describe());
    if r.status.as_u16() != 414 && r.status.as_u16() != 431 {
        r.expect_error(400, &["NAME_INVALID"]);
    }
}

#[tokio::test]
async fn valid_edge_case_names_work() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let long_component = "a".repeat(200);
    let names = [
        "a",
        "0",
        "a/b/c/d/e/f",
        "a__b",
        "a---b",
        "a.b_c-d",
        "x9/y8.z7",
        long_component.as_str(),
    ];
    for name in names {
        let img = Image::random(1, 16);
        reg.push_image(name, "v1", &img).await;
        let got = reg.get_manifest(name, "v1").await;
        got.expect_status(200);
        assert_eq!(got.body, img.manifest, "repo {name}");
        assert_eq!(reg.tags(name).await, vec!["v1".to_string()]);
    }
}

#[tokio::test]
async fn names_that_look_like_api_keywords_route_correctly() {
    let server = TestServer::start().await;
    let reg = server.registry();
    // Repository names are matched from the right, so these are all legal
    // repositories and must not be confused with endpoints.
    let names = [
        "manifests",
        "blobs",
        "tags",
        "referrers",
        "uploads",
        "v2",
        "blobs/uploads",
        "tags/list",
        "x/manifests/y",
        "foo/blobs/bar",
        "a/referrers",
        "catalog/x",
    ];
    for name in names {
        let img = Image::random(1, 16);
        reg.push_image(name, "v1", &img).await;
        let got = reg.get_manifest(name, "v1").await;
        got.expect_status(200);
        assert_eq!(got.body, img.manifest, "repo {name}");
        let blob = reg.get_blob(name, &sha256(&img.layers[0])).await;
        blob.expect_status(200);
        assert_eq!(blob.body, img.layers[0], "blob in repo {name}");
        assert_eq!(reg.tags(name).await, vec!["v1".to_string()], "repo {name}");
        let refs = reg
            .get(&format!("/v2/{name}/referrers/{}", img.digest()))
            .await;
        refs.expect_status(200);
    }
}

#[tokio::test]
async fn unknown_repository_tags_list_is_name_unknown() {
    let server = TestServer::start().await;
    let reg = server.registry();
    reg.get("/v2/never/pushed/tags/list")
        .await
        .expect_error(404, &["NAME_UNKNOWN"]);
}
