//! Interop with a real Rust client: the `oci-client` crate pushes and pulls
//! images over plain HTTP (chunked and monolithic blob pushes), lists tags,
//! mounts a blob and reads referrers.

mod common;

use reqwest::Method;

use std::collections::BTreeMap;

use common::*;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest, IMAGE_MANIFEST_MEDIA_TYPE};
use oci_client::{Client, Reference};

fn client(monolithic: bool) -> Client {
    // oci-client is built with `rustls-tls-no-provider`; berth's tests speak
    // plain HTTP, but reqwest still wants a provider installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        use_monolithic_push: monolithic,
        ..Default::default()
    })
}

fn reference(server: &TestServer, repo_tag: &str) -> Reference {
    format!("{}/{repo_tag}", server.host())
        .parse()
        .expect("valid reference")
}

async fn push_and_pull(monolithic: bool) {
    let server = TestServer::start().await;
    let auth = server.oci_client_auth();
    let c = client(monolithic);
    let repo = if monolithic {
        "interop/rust-mono"
    } else {
        "interop/rust-chunked"
    };
    let image_ref = reference(&server, &format!("{repo}:v1"));

    // Layers big enough that the chunked path sends several PATCHes.
    let layers = vec![
        ImageLayer::new(
            random_bytes(3 * 1024 * 1024 + 5),
            "application/vnd.oci.image.layer.v1.tar".to_string(),
            None,
        ),
        ImageLayer::new(
            random_bytes(1000),
            "application/vnd.oci.image.layer.v1.tar".to_string(),
            Some(BTreeMap::from([(
                "org.example.layer".to_string(),
                "two".to_string(),
            )])),
        ),
    ];
    let config = Config::new(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
        "application/vnd.oci.image.config.v1+json".to_string(),
        None,
    );
    let pushed = c
        .push(&image_ref, &layers, config.clone(), &auth, None)
        .await
        .unwrap_or_else(|e| panic!("oci-client push failed: {e:?}\n{}", server.log_tail(3000)));
    assert!(
        pushed.manifest_url.contains(repo),
        "{}",
        pushed.manifest_url
    );

    // What berth stored, over raw HTTP.
    let reg = server.registry();
    let raw = reg.get_manifest(repo, "v1").await;
    raw.expect_status(200);
    let digest = sha256(&raw.body);

    let pulled = client(false)
        .pull(
            &image_ref,
            &auth,
            vec!["application/vnd.oci.image.layer.v1.tar"],
        )
        .await
        .unwrap_or_else(|e| panic!("oci-client pull failed: {e:?}"));
    assert_eq!(pulled.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(pulled.layers.len(), layers.len());
    // oci-client downloads layers concurrently and returns them in
    // completion order, so match them up by digest.
    for want in &layers {
        let got = pulled
            .layers
            .iter()
            .find(|l| l.sha256_digest() == want.sha256_digest())
            .unwrap_or_else(|| panic!("layer {} missing from the pull", want.sha256_digest()));
        assert_eq!(got.media_type, want.media_type);
    }
    assert_eq!(pulled.config.data, config.data);

    // The client's digest lookup agrees with berth's header.
    let d = c
        .fetch_manifest_digest(&image_ref, &auth)
        .await
        .expect("fetch_manifest_digest");
    assert_eq!(d, digest);

    let tags = c
        .list_tags(&image_ref, &auth, None, None)
        .await
        .expect("list_tags");
    assert_eq!(tags.name, repo);
    assert_eq!(tags.tags, vec!["v1".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_client_push_pull_chunked() {
    push_and_pull(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_client_push_pull_monolithic() {
    push_and_pull(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_client_mount_and_referrers() {
    let server = TestServer::start().await;
    let auth = server.oci_client_auth();
    let c = client(false);
    let src = reference(&server, "interop/src:v1");
    let layer = ImageLayer::new(
        random_bytes(4096),
        "application/vnd.oci.image.layer.v1.tar".to_string(),
        None,
    );
    let config = Config::new(
        b"{}".to_vec(),
        "application/vnd.oci.image.config.v1+json".to_string(),
        None,
    );
    c.push(
        &src,
        std::slice::from_ref(&layer),
        config.clone(),
        &auth,
        None,
    )
    .await
    .expect("push source image");
    let subject_digest = c
        .fetch_manifest_digest(&src, &auth)
        .await
        .expect("subject digest");
    let reg = server.registry();
    let subject_size = reg.get_manifest("interop/src", "v1").await.body.len();

    // Mount the layer into another repository.
    let dst = reference(&server, "interop/dst:v1");
    let layer_digest = sha256(&layer.data);
    // oci-client authenticates a mount for the target repository only, so
    // its bearer token does not cover pull on the source: berth then answers
    // the spec's 202 fallback instead of mounting (a token scoped to one
    // repository must not read another). A mount whose token covers both
    // repositories, as docker requests it, succeeds:
    match c.mount_blob(&dst, &src, &layer_digest).await {
        Ok(()) => {}
        Err(e) => assert!(
            e.to_string().contains("202"),
            "mount without pull on the source must fall back to 202, got {e}"
        ),
    }
    let mounted = reg
        .req(
            Method::POST,
            &format!("/v2/interop/dst/blobs/uploads/?mount={layer_digest}&from=interop/src"),
        )
        .send()
        .await;
    mounted.expect_status(201);
    let got = reg.get_blob("interop/dst", &layer_digest).await;
    got.expect_status(200);
    assert!(got.body == layer.data.as_ref());

    // Attach a referrer (manifest with `subject`) and read it back through
    // the client's referrers call.
    let art_layer = ImageLayer::new(
        b"signature bytes".to_vec(),
        "application/vnd.example.sig".to_string(),
        None,
    );
    let empty = Config::new(b"{}".to_vec(), OCI_EMPTY.to_string(), None);
    let mut manifest = OciImageManifest::build(std::slice::from_ref(&art_layer), &empty, None);
    manifest.media_type = Some(IMAGE_MANIFEST_MEDIA_TYPE.to_string());
    manifest.artifact_type = Some("application/vnd.example.sig.v1".to_string());
    manifest.subject = Some(OciDescriptor {
        media_type: IMAGE_MANIFEST_MEDIA_TYPE.to_string(),
        digest: subject_digest.clone(),
        size: subject_size as i64,
        ..Default::default()
    });
    manifest.annotations = Some(BTreeMap::from([(
        "org.example.kind".to_string(),
        "signature".to_string(),
    )]));
    let art_ref = reference(&server, "interop/src:sig");
    c.push(&art_ref, &[art_layer], empty, &auth, Some(manifest))
        .await
        .expect("push referrer");

    let subject_ref = reference(&server, &format!("interop/src@{subject_digest}"));
    let idx = c
        .pull_referrers(&subject_ref, None)
        .await
        .expect("pull_referrers");
    assert_eq!(idx.manifests.len(), 1, "{:?}", idx.manifests);
    let d = &idx.manifests[0];
    let sig = reg.get_manifest("interop/src", "sig").await;
    sig.expect_status(200);
    assert_eq!(d.digest, sha256(&sig.body));
    assert_eq!(d.media_type, IMAGE_MANIFEST_MEDIA_TYPE);
    assert_eq!(
        d.annotations
            .as_ref()
            .and_then(|a| a.get("org.example.kind"))
            .map(String::as_str),
        Some("signature")
    );
    let filtered = c
        .pull_referrers(&subject_ref, Some("application/vnd.example.other"))
        .await
        .expect("pull_referrers filtered");
    assert!(filtered.manifests.is_empty());
    // oci-client's index entries drop artifactType; check it over raw HTTP.
    let raw = reg
        .get(&format!("/v2/interop/src/referrers/{subject_digest}"))
        .await;
    raw.expect_status(200);
    assert_eq!(
        raw.json()["manifests"][0]["artifactType"],
        serde_json::json!("application/vnd.example.sig.v1")
    );
}
