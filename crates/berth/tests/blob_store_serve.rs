//! `berth serve --blob-store s3://…|azure://…` end to end: pushes and pulls
//! with the spec helpers and skopeo, ranges, a chunked upload whose POST,
//! PATCHes and PUT alternate between two replicas sharing the data
//! directory and the blob store, and `--blob-redirect`. The S3 server is
//! moto's, the Azure one Azurite, both started by the test on loopback.

mod common;

use std::process::Command;

use common::object_servers::{available, Kind, ObjectServer};
use common::skopeo::{skopeo_available, write_policy};
use common::*;
use reqwest::{Method, Url};

/// A berth server on a fresh object server of `kind` (or `None` when the
/// object server is not installed outside CI).
async fn serve_on(kind: Kind, args: &[&str]) -> Option<(ObjectServer, TestServer)> {
    if !available(kind) {
        return None;
    }
    let store = ObjectServer::start(kind).await;
    let env = store.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server =
        TestServer::start_on_blob_store(&store.blob_store_url("registry"), &env, args).await;
    Some((store, server))
}

/// An OCI image whose layers are `raw` gzip'd (media type tar+gzip).
fn gzip_image(raw: Vec<Vec<u8>>) -> Image {
    use std::io::Write;
    let layers: Vec<Vec<u8>> = raw
        .iter()
        .map(|r| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(r).expect("gzip");
            gz.finish().expect("gzip")
        })
        .collect();
    let mut image = Image::from_parts(random_bytes(300), layers);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &image.config),
        "layers": image.layers.iter().map(|l| descriptor(OCI_LAYER_GZIP, l)).collect::<Vec<_>>(),
    });
    image.manifest = serde_json::to_vec(&manifest).expect("manifest");
    image
}

/// Push an image, pull it back blob by blob (whole and by range), check
/// HEAD, and copy it with skopeo; secrets appear nowhere in the log.
async fn push_pull_round_trip(kind: Kind) {
    let Some((store, server)) = serve_on(kind, &[]).await else {
        return;
    };
    let reg = server.registry();
    let repo = "objects/app";
    // One layer larger than a part (8 MiB), one small; gzip'd, so skopeo
    // copies them as they are.
    let image = gzip_image(vec![random_bytes(9 * 1024 * 1024 + 17), random_bytes(5000)]);
    reg.push_image(repo, "v1", &image).await;
    let m = reg.get_manifest(repo, "v1").await;
    m.expect_status(200);
    assert_eq!(m.body, image.manifest);
    for blob in image.blobs() {
        let d = sha256(blob);
        let got = reg.get_blob(repo, &d).await;
        got.expect_status(200);
        assert!(got.body == blob, "blob {d} differs");
        let head = reg.head_blob(repo, &d).await;
        head.expect_status(200);
        assert_eq!(head.must_header("Content-Length"), blob.len().to_string());
    }
    let big = &image.layers[0];
    let d = sha256(big);
    let part = reg
        .req(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
        .header("Range", "bytes=8388600-8388615")
        .send()
        .await;
    part.expect_status(206);
    assert_eq!(part.body, &big[8_388_600..8_388_616]);
    assert_eq!(
        part.must_header("Content-Range"),
        format!("bytes 8388600-8388615/{}", big.len())
    );
    let tail = reg
        .req(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
        .header("Range", "bytes=-10")
        .send()
        .await;
    tail.expect_status(206);
    assert_eq!(tail.body, &big[big.len() - 10..]);
    let none = reg
        .req(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
        .header("Range", &format!("bytes={}-", big.len()))
        .send()
        .await;
    none.expect_status(416);
    // A client that goes away mid-pull: the server stays healthy.
    {
        let resp = server
            .client()
            .get(reg.url(&format!("/v2/{repo}/blobs/{d}")))
            .send()
            .await
            .expect("start pull");
        assert_eq!(resp.status(), 200);
        drop(resp);
    }
    let again = reg.get_blob(repo, &d).await;
    again.expect_status(200);
    assert!(again.body == *big);

    if skopeo_available() {
        let dir = tempfile::tempdir().expect("tmp");
        let policy = write_policy(dir.path());
        let src = format!("docker://{}/{repo}:v1", server.host());
        let dst = format!("docker://{}/objects/copy:v1", server.host());
        let mut cmd = Command::new("skopeo");
        cmd.arg("--policy").arg(&policy).arg("copy");
        cmd.args(server.skopeo_auth_args());
        cmd.args([
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &src,
            &dst,
        ]);
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log_tail(3000)
        );
        let copied = reg.get_manifest("objects/copy", "v1").await;
        copied.expect_status(200);
        // skopeo may re-serialise the manifest; the content must be the same.
        let v = copied.json();
        let layers: Vec<String> = v["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().unwrap_or_default().to_string())
            .collect();
        let want: Vec<String> = image.layers.iter().map(|l| sha256(l)).collect();
        assert_eq!(layers, want, "same layer digests after skopeo");
        assert_eq!(v["config"]["digest"], sha256(&image.config).as_str());
        let layer = reg.get_blob("objects/copy", &d).await;
        layer.expect_status(200);
        assert!(layer.body == *big);
    }

    let log = server.log_tail(1_000_000);
    for secret in store.env().values() {
        if secret.len() > 8 {
            assert!(
                !log.contains(secret.as_str()),
                "a credential appears in the server log"
            );
        }
    }
    assert!(log.contains(&store.bucket), "the log names the blob store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_push_pull_ranges_and_skopeo() {
    push_pull_round_trip(Kind::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_push_pull_ranges_and_skopeo() {
    push_pull_round_trip(Kind::Azure).await;
}

/// POST on A, PATCHes alternating B, A, B (one over a part, two under
/// S3's 5 MiB minimum), PUT on A; B serves the blob.
async fn chunked_upload_across_replicas(kind: Kind) {
    let Some((_store, a)) = serve_on(kind, &[]).await else {
        return;
    };
    let b = TestServer::start_replica_of(&a).await;
    let (ra, rb) = (a.registry(), b.registry());
    let repo = "objects/replicas";
    let data = random_bytes(9 * 1024 * 1024 + 2 * 1024 * 1024 + 1024 * 1024 + 77);
    let digest = sha256(&data);
    let loc = ra.start_upload(repo).await;
    let path = Url::parse(&loc).expect("location").path().to_string();
    let cuts = [0, 9 * 1024 * 1024 + 5, 11 * 1024 * 1024, data.len() - 77];
    let mut next = path.clone();
    for (i, w) in cuts.windows(2).enumerate() {
        let (from, to) = (w[0], w[1]);
        let replica = if i % 2 == 0 { &rb } else { &ra };
        let r = replica
            .req(Method::PATCH, &next)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", &format!("{from}-{}", to - 1))
            .body(data[from..to].to_vec())
            .send()
            .await;
        r.expect_status(202);
        assert_eq!(r.must_header("Range"), format!("0-{}", to - 1));
        next = Url::parse(&replica.resolve_location(&r.must_header("Location")))
            .expect("location")
            .path()
            .to_string();
    }
    let status = rb.get(&next).await;
    status.expect_status(204);
    assert_eq!(status.must_header("Range"), format!("0-{}", cuts[3] - 1));
    let put = ra
        .req(Method::PUT, &with_query(&ra.url(&next), "digest", &digest))
        .header("Content-Type", "application/octet-stream")
        .body(data[cuts[3]..].to_vec())
        .send()
        .await;
    put.expect_status(201);
    let got = rb.get_blob(repo, &digest).await;
    got.expect_status(200);
    assert!(digest_matches(&digest, &got.body) && got.body == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_chunked_upload_alternating_between_two_replicas() {
    chunked_upload_across_replicas(Kind::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_chunked_upload_alternating_between_two_replicas() {
    chunked_upload_across_replicas(Kind::Azure).await;
}

/// `--blob-redirect`: GET answers 307 to a presigned URL that serves the
/// bytes without berth's credentials; HEAD still answers itself; refused
/// callers get no URL; the file backend never redirects.
async fn redirect(kind: Kind) {
    let Some((store, server)) = serve_on(kind, &["--blob-redirect"]).await else {
        return;
    };
    let reg = server.registry();
    let repo = "objects/redirect";
    let data = random_bytes(70_000);
    let d = reg.push_blob(repo, &data).await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(server.auth_headers())
        .build()
        .expect("client");
    let url = reg.url(&format!("/v2/{repo}/blobs/{d}"));
    let r = no_follow.get(&url).send().await.expect("get");
    assert_eq!(r.status(), 307);
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_string();
    assert!(
        location.starts_with(&store.endpoint()),
        "redirect goes to the store: {location}"
    );
    let plain = reqwest::Client::new();
    let fetched = plain.get(&location).send().await.expect("presigned GET");
    assert_eq!(fetched.status(), 200, "presigned URL serves the blob");
    assert!(fetched.bytes().await.expect("body") == data);
    let ranged = plain
        .get(&location)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .expect("ranged presigned GET");
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.expect("body"), &data[10..20]);
    let head = reg.head_blob(repo, &d).await;
    head.expect_status(200);
    assert_eq!(head.must_header("Content-Length"), data.len().to_string());
    // Without credentials: the usual 401, no URL.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(&url)
        .send()
        .await
        .expect("anonymous get");
    assert_eq!(anon.status(), 401);
    assert!(anon.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_blob_redirect_to_a_presigned_url() {
    redirect(Kind::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_redirect_to_a_presigned_url() {
    redirect(Kind::Azure).await;
}

#[tokio::test]
async fn file_backend_never_redirects() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("file://{}", dir.path().join("blobs").display());
    let server = TestServer::start_with(&["--blob-store", &url, "--blob-redirect"]).await;
    let reg = server.registry();
    let data = random_bytes(1000);
    let d = reg.push_blob("files/app", &data).await;
    let got = reg.get_blob("files/app", &d).await;
    got.expect_status(200);
    assert_eq!(got.body, data);
    let hex = d.trim_start_matches("sha256:");
    assert!(
        dir.path()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .is_file(),
        "the blob lives under the file:// directory"
    );
}

#[tokio::test]
async fn a_bad_blob_store_url_is_refused_without_echoing_secrets() {
    let out = Command::new(berth_bin())
        .args(["serve", "--blob-store", "s3://AKIAXX:supersecret@bucket/x"])
        .output()
        .expect("run berth");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must not carry credentials"), "{err}");
    assert!(!err.contains("supersecret"), "{err}");
}
