//! Interop with skopeo: OCI image layouts built on disk by the test (a
//! multi-layer image, a two-platform index) are copied into berth and back
//! out with identical digests; a Docker schema 2 conversion round-trips
//! byte-exact; `list-tags` and `delete` work.
//!
//! Skipped with a printed notice when `skopeo` is not on PATH — except under
//! CI (`CI` set), where a missing skopeo is a failure: CI installs it.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::skopeo::{skopeo_available, write_policy};
use common::*;
use serde_json::{json, Value};

/// Run skopeo with a permissive signature policy; assert success.
fn skopeo(server: &TestServer, policy: &Path, args: &[&str]) -> Output {
    let out = skopeo_raw(server, policy, args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed ({})\nstdout: {}\nstderr: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_tail(3000)
    );
    out
}

fn skopeo_raw(server: &TestServer, policy: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("skopeo");
    cmd.arg("--policy").arg(policy);
    // Subcommand first, then its flags (auth flags from the harness).
    let (sub, rest) = args.split_first().expect("subcommand");
    cmd.arg(sub);
    for a in server.skopeo_auth_args() {
        cmd.arg(a);
    }
    cmd.args(rest);
    cmd.output().expect("run skopeo")
}

/// An OCI image layout directory under construction.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(dir: PathBuf) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir blobs");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        Layout { dir }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir.join("blobs/sha256").join(hex)
    }

    fn write_blob(&self, data: &[u8]) -> String {
        let d = sha256(data);
        std::fs::write(self.blob_path(&d), data).expect("write blob");
        d
    }

    /// Write index.json naming `entries` (descriptor, tag).
    fn write_index(&self, entries: &[(Value, &str)]) {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(d, tag)| {
                let mut d = d.clone();
                d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("write index.json");
    }

    /// The descriptor index.json gives `tag`.
    fn lookup(&self, tag: &str) -> Value {
        let index: Value = serde_json::from_slice(
            &std::fs::read(self.dir.join("index.json")).expect("read index.json"),
        )
        .expect("index.json is JSON");
        index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == json!(tag))
            .cloned()
            .unwrap_or_else(|| panic!("tag {tag} not in {index}"))
    }

    fn read_blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.blob_path(digest))
            .unwrap_or_else(|e| panic!("blob {digest} missing from layout: {e}"))
    }
}

/// A gzip'd tar with a few random files; returns (gz bytes, diff_id).
fn make_layer(n: usize) -> (Vec<u8>, String) {
    let mut tar_bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar_bytes);
        for i in 0..3 {
            let content = random_bytes(1000 + 700 * i + n);
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            b.append_data(&mut h, format!("layer{n}/file{i}.bin"), content.as_slice())
                .expect("tar append");
        }
        b.finish().expect("tar finish");
    }
    let diff_id = sha256(&tar_bytes);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes).expect("gzip");
    (gz.finish().expect("gzip finish"), diff_id)
}

/// Write a `layers`-layer image for `arch` into `layout`; returns
/// (manifest bytes, descriptor).
fn make_image(layout: &Layout, layers: usize, arch: &str) -> (Vec<u8>, Value) {
    let mut layer_descs = vec![];
    let mut diff_ids = vec![];
    for i in 0..layers {
        let (gz, diff_id) = make_layer(i);
        layout.write_blob(&gz);
        layer_descs.push(descriptor(OCI_LAYER_GZIP, &gz));
        diff_ids.push(diff_id);
    }
    let config = serde_json::to_vec(&json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Labels": {"berth.test": random_suffix()}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": (0..layers).map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")})).collect::<Vec<_>>(),
    }))
    .expect("config json");
    layout.write_blob(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": layer_descs,
        "annotations": {"org.opencontainers.image.title": format!("berth test {arch}")},
    }))
    .expect("manifest json");
    layout.write_blob(&manifest);
    let desc = descriptor(OCI_MANIFEST, &manifest);
    (manifest, desc)
}

fn blobs_of(manifest: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(manifest).expect("manifest json");
    let mut out = vec![v["config"]["digest"].as_str().expect("config").to_string()];
    for l in v["layers"].as_array().expect("layers") {
        out.push(l["digest"].as_str().expect("layer").to_string());
    }
    out
}

#[tokio::test]
async fn skopeo_multi_layer_image_round_trip_list_tags_delete() {
    if !skopeo_available() {
        return;
    }
    let server = TestServer::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let policy = write_policy(tmp.path());
    let src = Layout::new(tmp.path().join("src"));
    let (manifest, desc) = make_image(&src, 3, "amd64");
    src.write_index(&[(desc.clone(), "v1")]);
    let digest = sha256(&manifest);
    let host = server.host();
    let dest = format!("docker://{host}/interop/skopeo-image:v1");

    skopeo(
        &server,
        &policy,
        &[
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &format!("oci:{}:v1", src.dir.display()),
            &dest,
        ],
    );

    // berth serves exactly the bytes that were pushed.
    let raw = skopeo(
        &server,
        &policy,
        &["inspect", "--tls-verify=false", "--raw", &dest],
    );
    assert!(
        raw.stdout == manifest,
        "skopeo inspect --raw returns the pushed bytes"
    );
    let reg = server.registry();
    let r = reg.get_manifest("interop/skopeo-image", "v1").await;
    r.expect_status(200);
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest.clone()));
    assert_eq!(r.header("Content-Type").as_deref(), Some(OCI_MANIFEST));

    // And back out into a fresh layout: same digest, same blobs.
    let out = Layout::new(tmp.path().join("out"));
    skopeo(
        &server,
        &policy,
        &[
            "copy",
            "--src-tls-verify=false",
            "--preserve-digests",
            &dest,
            &format!("oci:{}:v1", out.dir.display()),
        ],
    );
    let back = out.lookup("v1");
    assert_eq!(
        back["digest"],
        json!(digest),
        "manifest digest survives the round trip"
    );
    assert!(out.read_blob(&digest) == manifest);
    for b in blobs_of(&manifest) {
        let bytes = out.read_blob(&b);
        assert_eq!(sha256(&bytes), b);
        assert!(bytes == src.read_blob(&b), "blob {b} identical");
    }

    // A second tag through a registry-to-registry copy.
    skopeo(
        &server,
        &policy,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &dest,
            &format!("docker://{host}/interop/skopeo-image:v2"),
        ],
    );
    let tags = skopeo(
        &server,
        &policy,
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{host}/interop/skopeo-image"),
        ],
    );
    let v: Value = serde_json::from_slice(&tags.stdout).expect("list-tags JSON");
    assert_eq!(v["Tags"], json!(["v1", "v2"]), "{v}");

    // skopeo delete resolves the tag and deletes the manifest by digest,
    // which (spec) takes every tag pointing at it along.
    skopeo(
        &server,
        &policy,
        &[
            "delete",
            "--tls-verify=false",
            &format!("docker://{host}/interop/skopeo-image:v2"),
        ],
    );
    let gone = skopeo_raw(
        &server,
        &policy,
        &["inspect", "--tls-verify=false", "--raw", &dest],
    );
    assert!(
        !gone.status.success(),
        "v1 must be gone after deleting its manifest"
    );
    reg.get_manifest("interop/skopeo-image", &digest)
        .await
        .expect_status(404);
    assert!(reg.tags("interop/skopeo-image").await.is_empty());
}

#[tokio::test]
async fn skopeo_multi_arch_index_round_trip() {
    if !skopeo_available() {
        return;
    }
    let server = TestServer::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let policy = write_policy(tmp.path());
    let src = Layout::new(tmp.path().join("src"));
    let (m_amd, d_amd) = make_image(&src, 2, "amd64");
    let (m_arm, d_arm) = make_image(&src, 2, "arm64");
    let mut e_amd = d_amd.clone();
    e_amd["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let mut e_arm = d_arm.clone();
    e_arm["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [e_amd, e_arm],
    }))
    .expect("index json");
    src.write_blob(&index);
    src.write_index(&[(descriptor(OCI_INDEX, &index), "multi")]);
    let index_digest = sha256(&index);
    let host = server.host();
    let dest = format!("docker://{host}/interop/skopeo-multi:multi");

    skopeo(
        &server,
        &policy,
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &format!("oci:{}:multi", src.dir.display()),
            &dest,
        ],
    );
    let raw = skopeo(
        &server,
        &policy,
        &["inspect", "--tls-verify=false", "--raw", &dest],
    );
    assert!(raw.stdout == index, "index bytes preserved");
    for (m, arch) in [(&m_amd, "amd64"), (&m_arm, "arm64")] {
        let child = skopeo(
            &server,
            &policy,
            &[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{host}/interop/skopeo-multi@{}", sha256(m)),
            ],
        );
        assert!(child.stdout == *m, "{arch} manifest bytes preserved");
    }
    let reg = server.registry();
    let r = reg.get_manifest("interop/skopeo-multi", "multi").await;
    assert_eq!(r.header("Content-Type").as_deref(), Some(OCI_INDEX));
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(index_digest.clone())
    );

    let out = Layout::new(tmp.path().join("out"));
    skopeo(
        &server,
        &policy,
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--preserve-digests",
            &dest,
            &format!("oci:{}:multi", out.dir.display()),
        ],
    );
    assert_eq!(out.lookup("multi")["digest"], json!(index_digest));
    assert!(out.read_blob(&index_digest) == index);
    for m in [&m_amd, &m_arm] {
        assert!(out.read_blob(&sha256(m)) == *m);
        for b in blobs_of(m) {
            assert!(out.read_blob(&b) == src.read_blob(&b), "blob {b}");
        }
    }
}

#[tokio::test]
async fn skopeo_docker_schema2_round_trip() {
    if !skopeo_available() {
        return;
    }
    let server = TestServer::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let policy = write_policy(tmp.path());
    let src = Layout::new(tmp.path().join("src"));
    let (manifest, desc) = make_image(&src, 2, "amd64");
    src.write_index(&[(desc, "v1")]);
    let host = server.host();
    let dest = format!("docker://{host}/interop/skopeo-docker:v1");

    skopeo(
        &server,
        &policy,
        &[
            "copy",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.dir.display()),
            &dest,
        ],
    );
    let raw = skopeo(
        &server,
        &policy,
        &["inspect", "--tls-verify=false", "--raw", &dest],
    )
    .stdout;
    let v: Value = serde_json::from_slice(&raw).expect("docker manifest JSON");
    assert_eq!(v["mediaType"], json!(DOCKER_MANIFEST));
    assert_eq!(v["schemaVersion"], json!(2));
    // The converted manifest references the same blobs.
    let mut docker_blobs: Vec<String> =
        vec![v["config"]["digest"].as_str().expect("cfg").to_string()];
    for l in v["layers"].as_array().expect("layers") {
        assert_eq!(l["mediaType"], json!(DOCKER_LAYER));
        docker_blobs.push(l["digest"].as_str().expect("layer").to_string());
    }
    assert_eq!(docker_blobs, blobs_of(&manifest));
    let docker_digest = sha256(&raw);

    let reg = server.registry();
    let r = reg.get_manifest("interop/skopeo-docker", "v1").await;
    r.expect_status(200);
    assert!(r.body == raw);
    assert_eq!(r.header("Content-Type").as_deref(), Some(DOCKER_MANIFEST));
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(docker_digest.clone())
    );

    // Back out into a `dir:` copy, which stores the manifest as is.
    let out = tmp.path().join("dir-out");
    skopeo(
        &server,
        &policy,
        &[
            "copy",
            "--src-tls-verify=false",
            "--preserve-digests",
            &dest,
            &format!("dir:{}", out.display()),
        ],
    );
    let m = std::fs::read(out.join("manifest.json")).expect("manifest.json");
    assert_eq!(
        sha256(&m),
        docker_digest,
        "digest identical after the round trip"
    );
    for b in &docker_blobs {
        let hex = b.strip_prefix("sha256:").expect("sha256");
        let bytes = std::fs::read(out.join(hex)).expect("blob in dir copy");
        assert!(bytes == src.read_blob(b), "blob {b}");
    }
}
