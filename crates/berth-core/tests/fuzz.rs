//! Fuzzing the parsers of network input in berth-core (issue 16) with
//! [`berth_core::fuzz`]: digests, references, repository names, `/v2`
//! paths, manifests and indexes. Each target must not panic, and what it
//! accepts must print back to the same text.

use berth_core::fuzz::{run, run_str};
use berth_core::manifest::{essence, parse_manifest};
use berth_core::route::parse_v2_path;
use berth_core::{Digest, Reference, RepositoryName, Tag};

const SHA256: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

#[test]
fn fuzz_digests_and_references() {
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    run_str(
        "reference",
        &[
            SHA256,
            &sha512,
            "latest",
            "v1.2.3-rc_1",
            "sha256:",
            ":",
            "A:b",
        ],
        |s| {
            if let Ok(d) = s.parse::<Digest>() {
                assert_eq!(d.to_string(), s, "a digest prints as parsed");
            }
            if let Ok(t) = s.parse::<Tag>() {
                assert_eq!(t.to_string(), s);
                assert!(!s.is_empty() && s.len() <= 128, "tag grammar: {s:?}");
            }
            if let Ok(r) = s.parse::<Reference>() {
                assert_eq!(r.to_string(), s);
            }
        },
    );
}

#[test]
fn fuzz_repository_names() {
    run_str(
        "repository_name",
        &[
            "library/alpine",
            "a",
            "a/b-c/d__e.f",
            "x/../y",
            "UPPER/case",
            "a//b",
        ],
        |s| {
            if let Ok(n) = s.parse::<RepositoryName>() {
                assert_eq!(n.to_string(), s);
                assert!(!s.contains("//") && !s.starts_with('/'), "{s:?}");
                assert!(!s.bytes().any(|b| b.is_ascii_uppercase()), "{s:?}");
            }
        },
    );
}

#[test]
fn fuzz_v2_paths() {
    let manifest = format!("library/alpine/manifests/{SHA256}");
    let blob = format!("a/b/blobs/{SHA256}");
    let referrers = format!("a/referrers/{SHA256}");
    run_str(
        "v2_path",
        &[
            "",
            "_catalog",
            "library/alpine/tags/list",
            &manifest,
            "a/manifests/latest",
            &blob,
            "a/blobs/uploads/",
            "a/blobs/uploads/0b9d6f4a-3c2e-4d8f-9a1b-2c3d4e5f6a7b",
            &referrers,
            "/tags/list",
            "manifests/x",
        ],
        |s| {
            if let Some(route) = parse_v2_path(s) {
                if let Some(name) = route.repository() {
                    assert!(!name.is_empty(), "{s:?} gave an empty name");
                    assert!(s.contains(name), "{s:?} gave a name not in the path");
                }
            }
        },
    );
}

#[test]
fn fuzz_manifests_and_indexes() {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{SHA256}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{SHA256}","size":2}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{SHA256}","size":10}},"annotations":{{"a":"b"}}}}"#
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{SHA256}","size":7,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    let docker = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{SHA256}","size":2}},"layers":[]}}"#
    );
    let artifact = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{SHA256}","size":2,"data":"e30="}},"layers":[]}}"#
    );
    let content_types = [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json"),
        Some("application/json; charset=utf-8"),
    ];
    run(
        "manifest",
        &[
            manifest.as_bytes(),
            index.as_bytes(),
            docker.as_bytes(),
            artifact.as_bytes(),
            b"{}",
            b"[]",
            b"{\"schemaVersion\":1}",
        ],
        |body| {
            // The content type is taken from the input's first byte so the
            // fuzzer explores each branch.
            let ct = content_types[body.first().map_or(0, |b| *b as usize) % content_types.len()];
            if let Some(ct) = ct {
                let _ = essence(ct);
            }
            let _ = parse_manifest(ct, body);
        },
    );
    run_str(
        "media_type",
        &["application/json; charset=utf-8", "  A/B ;x", ";", ""],
        |s| {
            let e = essence(s);
            assert!(e.len() <= s.len());
        },
    );
}
