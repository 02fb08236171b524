//! Interop with oras-py (PyPI `oras`): tests/interop/oras_referrers.py
//! pushes an artifact, pulls it back, attaches a referrer (manifest with
//! `subject`); this test then checks berth's referrers API lists it.
//!
//! Skipped with a printed notice when python3 cannot import `oras` — except
//! under CI (`CI` set), where that is a failure: CI installs it.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn python() -> &'static str {
    "python3"
}

fn oras_available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import oras.client, oras.oci"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("python3 cannot import `oras`, but CI is set: CI must `pip install oras`");
    }
    eprintln!("SKIPPED: python3 module `oras` is not installed; interop_oras tests did not run");
    false
}

#[tokio::test]
async fn oras_py_push_pull_and_referrer() {
    if !oras_available() {
        return;
    }
    let server = TestServer::start().await;
    let work = tempfile::tempdir().expect("workdir");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/oras_referrers.py"
    );
    let repo = "interop/oras";
    let out = tokio::task::spawn_blocking({
        let host = server.host();
        let dir = work.path().to_path_buf();
        let env = server.interop_env();
        move || {
            Command::new(python())
                .arg(script)
                .arg(host)
                .arg(repo)
                .arg(dir)
                .envs(env)
                .output()
                .expect("run python3")
        }
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "oras-py script failed ({})\nstdout: {}\nstderr: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_tail(3000)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line from the script: {stdout}"));
    let result: Value = serde_json::from_str(line).expect("script JSON");
    let subject = result["subject_digest"].as_str().expect("subject digest");
    let referrer = result["referrer_digest"].as_str().expect("referrer digest");

    // spec: the registry MUST answer a manifest PUT with a subject with
    // OCI-Subject: <subject digest> (oras-py saw it).
    assert_eq!(result["oci_subject_header"], json!(subject));
    let mut tags: Vec<String> = result["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t.as_str().expect("tag").to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, vec!["signature".to_string(), "v1".to_string()]);

    let reg = server.registry();
    let r = reg.get(&format!("/v2/{repo}/referrers/{subject}")).await;
    r.expect_status(200);
    assert_eq!(r.header("Content-Type").as_deref(), Some(OCI_INDEX));
    let v = r.json();
    let manifests = v["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{v}");
    let d = &manifests[0];
    assert_eq!(d["digest"], json!(referrer));
    assert_eq!(d["mediaType"], json!(OCI_MANIFEST));
    assert_eq!(d["size"], result["referrer_size"]);
    // No artifactType in the manifest → the config's mediaType.
    assert_eq!(
        d["artifactType"],
        json!("application/vnd.example.signature.v1")
    );
    assert_eq!(d["annotations"]["org.example.signer"], json!("berth-tests"));

    let filtered = reg
        .get(&with_query(
            &reg.url(&format!("/v2/{repo}/referrers/{subject}")),
            "artifactType",
            "application/vnd.example.signature.v1",
        ))
        .await;
    filtered.expect_status(200);
    assert_eq!(
        filtered.header("OCI-Filters-Applied").as_deref(),
        Some("artifactType")
    );
    assert_eq!(
        filtered.json()["manifests"].as_array().map(|a| a.len()),
        Some(1)
    );

    // The artifact itself has no referrers of its own.
    let r = reg.get(&format!("/v2/{repo}/referrers/{referrer}")).await;
    r.expect_status(200);
    assert_eq!(r.json()["manifests"], json!([]));
}
