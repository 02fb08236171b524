//! The CLI's scheme decision against an HTTPS server: a loopback login
//! server is reached over plain HTTP unless `--ca-file` is given, which
//! means HTTPS trusting that CA; the choice is stored in the session and
//! used by the management verbs and the credential helper.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::CliEnv;
use common::*;
use serde_json::Value;

/// `berth serve --tls-self-signed localhost`, killed on drop.
struct TlsServer {
    child: Child,
    _data: tempfile::TempDir,
    host: String,
    cert: std::path::PathBuf,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_tls() -> TlsServer {
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let host = format!("localhost:{port}");
    let child = Command::new(berth_bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .args(["--tls-self-signed", "localhost", "--login-server", &host])
        .env("BERTH_BOOTSTRAP_PASSWORD", OWNER_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth serve");
    let cert = data.path().join("tls/localhost.crt");
    let server = TlsServer {
        child,
        _data: data,
        host,
        cert,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if server.cert.exists() {
            let pem = std::fs::read(&server.cert).expect("certificate");
            let client = reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
                .build()
                .expect("client");
            if client
                .get(format!("https://{}/v2/", server.host))
                .send()
                .await
                .is_ok()
            {
                return server;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the HTTPS server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ca_file_means_https_and_is_remembered() {
    let server = start_tls().await;
    let env = CliEnv::new();
    let pw = format!("{OWNER_PASSWORD}\n");
    // Loopback defaults to plain HTTP, which this server does not speak.
    let out = env.run(
        &["login", &server.host, "-u", OWNER_USER, "--password-stdin"],
        Some(&pw),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http://") && err.contains("--ca-file"),
        "{err}"
    );

    let cert = server.cert.display().to_string();
    let out = env.run(
        &[
            "login",
            &server.host,
            "-u",
            OWNER_USER,
            "--password-stdin",
            "--ca-file",
            &cert,
        ],
        Some(&pw),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = env.sessions();
    assert_eq!(s["sessions"][&server.host]["scheme"], "https");
    assert_eq!(
        s["sessions"][&server.host]["caFile"],
        Value::String(cert.clone())
    );
    // Management verbs and the helper reach it the same way, without flags.
    let reg = env.json(&["registry", "show"]);
    assert_eq!(reg["loginServer"], Value::String(server.host.clone()));
    let out = env.helper("get", &server.host);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same CA through the environment.
    let other = CliEnv::new();
    let mut cmd = Command::new(berth_bin());
    other.apply(&mut cmd);
    let out = cmd
        .args([
            "login",
            &server.host,
            "-u",
            OWNER_USER,
            "-p",
            OWNER_PASSWORD,
        ])
        .env("BERTH_CA_FILE", &cert)
        .output()
        .expect("run berth");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
