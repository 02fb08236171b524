//! Starts the CNCF distribution registry (`/usr/bin/docker-registry`) for tests.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `docker-registry` package installs distribution 2.8.
pub const DISTRIBUTION: &str = "/usr/bin/docker-registry";

/// A running registry process, killed on drop.
pub struct Distribution {
    pub url: String,
    pub pid: u32,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// `None` (and a printed note) when the binary is not installed.
pub fn binary() -> Option<PathBuf> {
    let p = Path::new(DISTRIBUTION);
    if p.exists() {
        Some(p.to_path_buf())
    } else {
        println!("skipping: {DISTRIBUTION} not found (apt-get install docker-registry)");
        None
    }
}

impl Distribution {
    /// Starts distribution with filesystem storage in a temp dir; `auth_yaml`
    /// is an optional top-level `auth:` section.
    pub async fn start(bin: &Path, auth_yaml: &str) -> Distribution {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = format!(
            "version: 0.1\n\
             log:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n  \
             cache:\n    blobdescriptor: inmemory\n\
             http:\n  addr: 127.0.0.1:{port}\n\
             {auth_yaml}\n",
            root = dir.path().join("data").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let url = format!("http://127.0.0.1:{port}");
        let reg = Distribution {
            pid: child.id(),
            url,
            child,
            dir,
        };
        reg.wait_ready().await;
        reg
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{}/v2/", self.url)).send().await {
                if r.status().is_success() || r.status() == 401 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "registry did not come up; log:\n{}",
                std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
