//! OCI distribution-spec v1.1 **Content Discovery**: tags list with `n` /
//! `last` / `Link` pagination, the (Docker-era) catalog, and the referrers
//! API with and without the `artifactType` filter. Mirrors
//! conformance/03_discovery_test.go.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};

/// Push one small image and tag it with every tag in `tags`.
async fn tag_many(reg: &Registry, repo: &str, tags: &[&str]) {
    let img = Image::random(1, 8);
    for b in img.blobs() {
        reg.push_blob(repo, b).await;
    }
    for t in tags {
        reg.put_manifest_ok(repo, t, OCI_MANIFEST, &img.manifest)
            .await;
    }
}

fn tags_of(r: &Reply) -> Vec<String> {
    r.expect_status(200);
    let v = r.json();
    match &v["tags"] {
        Value::Null => vec![],
        Value::Array(a) => a
            .iter()
            .map(|t| t.as_str().expect("tag string").to_string())
            .collect(),
        other => panic!("tags is neither array nor null: {other}"),
    }
}

// Tags chosen so that byte order and case-insensitive order agree.
const TAGS: &[&str] = &[
    "latest", "v1", "beta", "alpha", "t05", "t01", "t03", "t02", "t04", "zeta", "gamma", "delta",
];

fn sorted_tags() -> Vec<String> {
    let mut v: Vec<String> = TAGS.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn tags_list_is_complete_and_lexically_ordered() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/tags";
    tag_many(&reg, repo, TAGS).await;
    let r = reg.get(&format!("/v2/{repo}/tags/list")).await;
    // spec: "Assuming a repository is found, this request MUST return a
    // 200 OK response code." ... "the tags MUST be in lexical order"
    let v = r.json();
    assert_eq!(v["name"], json!(repo));
    assert_eq!(tags_of(&r), sorted_tags());
}

#[tokio::test]
async fn tags_list_order_is_case_insensitive() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/case";
    tag_many(
        &reg,
        repo,
        &["gamma", "Delta", "alpha", "Beta", "ECHO", "foxtrot"],
    )
    .await;
    // spec: "the tags MUST be in lexical order (i.e. case-insensitive
    // alphanumeric order)."
    let expected = ["alpha", "Beta", "Delta", "ECHO", "foxtrot", "gamma"];
    let r = reg.get(&format!("/v2/{repo}/tags/list")).await;
    assert_eq!(tags_of(&r), expected, "{}", r.describe());
    // `last` pages through the same order.
    let r = reg
        .get(&format!("/v2/{repo}/tags/list?n=2&last=Beta"))
        .await;
    let page = tags_of(&r);
    assert_eq!(
        page,
        ["Delta", "ECHO"][..page.len()].to_vec(),
        "{}",
        r.describe()
    );
    assert!(!page.is_empty());
}

#[tokio::test]
async fn tags_list_n_limits_and_link_header_paginates() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/paginate";
    tag_many(&reg, repo, TAGS).await;
    let all = sorted_tags();

    for n in [1usize, 3, 5, 12, 50] {
        let r = reg.get(&format!("/v2/{repo}/tags/list?n={n}")).await;
        let page = tags_of(&r);
        let link = r.header("Link");
        // spec: "The response to such a request MAY return fewer than <int>
        // results, but only when the total number of tags attached to the
        // repository is less than <int> or a Link header is provided.
        // Otherwise, the response MUST include <int> results."
        if link.is_none() {
            assert_eq!(page.len(), n.min(all.len()), "n={n}\n{}", r.describe());
        }
        assert!(page.len() <= n, "n={n} returned {} tags", page.len());
        assert_eq!(
            page,
            all[..page.len()].to_vec(),
            "n={n} starts at the beginning"
        );
        if n >= all.len() {
            assert!(
                link.is_none(),
                "n={n}: no Link when everything fits\n{}",
                r.describe()
            );
        }

        // Walk the Link chain and collect every tag exactly once, in order.
        let mut collected = page.clone();
        let mut next = link;
        let mut hops = 0;
        while let Some(l) = next {
            hops += 1;
            assert!(hops <= 20, "Link chain does not terminate");
            // spec: "the Link header MUST be set according to RFC5988 with
            // the Relation Type rel=\"next\"."
            let url =
                parse_next_link(&l).unwrap_or_else(|| panic!("unparseable Link header {l:?}"));
            let url = reg.resolve_location(&url);
            let r = reg.get(&url).await;
            let page = tags_of(&r);
            assert!(page.len() <= n, "follow-up page larger than n={n}");
            collected.extend(page);
            next = r.header("Link");
        }
        assert_eq!(
            collected, all,
            "n={n}: Link pagination yields every tag once"
        );
    }
}

#[tokio::test]
async fn tags_list_n_zero_is_empty_without_link() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/n-zero";
    tag_many(&reg, repo, TAGS).await;
    let r = reg.get(&format!("/v2/{repo}/tags/list?n=0")).await;
    // spec: "When n is zero, this endpoint MUST return an empty list, and
    // MUST NOT include a Link header."
    assert!(tags_of(&r).is_empty(), "{}", r.describe());
    assert!(r.header("Link").is_none(), "{}", r.describe());
}

#[tokio::test]
async fn tags_list_last_starts_after_the_given_tag() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/last";
    tag_many(&reg, repo, TAGS).await;
    let all = sorted_tags();

    // spec: "A request of this sort will return up to <int> tags, beginning
    // non-inclusively with <tagname>."
    for (i, last) in all.iter().enumerate() {
        let r = reg
            .get(&format!("/v2/{repo}/tags/list?n=3&last={last}"))
            .await;
        let page = tags_of(&r);
        let expected: Vec<String> = all[i + 1..].iter().take(3).cloned().collect();
        if r.header("Link").is_none() {
            assert_eq!(page, expected, "n=3&last={last}");
        } else {
            assert_eq!(page, expected[..page.len()].to_vec(), "n=3&last={last}");
        }
        assert!(!page.contains(last));
    }
    // "When using the last query parameter, the n parameter is OPTIONAL."
    let r = reg.get(&format!("/v2/{repo}/tags/list?last=gamma")).await;
    let page = tags_of(&r);
    let expected: Vec<String> = all
        .iter()
        .filter(|t| t.as_str() > "gamma")
        .cloned()
        .collect();
    if r.header("Link").is_none() {
        assert_eq!(page, expected);
    }
    // A `last` that is not itself a tag still orders lexically.
    let r = reg.get(&format!("/v2/{repo}/tags/list?last=m")).await;
    let page = tags_of(&r);
    assert!(page.iter().all(|t| t.as_str() > "m"), "{page:?}");
    if r.header("Link").is_none() {
        let expected: Vec<String> = all.iter().filter(|t| t.as_str() > "m").cloned().collect();
        assert_eq!(page, expected);
    }
}

#[tokio::test]
async fn tags_list_of_unknown_repository_is_name_unknown() {
    let server = TestServer::start().await;
    let reg = server.registry();
    reg.get("/v2/discovery/none/tags/list")
        .await
        .expect_error(404, &["NAME_UNKNOWN"]);
}

#[tokio::test]
async fn catalog_lists_repositories_with_pagination() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repos = ["cat/b", "cat/a", "cat/c/d", "zz", "aa", "m/n/o"];
    for r in repos {
        tag_many(&reg, r, &["v1"]).await;
    }
    let mut all: Vec<String> = repos.iter().map(|s| s.to_string()).collect();
    all.sort();

    let r = reg.get("/v2/_catalog").await;
    r.expect_status(200);
    let listed: Vec<String> = r.json()["repositories"]
        .as_array()
        .expect("repositories array")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    assert_eq!(listed, all, "catalog lists every repository, sorted");

    // n/last + Link, as for tags.
    let mut collected = vec![];
    let mut url = reg.url("/v2/_catalog?n=2");
    for hop in 0.. {
        assert!(hop < 10, "catalog Link chain does not terminate");
        let r = reg.get(&url).await;
        r.expect_status(200);
        let page: Vec<String> = r.json()["repositories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().expect("string").to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert!(page.len() <= 2);
        collected.extend(page);
        match r.header("Link") {
            Some(l) => {
                url = reg.resolve_location(&parse_next_link(&l).expect("rel=next Link"));
            }
            None => break,
        }
    }
    assert_eq!(collected, all);

    let r = reg.get("/v2/_catalog?n=3&last=cat/b").await;
    r.expect_status(200);
    let page: Vec<String> = r.json()["repositories"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    let expected: Vec<String> = all
        .iter()
        .filter(|s| s.as_str() > "cat/b")
        .take(3)
        .cloned()
        .collect();
    assert_eq!(page, expected);

    let r = reg.get("/v2/_catalog?n=0").await;
    r.expect_status(200);
    assert!(r.header("Link").is_none());
}

// ---------------------------------------------------------------------------
// Referrers
// ---------------------------------------------------------------------------

struct ReferrerSetup {
    subject: Image,
    /// digest → (expected artifactType, annotations, mediaType, size)
    expected: Vec<(String, Option<String>, Value, String, usize)>,
}

const TYPE_A: &str = "application/vnd.example.sbom.v1";
// A '+' in the value checks that the server form-decodes the query string
// (clients send it as %2B).
const TYPE_B: &str = "application/vnd.example.signature.v1+json";

/// Push a subject image and five referrers to it, mirroring the
/// conformance suite: two manifests with `artifactType`, one whose type
/// comes from `config.mediaType`, one index with `artifactType`, one index
/// without; one of them pushed before the subject exists.
async fn setup_referrers(reg: &Registry, repo: &str) -> ReferrerSetup {
    reg.push_blob(repo, EMPTY_JSON).await;
    let subject = Image::random(1, 32);
    let sdesc = json!({"mediaType": OCI_MANIFEST, "digest": subject.digest(), "size": subject.manifest.len()});
    let mut expected = vec![];

    // 1: pushed before the subject exists, artifactType A.
    let layer1 = random_bytes(20);
    reg.push_blob(repo, &layer1).await;
    let m1 = referrer_manifest(
        &sdesc,
        Some(TYPE_A),
        OCI_EMPTY,
        &layer1,
        &json!({"org.example.n": "1"}),
    );
    let r = reg
        .put_manifest(repo, &sha256(&m1), OCI_MANIFEST, &m1)
        .await;
    r.expect_status(201);
    assert_eq!(
        r.header("OCI-Subject"),
        Some(subject.digest()),
        "{}",
        r.describe()
    );
    expected.push((
        sha256(&m1),
        Some(TYPE_A.to_string()),
        json!({"org.example.n": "1"}),
        OCI_MANIFEST.to_string(),
        m1.len(),
    ));

    reg.push_image(repo, "subject", &subject).await;

    // 2: no artifactType; config.mediaType TYPE_B → artifactType TYPE_B.
    let layer2 = random_bytes(20);
    reg.push_blob(repo, &layer2).await;
    let m2 = referrer_manifest(
        &sdesc,
        None,
        TYPE_B,
        &layer2,
        &json!({"org.example.n": "2"}),
    );
    let r = reg
        .put_manifest(repo, &sha256(&m2), OCI_MANIFEST, &m2)
        .await;
    r.expect_status(201);
    assert_eq!(r.header("OCI-Subject"), Some(subject.digest()));
    expected.push((
        sha256(&m2),
        Some(TYPE_B.to_string()),
        json!({"org.example.n": "2"}),
        OCI_MANIFEST.to_string(),
        m2.len(),
    ));

    // 3: artifactType A again, pushed by tag.
    let layer3 = random_bytes(20);
    reg.push_blob(repo, &layer3).await;
    let m3 = referrer_manifest(
        &sdesc,
        Some(TYPE_A),
        OCI_EMPTY,
        &layer3,
        &json!({"org.example.n": "3", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"}),
    );
    let r = reg
        .put_manifest(repo, "sbom-tagged", OCI_MANIFEST, &m3)
        .await;
    r.expect_status(201);
    assert_eq!(r.header("OCI-Subject"), Some(subject.digest()));
    expected.push((
        sha256(&m3),
        Some(TYPE_A.to_string()),
        json!({"org.example.n": "3", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"}),
        OCI_MANIFEST.to_string(),
        m3.len(),
    ));

    // 4: an index with artifactType B and a subject.
    let child = Image::random(1, 8);
    reg.push_image(repo, &child.digest(), &child).await;
    let idx4 = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": TYPE_B,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child.digest(), "size": child.manifest.len()}],
        "subject": sdesc,
        "annotations": {"org.example.n": "4"},
    }))
    .expect("json");
    let r = reg
        .put_manifest(repo, &sha256(&idx4), OCI_INDEX, &idx4)
        .await;
    r.expect_status(201);
    assert_eq!(
        r.header("OCI-Subject"),
        Some(subject.digest()),
        "index with subject\n{}",
        r.describe()
    );
    expected.push((
        sha256(&idx4),
        Some(TYPE_B.to_string()),
        json!({"org.example.n": "4"}),
        OCI_INDEX.to_string(),
        idx4.len(),
    ));

    // 5: an index without artifactType → the descriptor has none.
    let idx5 = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child.digest(), "size": child.manifest.len()}],
        "subject": sdesc,
        "annotations": {"org.example.n": "5"},
    }))
    .expect("json");
    let r = reg
        .put_manifest(repo, &sha256(&idx5), OCI_INDEX, &idx5)
        .await;
    r.expect_status(201);
    expected.push((
        sha256(&idx5),
        None,
        json!({"org.example.n": "5"}),
        OCI_INDEX.to_string(),
        idx5.len(),
    ));

    // Not a referrer: an unrelated image in the same repository.
    reg.push_image(repo, "unrelated", &Image::random(1, 8))
        .await;

    ReferrerSetup { subject, expected }
}

fn check_referrers_index(r: &Reply) -> Vec<Value> {
    // spec: "this request MUST return a 200 OK" ... "The Content-Type header
    // MUST be set to application/vnd.oci.image.index.v1+json."
    r.expect_status(200);
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some(OCI_INDEX),
        "{}",
        r.describe()
    );
    let v = r.json();
    assert_eq!(v["schemaVersion"], json!(2));
    assert_eq!(v["mediaType"], json!(OCI_INDEX));
    v["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("manifests must be an array\n{}", r.describe()))
        .clone()
}

fn assert_descriptors(got: &[Value], want: &[&(String, Option<String>, Value, String, usize)]) {
    let got_digests: BTreeSet<&str> = got
        .iter()
        .map(|d| d["digest"].as_str().expect("digest"))
        .collect();
    let want_digests: BTreeSet<&str> = want.iter().map(|w| w.0.as_str()).collect();
    assert_eq!(got_digests, want_digests, "referrer digests");
    assert_eq!(got.len(), want.len(), "no duplicate descriptors");
    for w in want {
        let d = got
            .iter()
            .find(|d| d["digest"] == json!(w.0))
            .expect("descriptor present");
        assert_eq!(d["mediaType"], json!(w.3), "mediaType of {}", w.0);
        assert_eq!(d["size"], json!(w.4), "size of {}", w.0);
        // spec: "The descriptors MUST include an artifactType field that is
        // set to the value of the artifactType in the image manifest or
        // index, if present. If the artifactType is empty or missing in the
        // image manifest, the value of artifactType MUST be set to the config
        // descriptor mediaType value. If the artifactType is empty or missing
        // in an index, the artifactType MUST be omitted."
        match &w.1 {
            Some(at) => assert_eq!(d["artifactType"], json!(at), "artifactType of {}", w.0),
            None => assert!(
                d.get("artifactType").is_none() || d["artifactType"] == json!(""),
                "artifactType must be omitted for {}: {d}",
                w.0
            ),
        }
        // "The descriptors MUST include annotations from the image manifest
        // or index."
        assert_eq!(d["annotations"], w.2, "annotations of {}", w.0);
    }
}

#[tokio::test]
async fn referrers_lists_every_manifest_with_the_subject() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/referrers";
    let setup = setup_referrers(&reg, repo).await;
    let r = reg
        .get(&format!("/v2/{repo}/referrers/{}", setup.subject.digest()))
        .await;
    let got = check_referrers_index(&r);
    let want: Vec<_> = setup.expected.iter().collect();
    assert_descriptors(&got, &want);
    assert!(
        r.header("OCI-Filters-Applied").is_none(),
        "no filter was requested\n{}",
        r.describe()
    );
}

#[tokio::test]
async fn referrers_artifact_type_filter() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/referrers-filter";
    let setup = setup_referrers(&reg, repo).await;
    for ty in [TYPE_A, TYPE_B, "application/vnd.example.none"] {
        let url = with_query(
            &reg.url(&format!("/v2/{repo}/referrers/{}", setup.subject.digest())),
            "artifactType",
            ty,
        );
        let r = reg.get(&url).await;
        let got = check_referrers_index(&r);
        // spec: "If filtering is requested and applied, the response MUST
        // include a header OCI-Filters-Applied: artifactType"
        assert_eq!(
            r.header("OCI-Filters-Applied").as_deref(),
            Some("artifactType"),
            "{}",
            r.describe()
        );
        let want: Vec<_> = setup
            .expected
            .iter()
            .filter(|e| e.1.as_deref() == Some(ty))
            .collect();
        assert_descriptors(&got, &want);
    }
}

#[tokio::test]
async fn referrers_of_unknown_digest_is_empty_200() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/referrers-empty";
    reg.push_image(repo, "v1", &Image::random(1, 8)).await;
    // conformance: "GET request to nonexistent blob should result in empty
    // 200 response"; spec: "If a query results in no matching referrers, an
    // empty manifest list MUST be returned."
    let r = reg
        .get(&format!(
            "/v2/{repo}/referrers/{}",
            sha256(b"nothing refers to me")
        ))
        .await;
    assert!(check_referrers_index(&r).is_empty());
    // An existing manifest without referrers, too.
    let img = Image::random(1, 8);
    reg.push_image(repo, "v2", &img).await;
    let r = reg
        .get(&format!("/v2/{repo}/referrers/{}", img.digest()))
        .await;
    assert!(check_referrers_index(&r).is_empty());
}

#[tokio::test]
async fn referrers_with_invalid_digest_is_400() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/referrers-bad";
    reg.push_image(repo, "v1", &Image::random(1, 8)).await;
    for bad in ["sha256:abc", "latest", "sha256:", "nope:1234"] {
        let r = reg.get(&format!("/v2/{repo}/referrers/{bad}")).await;
        // spec: "If the request is invalid, such as a <digest> with an
        // invalid syntax, a 400 Bad Request MUST be returned."
        r.expect_status(400);
        r.expect_error_envelope();
    }
}

#[tokio::test]
async fn referrers_are_scoped_to_the_repository() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let setup = setup_referrers(&reg, "discovery/scope-a").await;
    // The same subject pushed to another repository has no referrers there.
    reg.push_image("discovery/scope-b", "subject", &setup.subject)
        .await;
    let r = reg
        .get(&format!(
            "/v2/discovery/scope-b/referrers/{}",
            setup.subject.digest()
        ))
        .await;
    // spec: "Each descriptor is of an image manifest or index in the same
    // <name> namespace with a subject field that specifies the value of
    // <digest>."
    assert!(check_referrers_index(&r).is_empty(), "{}", r.describe());
}

#[tokio::test]
async fn deleted_referrer_leaves_the_list() {
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/referrers-delete";
    let setup = setup_referrers(&reg, repo).await;
    let gone = &setup.expected[1];
    reg.delete(&format!("/v2/{repo}/manifests/{}", gone.0))
        .await
        .expect_status(202);
    let r = reg
        .get(&format!("/v2/{repo}/referrers/{}", setup.subject.digest()))
        .await;
    let got = check_referrers_index(&r);
    let want: Vec<_> = setup.expected.iter().filter(|e| e.0 != gone.0).collect();
    assert_descriptors(&got, &want);

    // Deleting the subject itself does not make the endpoint 404.
    reg.delete(&format!("/v2/{repo}/manifests/{}", setup.subject.digest()))
        .await
        .expect_status(202);
    let r = reg
        .get(&format!("/v2/{repo}/referrers/{}", setup.subject.digest()))
        .await;
    // spec: "the registry MUST NOT return a 404 Not Found to a referrers API
    // requests"
    check_referrers_index(&r);
}

#[tokio::test]
async fn many_referrers_are_all_reachable() {
    // spec: "A Link header MUST be included in the response when the
    // descriptor list cannot be returned in a single manifest."
    let server = TestServer::start().await;
    let reg = server.registry();
    let repo = "discovery/many-referrers";
    reg.push_blob(repo, EMPTY_JSON).await;
    let subject = Image::random(1, 8);
    reg.push_image(repo, "subject", &subject).await;
    let sdesc = json!({"mediaType": OCI_MANIFEST, "digest": subject.digest(), "size": subject.manifest.len()});
    let layer = random_bytes(16);
    reg.push_blob(repo, &layer).await;
    let mut want = BTreeSet::new();
    for i in 0..60 {
        let m = referrer_manifest(
            &sdesc,
            Some(TYPE_A),
            OCI_EMPTY,
            &layer,
            &json!({"i": i.to_string()}),
        );
        reg.put_manifest_ok(repo, &sha256(&m), OCI_MANIFEST, &m)
            .await;
        want.insert(sha256(&m));
    }
    let mut got = BTreeSet::new();
    let mut total = 0;
    let mut url = reg.url(&format!("/v2/{repo}/referrers/{}", subject.digest()));
    for hop in 0.. {
        assert!(hop < 100, "referrers Link chain does not terminate");
        let r = reg.get(&url).await;
        for d in check_referrers_index(&r) {
            total += 1;
            got.insert(d["digest"].as_str().expect("digest").to_string());
        }
        match r.header("Link") {
            Some(l) => url = reg.resolve_location(&parse_next_link(&l).expect("rel=next")),
            None => break,
        }
    }
    assert_eq!(got, want);
    assert_eq!(total, want.len(), "no descriptor repeated across pages");
}
