//! Shared harness for berth's end-to-end tests.
//!
//! [`TestServer`] runs the real `berth serve` binary on a free loopback port
//! with a throw-away data directory; [`Registry`] is a thin reqwest client for
//! the OCI distribution API with the helpers the spec tests share.
//!
//! Authentication: everything that knows how a test client proves who it is
//! lives in this file — [`TestServer::client`] (reqwest),
//! [`TestServer::skopeo_auth_args`] (skopeo), [`TestServer::interop_env`]
//! (oras-py scripts), [`TestServer::oci_client_auth`] (oci-client) and
//! [`TestServer::raw_auth_lines`] (hand-written HTTP). They all present the
//! Owner that `berth serve` bootstraps from `BERTH_BOOTSTRAP_PASSWORD`.

#![allow(dead_code)]

pub mod clock;
pub mod distributed;
pub mod docker;
pub mod kube;
pub mod login;
pub mod object_servers;
pub mod oidc;
pub mod replicas;
pub mod skopeo;

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

/// The user `berth serve` creates on a new registry (Owner role).
pub const OWNER_USER: &str = "owner";
/// Its password, given to the server through `BERTH_BOOTSTRAP_PASSWORD`.
pub const OWNER_PASSWORD: &str = "test-owner-password-1";

/// How long a freshly spawned server may take to answer `GET /v2/`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary under test.
pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

/// A running `berth serve` child process on its own port and data directory.
pub struct TestServer {
    child: Option<Child>,
    port: u16,
    /// Shared by the replicas of a [`replicas::PgPair`].
    data_dir: Arc<tempfile::TempDir>,
    /// A directory the caller owns (e.g. a small tmpfs) used instead of
    /// `data_dir` ([`TestServer::start_in`]).
    outside_data_dir: Option<PathBuf>,
    /// PostgreSQL for metadata (given through `BERTH_DATABASE_URL`, never
    /// on the command line).
    database_url: Option<String>,
    log_dir: tempfile::TempDir,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    starts: u32,
    /// The port clients use when it is not this process's own (the
    /// round-robin proxy of the distributed configuration).
    public_port: Option<u16>,
    /// The distributed configuration's second replica, proxy, S3 and
    /// PostgreSQL ([`distributed`]).
    cluster: Option<Box<distributed::Cluster>>,
}

/// Environment variable that puts every [`TestServer`] on a blob store:
/// a `--blob-store` URL (`s3://bucket?endpoint=http://127.0.0.1:PORT`,
/// `azure://container`) to which each server adds a private key prefix.
/// The store's credentials come from the usual `AWS_*` / `AZURE_STORAGE_*`
/// variables of the test process. See docs/deployment.md.
pub const TEST_BLOB_STORE_ENV: &str = "BERTH_TEST_BLOB_STORE";

/// `url` with a random key prefix appended to its path.
fn with_private_prefix(url: &str) -> String {
    let mut u = Url::parse(url).unwrap_or_else(|e| panic!("{TEST_BLOB_STORE_ENV}={url}: {e}"));
    let path = format!("{}/t-{}", u.path().trim_end_matches('/'), random_suffix());
    u.set_path(&path);
    u.to_string()
}

impl TestServer {
    /// Start `berth serve` with default flags.
    pub async fn start() -> TestServer {
        Self::start_with(&[]).await
    }

    /// Start `berth serve` with extra command-line arguments.
    pub async fn start_with(args: &[&str]) -> TestServer {
        Self::start_with_env(args, &[]).await
    }

    /// Start `berth serve` with extra arguments and environment variables
    /// (e.g. the test-only `BERTH_TEST_CLOCK_FILE`).
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        Self::start_full(args, env, None, None).await
    }

    /// Start `berth serve` with its metadata in PostgreSQL at
    /// `database_url`; with `share_data_dir`, on that server's data
    /// directory (filesystem blobs on a shared disk, as replicas).
    pub async fn start_on_postgres(
        database_url: &str,
        share_data_dir: Option<&TestServer>,
        args: &[&str],
    ) -> TestServer {
        Self::start_full(
            args,
            &[],
            Some(database_url.to_string()),
            share_data_dir.map(|s| s.data_dir.clone()),
        )
        .await
    }

    /// Start `berth serve` with everything configurable.
    pub async fn start_full(
        args: &[&str],
        env: &[(&str, &str)],
        database_url: Option<String>,
        data_dir: Option<Arc<tempfile::TempDir>>,
    ) -> TestServer {
        // BERTH_TEST_DISTRIBUTED=1: a server that asks for nothing of its
        // own becomes two replicas on PostgreSQL + S3 behind a proxy.
        if database_url.is_none()
            && data_dir.is_none()
            && !args.iter().any(|a| a.starts_with("--blob-store"))
            && distributed::enabled()
        {
            return distributed::start(args, env).await;
        }
        let mut server = Self::prepare(args, env, database_url, data_dir);
        server.spawn_and_wait().await;
        server
    }

    /// A server configured but not started yet (see
    /// [`TestServer::spawn_and_wait`]), so tests can start several at once.
    pub fn prepare(
        args: &[&str],
        env: &[(&str, &str)],
        database_url: Option<String>,
        data_dir: Option<Arc<tempfile::TempDir>>,
    ) -> TestServer {
        let data_dir = data_dir.unwrap_or_else(|| {
            Arc::new(
                tempfile::Builder::new()
                    .prefix("berth-data-")
                    .tempdir()
                    .expect("create data dir"),
            )
        });
        let log_dir = tempfile::Builder::new()
            .prefix("berth-log-")
            .tempdir()
            .expect("create log dir");
        let mut server = TestServer {
            child: None,
            port: 0,
            data_dir,
            outside_data_dir: None,
            database_url,
            log_dir,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts: 0,
            public_port: None,
            cluster: None,
        };
        let has_store = args.iter().any(|a| a.starts_with("--blob-store"));
        if let Some(url) = std::env::var(TEST_BLOB_STORE_ENV)
            .ok()
            .filter(|u| !u.is_empty() && !has_store)
        {
            server.extra_args.push("--blob-store".into());
            server.extra_args.push(with_private_prefix(&url));
        }
        server
    }

    /// Start `berth serve` with its data in `dir` (e.g. a small tmpfs),
    /// which the caller owns and removes.
    pub async fn start_in(dir: &Path, args: &[&str]) -> TestServer {
        let mut server = Self::prepare(args, &[], None, None);
        server.outside_data_dir = Some(dir.to_path_buf());
        server.spawn_and_wait().await;
        server
    }

    /// Start a second `berth serve` with `other`'s flags, environment,
    /// database and data directory (replicas).
    pub async fn start_replica_of(other: &TestServer) -> TestServer {
        let args: Vec<&str> = other.extra_args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = other
            .extra_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Self::start_full(
            &args,
            &env,
            other.database_url.clone(),
            Some(other.data_dir.clone()),
        )
        .await
    }

    /// Start `berth serve` on the blob store `url` (environment `env`
    /// carries its credentials) with extra arguments.
    pub async fn start_on_blob_store(url: &str, env: &[(&str, &str)], args: &[&str]) -> TestServer {
        let mut all = vec!["--blob-store", url];
        all.extend_from_slice(args);
        Self::start_with_env(&all, env).await
    }

    /// `http://127.0.0.1:PORT` (no trailing slash). The port may change
    /// across [`TestServer::restart`].
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.public_port.unwrap_or(self.port))
    }

    /// `127.0.0.1:PORT`, the registry host as CLI clients spell it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.public_port.unwrap_or(self.port))
    }

    /// This process's own port (behind the proxy in the distributed
    /// configuration, where [`TestServer::base_url`] is the proxy's).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The distributed configuration's other parts, when this server is
    /// its first replica.
    pub fn cluster(&self) -> Option<&distributed::Cluster> {
        self.cluster.as_deref()
    }

    /// The data directory, to start another replica on it.
    pub fn shared_data_dir(&self) -> Arc<tempfile::TempDir> {
        self.data_dir.clone()
    }

    /// The PostgreSQL URL the server keeps its metadata in, if any.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The data directory the server was started with.
    pub fn data_dir(&self) -> &Path {
        self.outside_data_dir
            .as_deref()
            .unwrap_or(self.data_dir.path())
    }

    /// An HTTP client that is allowed to use the registry (the one place
    /// where credentials will be attached once authentication lands).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .default_headers(self.auth_headers())
            .pool_max_idle_per_host(8)
            .timeout(Duration::from_secs(120))
            .build()
            .expect("build reqwest client")
    }

    /// Headers every request carries: Basic credentials of the bootstrap
    /// Owner (berth accepts Basic on /v2 as well as bearer tokens).
    pub fn auth_headers(&self) -> HeaderMap {
        use base64::Engine as _;
        let mut h = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{OWNER_USER}:{OWNER_PASSWORD}"));
        h.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}")).expect("header value"),
        );
        h
    }

    /// [`TestServer::auth_headers`] as raw HTTP/1.1 header lines (each
    /// ending in CRLF), for tests that write requests by hand.
    pub fn raw_auth_lines(&self) -> String {
        self.auth_headers()
            .iter()
            .map(|(k, v)| format!("{k}: {}\r\n", v.to_str().expect("ascii header")))
            .collect()
    }

    /// Extra skopeo flags that authenticate against this server: an
    /// `--authfile` naming the bootstrap Owner (works for every subcommand;
    /// skopeo then follows the token flow).
    pub fn skopeo_auth_args(&self) -> Vec<String> {
        use base64::Engine as _;
        let path = self.log_dir.path().join("skopeo-auth.json");
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{OWNER_USER}:{OWNER_PASSWORD}"));
        let doc = json!({ "auths": { self.host(): { "auth": auth } } });
        std::fs::write(&path, doc.to_string()).expect("write skopeo auth file");
        vec!["--authfile".to_string(), path.display().to_string()]
    }

    /// Environment for tests/interop/*.py helpers: they log in with
    /// `BERTH_TEST_USERNAME` / `BERTH_TEST_PASSWORD`.
    pub fn interop_env(&self) -> Vec<(String, String)> {
        vec![
            ("BERTH_TEST_USERNAME".into(), OWNER_USER.into()),
            ("BERTH_TEST_PASSWORD".into(), OWNER_PASSWORD.into()),
        ]
    }

    /// Credentials for the `oci-client` crate.
    pub fn oci_client_auth(&self) -> oci_client::secrets::RegistryAuth {
        oci_client::secrets::RegistryAuth::Basic(OWNER_USER.into(), OWNER_PASSWORD.into())
    }

    /// A [`Registry`] whose client never reuses a connection, for tests
    /// that must not depend on how the server handles keep-alive after a
    /// refused request (spec_robustness tests that separately).
    pub fn registry_fresh_connections(&self) -> Registry {
        Registry {
            base: self.base_url(),
            client: reqwest::Client::builder()
                .default_headers(self.auth_headers())
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(120))
                .build()
                .expect("build reqwest client"),
        }
    }

    /// A [`Registry`] bound to this server.
    pub fn registry(&self) -> Registry {
        Registry {
            base: self.base_url(),
            client: self.client(),
        }
    }

    /// Kill the server with SIGKILL (no graceful shutdown) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // std's Child::kill sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kill (if still running) and start again on the same data directory.
    /// A fresh port is chosen; read [`TestServer::base_url`] again afterwards.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn_and_wait().await;
        if let Some(c) = &self.cluster {
            c.proxy.set_backends(vec![self.port, c.b.port]);
        }
    }

    /// Whether the child process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The last `max` bytes of the server's combined stdout/stderr logs.
    pub fn log_tail(&self, max: usize) -> String {
        let mut out = String::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(self.log_dir.path())
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        // Only the server's own output (the directory also holds client
        // credential files).
        entries.retain(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("run-"))
        });
        entries.sort();
        for path in entries {
            let mut s = String::new();
            if let Ok(mut f) = File::open(&path) {
                let _ = f.read_to_string(&mut s);
            }
            let start = s.len().saturating_sub(max);
            let start = (start..s.len())
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(s.len());
            out.push_str(&format!(
                "---- {} ----\n{}\n",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                &s[start..]
            ));
        }
        out
    }

    /// Spawn the process and wait until it answers (retrying on a new
    /// port when the chosen one was taken meanwhile).
    pub async fn spawn_and_wait(&mut self) {
        let mut last_failure = String::new();
        for _attempt in 0..5 {
            self.starts += 1;
            let port = free_port();
            let log_path = self
                .log_dir
                .path()
                .join(format!("run-{:02}.log", self.starts));
            let log = File::create(&log_path).expect("create server log");
            let log_err = log.try_clone().expect("clone log handle");
            let listen = format!("127.0.0.1:{port}");
            let mut cmd = Command::new(berth_bin());
            cmd.arg("serve")
                .arg("--listen")
                .arg(&listen)
                .arg("--data-dir")
                .arg(self.data_dir())
                .args(&self.extra_args)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log_err));
            if std::env::var_os("RUST_LOG").is_none() {
                cmd.env("RUST_LOG", "info");
            }
            cmd.env("BERTH_BOOTSTRAP_PASSWORD", OWNER_PASSWORD);
            if let Some(url) = &self.database_url {
                cmd.env("BERTH_DATABASE_URL", url);
            }
            cmd.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
            let child = cmd.spawn().expect("spawn berth serve");
            self.child = Some(child);
            self.port = port;
            match self.wait_ready().await {
                Ok(()) => return,
                Err(e) => {
                    self.kill9();
                    last_failure = format!("{e}\n{}", self.log_tail(4000));
                    // A lost race for the port is retried on a new one;
                    // anything else is a real start-up failure.
                    if !last_failure.to_ascii_lowercase().contains("in use") {
                        break;
                    }
                }
            }
        }
        panic!("berth serve did not start:\n{last_failure}");
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        // This process's own port, not the proxy's.
        let url = format!("http://127.0.0.1:{}/v2/", self.port);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("berth serve exited during start-up: {status}"));
                }
            }
            // Any HTTP answer (200, 401, ...) means the listener is up.
            if client.get(&url).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "berth serve did not answer GET /v2/ within {STARTUP_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "==== berth server log (test failed) ====\n{}",
                self.log_tail(8000)
            );
        }
        self.kill9();
    }
}

/// A port that was free a moment ago (bind :0, read, drop).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A loopback port that refuses connections for as long as the returned
/// socket lives: bound (so no other process can take it) but never
/// listening. Unlike a port from [`free_port`], a server another test
/// starts meanwhile cannot end up on it.
pub fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("local addr").port();
    (socket, port)
}

// ---------------------------------------------------------------------------
// Digests and random data
// ---------------------------------------------------------------------------

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(data)))
}

/// `data` hashed with the algorithm named in `digest` equals `digest`.
pub fn digest_matches(digest: &str, data: &[u8]) -> bool {
    if digest.starts_with("sha256:") {
        sha256(data) == digest
    } else if digest.starts_with("sha512:") {
        sha512(data) == digest
    } else {
        false
    }
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

/// A random lowercase name component, e.g. for unique repositories.
pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| {
            let c: u8 = rng.gen_range(0..36);
            if c < 10 {
                (b'0' + c) as char
            } else {
                (b'a' + c - 10) as char
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Media types
// ---------------------------------------------------------------------------

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The OCI empty JSON blob `{}` and its well-known digest.
pub const EMPTY_JSON: &[u8] = b"{}";
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// The error codes the distribution spec allows in `errors[].code`
/// (plus the legacy Docker codes the spec says clients may encounter).
pub const SPEC_ERROR_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "TAG_INVALID",
    "MANIFEST_UNVERIFIED",
];

// ---------------------------------------------------------------------------
// Descriptors and image fixtures
// ---------------------------------------------------------------------------

/// A descriptor value for `data`.
pub fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
}

/// An image made of a config blob, layer blobs and the manifest that ties
/// them together. All bytes are random, so every fixture is unique.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub media_type: String,
}

impl Image {
    /// An OCI image with `n_layers` random layers of `layer_size` bytes.
    pub fn random(n_layers: usize, layer_size: usize) -> Image {
        let layers: Vec<Vec<u8>> = (0..n_layers).map(|_| random_bytes(layer_size)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256(l)).collect::<Vec<_>>()},
            "config": {},
            "berth-test": random_suffix(),
        }))
        .expect("serialize config");
        Image::from_parts(config, layers)
    }

    /// An OCI image manifest over the given config and layers.
    pub fn from_parts(config: Vec<u8>, layers: Vec<Vec<u8>>) -> Image {
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config),
            "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
        }))
        .expect("serialize manifest");
        Image {
            config,
            layers,
            manifest,
            media_type: OCI_MANIFEST.to_string(),
        }
    }

    pub fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    /// Every blob the manifest references (config first).
    pub fn blobs(&self) -> Vec<&[u8]> {
        std::iter::once(self.config.as_slice())
            .chain(self.layers.iter().map(|l| l.as_slice()))
            .collect()
    }
}

/// The manifest of an artifact that refers to `subject`: config is the empty
/// JSON blob, one layer with `layer` bytes, optional `artifactType` and
/// annotations.
pub fn referrer_manifest(
    subject: &Value,
    artifact_type: Option<&str>,
    config_media_type: &str,
    layer: &[u8],
    annotations: &Value,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_media_type, "digest": EMPTY_JSON_DIGEST, "size": 2},
        "layers": [descriptor("application/octet-stream", layer)],
        "subject": subject,
        "annotations": annotations,
    });
    if let Some(at) = artifact_type {
        m["artifactType"] = json!(at);
    }
    serde_json::to_vec(&m).expect("serialize referrer")
}

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------

/// A response read to the end, so that tests can inspect headers and body
/// together and print both on failure.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// `METHOD url`, for failure messages.
    pub what: String,
}

impl Reply {
    pub async fn read(what: String, resp: Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Reply {
            status,
            headers,
            body,
            what,
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(|s| s.to_string())
    }

    /// Header that must be present.
    pub fn must_header(&self, name: &str) -> String {
        self.header(name)
            .unwrap_or_else(|| panic!("{}: missing header {name}\n{}", self.what, self.describe()))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{}: body is not JSON ({e})\n{}", self.what, self.describe())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status, headers and (a prefix of) the body, for assertion messages.
    pub fn describe(&self) -> String {
        let mut s = format!("status {}\n", self.status);
        for (k, v) in &self.headers {
            s.push_str(&format!("  {k}: {}\n", v.to_str().unwrap_or("<binary>")));
        }
        let body = self.text();
        let cut: String = body.chars().take(600).collect();
        s.push_str(&format!("  body: {cut}"));
        s
    }

    /// Assert the status code.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: expected status {status}\n{}",
            self.what,
            self.describe()
        );
        self
    }

    /// Assert one of several status codes.
    #[track_caller]
    pub fn expect_status_in(&self, statuses: &[u16]) -> &Self {
        assert!(
            statuses.contains(&self.status.as_u16()),
            "{}: expected status in {statuses:?}\n{}",
            self.what,
            self.describe()
        );
        self
    }

    /// Assert an error response: `status`, a spec-shaped JSON envelope
    /// (`{"errors":[{"code","message",...}]}`) whose first code is one of
    /// `codes`. Returns the envelope.
    #[track_caller]
    pub fn expect_error(&self, status: u16, codes: &[&str]) -> Value {
        self.expect_status(status);
        let v = self.expect_error_envelope();
        let code = v["errors"][0]["code"].as_str().unwrap_or_default();
        assert!(
            codes.contains(&code),
            "{}: expected error code in {codes:?}, got {code}\n{}",
            self.what,
            self.describe()
        );
        v
    }

    /// Assert the body is a spec error envelope with valid codes.
    #[track_caller]
    pub fn expect_error_envelope(&self) -> Value {
        let v: Value = serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: error body is not JSON ({e})\n{}",
                self.what,
                self.describe()
            )
        });
        let errors = v["errors"].as_array().unwrap_or_else(|| {
            panic!(
                "{}: error body has no \"errors\" array\n{}",
                self.what,
                self.describe()
            )
        });
        assert!(
            !errors.is_empty(),
            "{}: empty errors array\n{}",
            self.what,
            self.describe()
        );
        for e in errors {
            let code = e["code"].as_str().unwrap_or_else(|| {
                panic!("{}: error without code\n{}", self.what, self.describe())
            });
            // "The code field MUST be a unique identifier, containing only
            // uppercase alphabetic characters and underscores."
            assert!(
                !code.is_empty() && code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{}: malformed error code {code:?}\n{}",
                self.what,
                self.describe()
            );
            assert!(
                SPEC_ERROR_CODES.contains(&code),
                "{}: error code {code} is not one of the spec's codes\n{}",
                self.what,
                self.describe()
            );
            // "The message field is OPTIONAL, and if present, it SHOULD be a
            // human readable string" — berth always sends one.
            assert!(
                e["message"].is_string(),
                "{}: error without a message string\n{}",
                self.what,
                self.describe()
            );
        }
        v
    }
}

/// Append a query parameter (form-encoded) to an absolute URL.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let mut u = Url::parse(url).unwrap_or_else(|e| panic!("bad url {url}: {e}"));
    u.query_pairs_mut().append_pair(key, value);
    u.to_string()
}

/// A client for one registry with spec-level helpers.
#[derive(Clone)]
pub struct Registry {
    pub base: String,
    pub client: reqwest::Client,
}

/// Helper to build requests with a fluent API and read the reply.
pub struct Req {
    what: String,
    rb: reqwest::RequestBuilder,
}

impl Req {
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.rb = self.rb.header(k, v);
        self
    }
    pub fn body(mut self, b: impl Into<reqwest::Body>) -> Self {
        self.rb = self.rb.body(b);
        self
    }
    /// Send, returning transport errors instead of panicking.
    pub async fn try_send(self) -> Result<Reply, reqwest::Error> {
        let what = self.what;
        let resp = self.rb.send().await?;
        Ok(Reply::read(what, resp).await)
    }

    pub async fn send(self) -> Reply {
        let what = self.what;
        let resp = self
            .rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
        Reply::read(what, resp).await
    }
}

impl Registry {
    /// Absolute URL for `path` (which starts with `/`), or `path` itself if
    /// it is already absolute.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    pub fn req(&self, method: Method, path: &str) -> Req {
        let url = self.url(path);
        Req {
            what: format!("{method} {url}"),
            rb: self.client.request(method, url),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.req(Method::GET, path).send().await
    }

    pub async fn head(&self, path: &str) -> Reply {
        self.req(Method::HEAD, path).send().await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.req(Method::DELETE, path).send().await
    }

    /// Resolve a `Location` header (absolute or relative) against the server.
    pub fn resolve_location(&self, location: &str) -> String {
        let base = Url::parse(&format!("{}/", self.base)).expect("base url");
        base.join(location)
            .unwrap_or_else(|e| panic!("unusable Location {location:?}: {e}"))
            .to_string()
    }

    /// `POST /v2/<repo>/blobs/uploads/`; asserts 202 + Location and returns
    /// the absolute upload URL.
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .header("Content-Length", "0")
            .send()
            .await;
        r.expect_status(202);
        self.resolve_location(&r.must_header("Location"))
    }

    /// Push a blob with POST + PUT; asserts 201 and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let loc = self.start_upload(repo).await;
        let r = self
            .req(Method::PUT, &with_query(&loc, "digest", &digest))
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await;
        r.expect_status(201);
        digest
    }

    /// PUT a manifest and return the raw reply.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Reply {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("Content-Type", media_type)
            .body(body.to_vec())
            .send()
            .await
    }

    /// PUT a manifest, asserting 201; returns the reply.
    pub async fn put_manifest_ok(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Reply {
        let r = self.put_manifest(repo, reference, media_type, body).await;
        r.expect_status(201);
        r
    }

    /// Push every blob of `image` and then its manifest under `reference`.
    pub async fn push_image(&self, repo: &str, reference: &str, image: &Image) -> Reply {
        for b in image.blobs() {
            self.push_blob(repo, b).await;
        }
        self.put_manifest_ok(repo, reference, &image.media_type, &image.manifest)
            .await
    }

    /// GET `/v2/<repo>/manifests/<reference>` with a broad Accept header.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Reply {
        self.req(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
            .header(
                "Accept",
                &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", "),
            )
            .send()
            .await
    }

    pub async fn get_blob(&self, repo: &str, digest: &str) -> Reply {
        self.get(&format!("/v2/{repo}/blobs/{digest}")).await
    }

    pub async fn head_blob(&self, repo: &str, digest: &str) -> Reply {
        self.head(&format!("/v2/{repo}/blobs/{digest}")).await
    }

    /// The tags of `repo` (asserts 200).
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let r = self.get(&format!("/v2/{repo}/tags/list")).await;
        r.expect_status(200);
        let v = r.json();
        assert_eq!(v["name"], json!(repo), "tags list names its repository");
        v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| t.as_str().expect("tag is a string").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Parse an RFC 5988 `Link: <url>; rel="next"` header into its URL.
pub fn parse_next_link(link: &str) -> Option<String> {
    for part in link.split(',') {
        let part = part.trim();
        let (url_part, params) = part.split_once(';')?;
        let url = url_part.trim().strip_prefix('<')?.strip_suffix('>')?;
        if params.split(';').any(|p| {
            matches!(
                p.trim().replace(' ', "").as_str(),
                "rel=\"next\"" | "rel=next"
            )
        }) {
            return Some(url.to_string());
        }
    }
    None
}

/// `Range: 0-<end>` → `end` (inclusive), as the upload endpoints report it.
pub fn parse_upload_range(range: &str) -> (u64, u64) {
    let r = range.trim();
    let r = r.strip_prefix("bytes=").unwrap_or(r);
    let (a, b) = r
        .split_once('-')
        .unwrap_or_else(|| panic!("malformed upload Range {range:?}"));
    (
        a.parse()
            .unwrap_or_else(|_| panic!("malformed Range {range:?}")),
        b.parse()
            .unwrap_or_else(|_| panic!("malformed Range {range:?}")),
    )
}

/// Whether an external program is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths).any(|dir| {
                let p = dir.join(program);
                p.is_file()
            })
        })
        .unwrap_or(false)
}
pub mod cli;
