//! `berth serve --tls-self-signed`: HTTPS with a generated certificate that
//! a client trusting that certificate (and only it) accepts.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[tokio::test]
async fn self_signed_tls_serves_https() {
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let mut child = Command::new(berth_bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .args(["--tls-self-signed", "localhost"])
        .env("BERTH_BOOTSTRAP_PASSWORD", OWNER_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth serve");
    let cert_path = data.path().join("tls/localhost.crt");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cert_path.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pem = std::fs::read(&cert_path).expect("generated certificate");
    let cert = reqwest::Certificate::from_pem(&pem).expect("parse certificate");
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .build()
        .expect("client");
    let url = format!("https://localhost:{port}/v2/");
    let mut last = String::new();
    let mut answered = None;
    while Instant::now() < deadline {
        match client
            .get(&url)
            .basic_auth(OWNER_USER, Some(OWNER_PASSWORD))
            .send()
            .await
        {
            Ok(r) => {
                answered = Some(r);
                break;
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = answered.unwrap_or_else(|| panic!("no HTTPS answer: {last}"));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("docker-distribution-api-version")
            .and_then(|v| v.to_str().ok()),
        Some("registry/2.0")
    );
    // The challenge advertises an https realm.
    let anon = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("cert"))
        .build()
        .expect("client");
    let r = anon.get(&url).send().await.expect("anonymous request");
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"https://127.0.0.1:{port}/oauth2/token\""
        )),
        "{challenge}"
    );
    // A client that does not trust the certificate is refused.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .expect("client");
    assert!(untrusting.get(&url).send().await.is_err());
    let _ = child.kill();
    let _ = child.wait();
}
