//! Real object-storage servers for the tests: moto's S3 server and Azurite's
//! Blob service, each started on a free loopback port with a private
//! directory and stopped by PID when dropped. scripts/test.sh installs both
//! (`pip install 'moto[server]'`, `npm install -g azurite@3.35.0`, and the
//! `azure-storage-blob` Python package that creates Azurite containers).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Azurite's well-known development account and key (public, documented by
/// Microsoft for the emulator).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// The development account's key.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A child process killed (by PID) and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Which object store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// moto's S3 server.
    S3,
    /// Azurite's Blob service.
    Azure,
}

/// A running object-storage server with one bucket or container.
pub struct ObjectServer {
    _child: Reaped,
    _dir: tempfile::TempDir,
    /// Which kind.
    pub kind: Kind,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The bucket or container created for the test.
    pub bucket: String,
}

fn wait_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during start-up: {status}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a server of `kind` can be started here. Missing, it skips the
/// caller with a printed notice, except under CI (`CI` set), where it is a
/// failure: scripts/test.sh installs both.
pub fn available(kind: Kind) -> bool {
    let prog = match kind {
        Kind::S3 => "moto_server",
        Kind::Azure => "azurite-blob",
    };
    if super::on_path(prog) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{prog} is not on PATH, but CI is set: scripts/test.sh must install it");
    }
    eprintln!("SKIPPED: {prog} is not on PATH; {kind:?} blob store tests did not run");
    false
}

impl ObjectServer {
    /// Start a server of `kind` and create one bucket/container in it.
    pub async fn start(kind: Kind) -> ObjectServer {
        let dir = tempfile::Builder::new()
            .prefix("berth-objects-")
            .tempdir()
            .expect("object server dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        let log_err = log.try_clone().expect("clone log");
        let mut cmd = match kind {
            Kind::S3 => {
                let mut c = Command::new("moto_server");
                c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                c
            }
            Kind::Azure => {
                let mut c = Command::new("azurite-blob");
                c.args([
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &port.to_string(),
                    "--location",
                ])
                .arg(dir.path().join("data"))
                .args(["--skipApiVersionCheck", "--silent"]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .expect("spawn object server");
        wait_port(port, &format!("{kind:?} server"), &mut child);
        let server = ObjectServer {
            _child: Reaped(child),
            _dir: dir,
            kind,
            port,
            bucket: format!("berth-{}", super::random_suffix()),
        };
        server.create_bucket().await;
        server
    }

    async fn create_bucket(&self) {
        match self.kind {
            // moto does not check signatures: a plain path-style PUT.
            Kind::S3 => {
                let url = format!("http://127.0.0.1:{}/{}", self.port, self.bucket);
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    match reqwest::Client::new().put(&url).send().await {
                        Ok(r) if r.status().is_success() => return,
                        other => {
                            assert!(
                                Instant::now() < deadline,
                                "creating bucket on moto failed: {other:?}"
                            );
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }
            // Azurite checks Shared Key signatures: Azure's own Python SDK.
            Kind::Azure => {
                let script = "import sys\nfrom azure.storage.blob import BlobServiceClient\n\
                     BlobServiceClient.from_connection_string(sys.argv[1]).create_container(sys.argv[2])\n";
                let out = Command::new("python3")
                    .args(["-c", script, &self.connection_string(), &self.bucket])
                    .output()
                    .expect("run python3");
                assert!(
                    out.status.success(),
                    "creating the Azurite container failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    /// Azurite's connection string (as the Azure docs give it).
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};\
             BlobEndpoint=http://127.0.0.1:{}/{AZURITE_ACCOUNT};",
            self.port
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A `--blob-store` URL for this server with key prefix `prefix`.
    pub fn blob_store_url(&self, prefix: &str) -> String {
        match self.kind {
            Kind::S3 => format!("s3://{}/{prefix}?endpoint={}", self.bucket, self.endpoint()),
            Kind::Azure => format!("azure://{}/{prefix}", self.bucket),
        }
    }

    /// The environment `berth serve` needs for this server.
    pub fn env(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        match self.kind {
            Kind::S3 => {
                m.insert("AWS_ACCESS_KEY_ID".into(), "berth-test-key".into());
                m.insert("AWS_SECRET_ACCESS_KEY".into(), "berth-test-secret".into());
                m.insert("AWS_REGION".into(), "us-east-1".into());
            }
            Kind::Azure => {
                m.insert(
                    "AZURE_STORAGE_CONNECTION_STRING".into(),
                    self.connection_string(),
                );
            }
        }
        m
    }
}
