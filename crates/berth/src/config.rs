//! `berth serve` configuration: flags and environment variables first, then
//! an optional `berth.toml`, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_store::BlobStoreLocation;
use berth_store::DatabaseUrl;
use clap::{Args, ValueEnum};
use serde::Deserialize;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./berth-data";
/// Config file read from the working directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "berth.toml";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How upload bytes are written to the blob store's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadIo {
    /// `O_DIRECT` from recycled buffers (page cache untouched; falls back
    /// per upload where refused).
    Direct,
    /// Through the page cache (a pull right after a push reads memory).
    Buffered,
}

/// Flags of `berth serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "BERTH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory holding blobs and the metadata database [default: ./berth-data].
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: ./berth.toml when it exists].
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, value_enum, env = "BERTH_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// TLS certificate chain (PEM); serve HTTPS with --tls-key.
    #[arg(long, env = "BERTH_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "BERTH_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Generate (or reuse) a self-signed development certificate for this
    /// hostname under <data-dir>/tls and serve HTTPS with it.
    #[arg(long, env = "BERTH_TLS_SELF_SIGNED", value_name = "HOSTNAME", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: Option<String>,
    /// The registry's login server, host[:port] as clients name it: token
    /// audience and challenge service [default: the listen address; localhost
    /// when listening on all interfaces].
    #[arg(long, env = "BERTH_LOGIN_SERVER", value_name = "HOST[:PORT]")]
    pub login_server: Option<String>,
    /// Registry name (5-50 letters and digits); also the admin account's
    /// username [default: berth].
    #[arg(long, env = "BERTH_REGISTRY_NAME")]
    pub registry_name: Option<String>,
    /// Token endpoint URL advertised in the challenge [default:
    /// http(s)://<login-server>/oauth2/token]. Set it when a TLS-terminating
    /// proxy sits in front of berth.
    #[arg(long, env = "BERTH_REALM", value_name = "URL")]
    pub realm: Option<String>,
    /// A proxy (IP or CIDR) whose X-Forwarded-For is trusted; repeatable.
    #[arg(
        long = "trusted-proxy",
        env = "BERTH_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<String>,
    /// Turn authentication off: every request is allowed. For local
    /// experiments and benchmarks only.
    #[arg(long, env = "BERTH_AUTH_DISABLED")]
    pub auth_disabled: bool,
    /// Days audit events are kept before background pruning [default: 30].
    #[arg(long, env = "BERTH_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Also write audit events as JSON lines to this file (appended), or to
    /// standard output with `-`.
    #[arg(long, env = "BERTH_AUDIT_LOG", value_name = "PATH|-")]
    pub audit_log: Option<String>,
    /// How uploads are written: `direct` (O_DIRECT, the default) or
    /// `buffered` (through the page cache).
    #[arg(long, value_enum, env = "BERTH_UPLOAD_IO")]
    pub upload_io: Option<UploadIo>,
    /// Where blob bytes are kept: file:///path, s3://bucket[/prefix]
    /// (credentials from AWS_*), azure://container[/prefix] (credentials
    /// from AZURE_STORAGE_*) [default: file://<data-dir>/blobs].
    #[arg(long, env = "BERTH_BLOB_STORE", value_name = "URL")]
    pub blob_store: Option<String>,
    /// Answer blob GETs on object storage with a 307 redirect to a
    /// presigned URL valid for 5 minutes (after the authorization check).
    #[arg(long, env = "BERTH_BLOB_REDIRECT")]
    pub blob_redirect: bool,
    /// Keep metadata (repositories, manifests, identities, audit events) in
    /// PostgreSQL instead of SQLite in the data directory, e.g.
    /// `postgres://berth@db:5432/berth`; several replicas may share it.
    /// Pass a password through the environment or berth.toml, not the
    /// command line: it is never printed.
    #[arg(
        long,
        env = "BERTH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<Unprinted>,
    /// Accept sparse manifests: image manifests whose layers, and indexes
    /// whose child manifests, were not pushed (mirroring part of a
    /// multi-arch image under its original digest). Off: every reference
    /// must be in the repository.
    #[arg(long, env = "BERTH_SPARSE_MANIFESTS")]
    pub sparse_manifests: bool,
    /// With --sparse-manifests: platforms (os/arch[/variant], comma-separated)
    /// whose index children must still be present, e.g. linux/amd64,linux/arm64.
    #[arg(
        long,
        env = "BERTH_INDEX_PLATFORMS",
        value_delimiter = ',',
        value_name = "OS/ARCH[/VARIANT]"
    )]
    pub index_platforms: Vec<String>,
    /// Collect garbage in the background this often, e.g. `6h` (off by
    /// default; with several replicas one collects at a time).
    #[arg(long, env = "BERTH_GC_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub gc_interval: Option<std::time::Duration>,
    /// Keep unreferenced blob links and blob bytes younger than this, so a
    /// client pushing layers before its manifest never loses them
    /// [default: 24h].
    #[arg(long, env = "BERTH_GC_GRACE", value_name = "DURATION", value_parser = parse_grace)]
    pub gc_grace: Option<std::time::Duration>,
    /// Connection limits and timeouts.
    #[command(flatten)]
    pub connections: ConnArgs,
}

/// Connection limits and timeouts of `berth serve` (see docs/configuration.md).
#[derive(Args, Debug, Clone, Default)]
pub struct ConnArgs {
    /// Time allowed for the TLS handshake, a connection's first request
    /// and each request head, e.g. `20s` [default: 20s].
    #[arg(long, env = "BERTH_HEADER_READ_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub header_read_timeout: Option<std::time::Duration>,
    /// Close a connection with no request and no traffic for this long,
    /// e.g. `75s` [default: 75s].
    #[arg(long, env = "BERTH_IDLE_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<std::time::Duration>,
    /// Open client connections at most [default: 4096].
    #[arg(long, env = "BERTH_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open connections from one client address (IPv6: one /64) at most;
    /// trusted proxies are exempt [default: 256].
    #[arg(long, env = "BERTH_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
}

/// A duration such as `20s`, `2m` or `500ms` (a bare number is seconds).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("'{s}' is not a duration like 20s, 2m or 500ms: {e}"))?,
    };
    if d.is_zero() {
        return Err(format!("'{s}': the duration must be more than zero"));
    }
    Ok(d)
}

/// The garbage-collection grace period: a duration, where zero is allowed
/// (`0s`: no grace at all; for tests).
fn parse_grace(s: &str) -> Result<std::time::Duration, String> {
    match s.trim() {
        "0" | "0s" | "0ms" => Ok(std::time::Duration::ZERO),
        other => parse_duration(other),
    }
}

/// A flag value that `Debug` does not show (the database URL may carry a
/// password). Parsing never fails, so clap never echoes it in an error;
/// [`DatabaseUrl::parse`] checks it with redacted messages.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Unprinted(pub String);

impl std::fmt::Debug for Unprinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unprinted(***)")
    }
}

impl std::str::FromStr for Unprinted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Unprinted(s.to_string()))
    }
}

/// The `berth.toml` file (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Log format.
    pub log_format: Option<LogFormat>,
    /// TLS settings.
    #[serde(default)]
    pub tls: FileTls,
    /// Login server.
    pub login_server: Option<String>,
    /// Registry name.
    pub registry_name: Option<String>,
    /// Token endpoint URL for the challenge.
    pub realm: Option<String>,
    /// Trusted proxies.
    pub trusted_proxies: Option<Vec<String>>,
    /// Authentication off.
    pub auth_disabled: Option<bool>,
    /// Audit retention, days.
    pub audit_retention_days: Option<u32>,
    /// Audit JSON-lines stream (path or `-`).
    pub audit_log: Option<String>,
    /// Upload write mode.
    pub upload_io: Option<UploadIo>,
    /// Blob store URL.
    pub blob_store: Option<String>,
    /// Redirect blob GETs to presigned URLs.
    pub blob_redirect: Option<bool>,
    /// PostgreSQL URL for metadata.
    pub database_url: Option<Unprinted>,
    /// Accept sparse manifests.
    pub sparse_manifests: Option<bool>,
    /// Platforms whose index children must be present (with sparse manifests).
    pub index_platforms: Option<Vec<String>>,
    /// Background garbage collection interval (a duration string).
    pub gc_interval: Option<String>,
    /// Garbage-collection grace period (a duration string).
    pub gc_grace: Option<String>,
    /// Header-read timeout (a duration string).
    pub header_read_timeout: Option<String>,
    /// Idle timeout (a duration string).
    pub idle_timeout: Option<String>,
    /// Global connection limit.
    pub max_connections: Option<usize>,
    /// Per-address connection limit.
    pub max_connections_per_address: Option<usize>,
}

/// `[tls]` in `berth.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    /// Certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Private key (PEM).
    pub key: Option<PathBuf>,
    /// Hostname for a generated self-signed certificate.
    pub self_signed: Option<String>,
}

/// How TLS is configured.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsSetting {
    /// Plain HTTP.
    Off,
    /// Certificate and key files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Generated self-signed certificate for a hostname.
    SelfSigned(String),
}

/// The resolved configuration of `berth serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// TLS.
    pub tls: TlsSetting,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Login server (lowercase host[:port]).
    pub login_server: String,
    /// Registry name.
    pub registry_name: String,
    /// Challenge realm.
    pub realm: String,
    /// Trusted proxies.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Authentication off.
    pub auth_disabled: bool,
    /// Audit retention, days.
    pub audit_retention_days: u32,
    /// Audit JSON-lines stream (path or `-`).
    pub audit_log: Option<String>,
    /// Upload write mode.
    pub upload_io: UploadIo,
    /// Where blob bytes are kept (`None`: `<data-dir>/blobs`).
    pub blob_store: Option<BlobStoreLocation>,
    /// Redirect blob GETs on object storage to presigned URLs.
    pub blob_redirect: bool,
    /// PostgreSQL for metadata (`None`: SQLite in the data directory).
    pub database_url: Option<DatabaseUrl>,
    /// Which references a pushed manifest needs in its repository.
    pub manifest_validation: berth_store::ManifestValidation,
    /// Connection limits and timeouts.
    pub connections: berth_server::conn::ConnLimits,
    /// Background garbage collection every this long (`None`: off).
    pub gc_interval: Option<std::time::Duration>,
    /// The collector's grace period.
    pub gc_grace: std::time::Duration,
}

/// Default audit retention, days.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 30;
/// Longest audit retention accepted, days (100 years).
pub const MAX_AUDIT_RETENTION_DAYS: u32 = 36_500;

/// Default registry name.
pub const DEFAULT_REGISTRY_NAME: &str = "berth";

/// Check a login server given by the user: lowercase `host[:port]`, no
/// scheme, no path (the same form checks `berth login` makes).
pub fn validate_login_server(s: &str) -> anyhow::Result<()> {
    berth_cli::names::check_form(s)
}

/// Check a registry name: 5-50 ASCII letters and digits.
pub fn validate_registry_name(s: &str) -> anyhow::Result<()> {
    if !(5..=50).contains(&s.len()) || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        anyhow::bail!("registry name '{s}' must be 5-50 letters and digits");
    }
    Ok(())
}

impl ServeArgs {
    /// Merge flags/env with the config file and defaults.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let (file, config_file) = match &self.config {
            Some(path) => (read_file(path)?, Some(path.clone())),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => (
                read_file(Path::new(DEFAULT_CONFIG_FILE))?,
                Some(PathBuf::from(DEFAULT_CONFIG_FILE)),
            ),
            None => (FileConfig::default(), None),
        };
        let mut connections = self.connections.resolve(&file)?;
        let listen = match self.listen.or(file.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let tls = if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            TlsSetting::Files { cert, key }
        } else if let Some(host) = self.tls_self_signed {
            TlsSetting::SelfSigned(host)
        } else if let (Some(cert), Some(key)) = (file.tls.cert, file.tls.key) {
            TlsSetting::Files { cert, key }
        } else if let Some(host) = file.tls.self_signed {
            TlsSetting::SelfSigned(host)
        } else {
            TlsSetting::Off
        };
        let login_server = match self.login_server.or(file.login_server) {
            Some(l) => l,
            None if listen.ip().is_unspecified() => format!("localhost:{}", listen.port()),
            None => listen.to_string(),
        };
        validate_login_server(&login_server)?;
        let registry_name = self
            .registry_name
            .or(file.registry_name)
            .unwrap_or_else(|| DEFAULT_REGISTRY_NAME.to_string());
        validate_registry_name(&registry_name)?;
        let scheme = if tls == TlsSetting::Off {
            "http"
        } else {
            "https"
        };
        let realm = self
            .realm
            .or(file.realm)
            .unwrap_or_else(|| format!("{scheme}://{login_server}/oauth2/token"));
        let proxies = if self.trusted_proxies.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            self.trusted_proxies
        };
        let mut trusted_proxies = Vec::new();
        for p in proxies {
            let net = p
                .parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| anyhow::anyhow!("trusted proxy '{p}' is not an IP address or CIDR"))?;
            trusted_proxies.push(net);
        }
        let audit_retention_days = self
            .audit_retention_days
            .or(file.audit_retention_days)
            .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS);
        if !(1..=MAX_AUDIT_RETENTION_DAYS).contains(&audit_retention_days) {
            anyhow::bail!(
                "audit retention must be 1 to {MAX_AUDIT_RETENTION_DAYS} days, got {audit_retention_days}"
            );
        }
        let blob_store = match self
            .blob_store
            .or(file.blob_store)
            .filter(|u| !u.is_empty())
        {
            Some(url) => Some(
                url.parse::<BlobStoreLocation>()
                    .map_err(|e| anyhow::anyhow!("--blob-store: {e}"))?,
            ),
            None => None,
        };
        let database_url = self
            .database_url
            .or(file.database_url)
            .filter(|u| !u.0.trim().is_empty())
            .map(|u| DatabaseUrl::parse(&u.0).map_err(|e| anyhow::anyhow!(e)))
            .transpose()?;
        let platforms = if self.index_platforms.is_empty() {
            file.index_platforms.unwrap_or_default()
        } else {
            self.index_platforms
        };
        let manifest_validation = manifest_validation(
            self.sparse_manifests || file.sparse_manifests.unwrap_or(false),
            &platforms,
        )?;
        connections.exempt = trusted_proxies.clone();
        let gc_interval = match self.gc_interval {
            Some(d) => Some(d),
            None => file
                .gc_interval
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| parse_duration(s).map_err(|e| anyhow::anyhow!("gc_interval: {e}")))
                .transpose()?,
        };
        let gc_grace = match self.gc_grace {
            Some(d) => d,
            None => file
                .gc_grace
                .as_deref()
                .map(|s| parse_grace(s).map_err(|e| anyhow::anyhow!("gc_grace: {e}")))
                .transpose()?
                .unwrap_or(berth_store::gc::DEFAULT_GRACE),
        };
        Ok(ServeConfig {
            gc_interval,
            gc_grace,
            blob_redirect: self.blob_redirect || file.blob_redirect.unwrap_or(false),
            blob_store,
            manifest_validation,
            connections,
            database_url,
            upload_io: self
                .upload_io
                .or(file.upload_io)
                .unwrap_or(UploadIo::Direct),
            audit_retention_days,
            audit_log: self.audit_log.or(file.audit_log).filter(|p| !p.is_empty()),
            login_server,
            registry_name,
            realm,
            trusted_proxies,
            auth_disabled: self.auth_disabled || file.auth_disabled.unwrap_or(false),
            listen,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            tls,
            config_file,
        })
    }
}

/// The manifest validation setting from `--sparse-manifests` and
/// `--index-platforms` (which only means something with sparse manifests).
fn manifest_validation(
    sparse: bool,
    platforms: &[String],
) -> anyhow::Result<berth_store::ManifestValidation> {
    let index_platforms = platforms
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.parse::<berth_core::Platform>()
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !sparse && !index_platforms.is_empty() {
        anyhow::bail!(
            "--index-platforms (index_platforms) only applies with --sparse-manifests \
             (sparse_manifests = true): without it every child of an index must be present"
        );
    }
    Ok(berth_store::ManifestValidation {
        sparse,
        index_platforms,
    })
}

impl ConnArgs {
    /// Merge with the file's keys and the defaults (the caller adds the
    /// trusted proxies, which are exempt from the per-address limit).
    fn resolve(self, file: &FileConfig) -> anyhow::Result<berth_server::conn::ConnLimits> {
        use berth_server::conn as c;
        let from_file = |key: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| parse_duration(s).map_err(|e| anyhow::anyhow!("{key}: {e}")))
                .transpose()
        };
        let header_read_timeout = match self.header_read_timeout {
            Some(d) => d,
            None => from_file("header_read_timeout", &file.header_read_timeout)?
                .unwrap_or(c::DEFAULT_HEADER_READ_TIMEOUT),
        };
        let idle_timeout = match self.idle_timeout {
            Some(d) => d,
            None => {
                from_file("idle_timeout", &file.idle_timeout)?.unwrap_or(c::DEFAULT_IDLE_TIMEOUT)
            }
        };
        let max_connections = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(c::DEFAULT_MAX_CONNECTIONS);
        let max_connections_per_address = self
            .max_connections_per_address
            .or(file.max_connections_per_address)
            .unwrap_or(c::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
        if max_connections == 0 || max_connections_per_address == 0 {
            anyhow::bail!("connection limits must be at least 1");
        }
        Ok(c::ConnLimits {
            header_read_timeout,
            idle_timeout,
            max_connections,
            max_connections_per_address,
            exempt: Vec::new(),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): any `berth.toml` text parses or is refused
    /// without a panic.
    #[test]
    fn fuzz_config_files() {
        berth_core::fuzz::run_str(
            "berth_toml",
            &[
                "listen = \"127.0.0.1:6000\"\ndata_dir = \"/tmp/x\"\n[tls]\nself_signed = \"reg.local\"\n",
                "trusted_proxies = [\"10.0.0.0/8\"]\naudit_retention_days = 30\n",
                "[limits]\nheader_read_timeout = \"20s\"\n",
                "a = [1, 2",
            ],
            |text| {
                let _ = toml::from_str::<FileConfig>(text);
            },
        );
    }

    #[test]
    fn flags_win_over_file_and_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:6000\"\ndata_dir = \"/tmp/x\"\n[tls]\nself_signed = \"reg.local\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            data_dir: Some(PathBuf::from("/tmp/y")),
            ..Default::default()
        };
        let c = args.resolve().expect("resolve");
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));
        assert_eq!(c.tls, TlsSetting::SelfSigned("reg.local".into()));
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.upload_io, UploadIo::Direct);

        std::fs::write(&path, "upload_io = \"buffered\"\n").expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert_eq!(
            args.resolve().expect("resolve").upload_io,
            UploadIo::Buffered
        );

        std::fs::write(&path, "bogus = 1\n").expect("write");
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(args.resolve().is_err(), "unknown keys are refused");
    }

    #[test]
    fn manifest_validation_is_strict_by_default_and_checked() {
        let c = ServeArgs::default().resolve().expect("defaults");
        assert_eq!(
            c.manifest_validation,
            berth_store::ManifestValidation::default()
        );
        let args = ServeArgs {
            sparse_manifests: true,
            index_platforms: vec!["linux/amd64".into(), "linux/arm/v7".into()],
            ..Default::default()
        };
        let v = args.resolve().expect("resolve").manifest_validation;
        assert!(v.sparse);
        assert_eq!(v.index_platforms.len(), 2);
        assert_eq!(v.index_platforms[1].variant.as_deref(), Some("v7"));
        let args = ServeArgs {
            index_platforms: vec!["linux/amd64".into()],
            ..Default::default()
        };
        assert!(args.resolve().is_err(), "platforms without sparse");
        let args = ServeArgs {
            sparse_manifests: true,
            index_platforms: vec!["amd64".into()],
            ..Default::default()
        };
        assert!(args.resolve().is_err(), "malformed platform");

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.toml");
        std::fs::write(
            &path,
            "sparse_manifests = true\nindex_platforms = [\"linux/arm64\"]\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        let v = args.resolve().expect("resolve").manifest_validation;
        assert!(v.sparse);
        assert_eq!(v.index_platforms[0].to_string(), "linux/arm64");
    }

    #[test]
    fn audit_settings_default_and_validate() {
        let c = ServeArgs::default().resolve().expect("defaults");
        assert_eq!(c.audit_retention_days, DEFAULT_AUDIT_RETENTION_DAYS);
        assert_eq!(c.audit_log, None);
        let args = ServeArgs {
            audit_retention_days: Some(0),
            ..Default::default()
        };
        assert!(args.resolve().is_err(), "zero days is refused");
        let args = ServeArgs {
            audit_retention_days: Some(7),
            audit_log: Some("-".into()),
            ..Default::default()
        };
        let c = args.resolve().expect("resolve");
        assert_eq!(c.audit_retention_days, 7);
        assert_eq!(c.audit_log.as_deref(), Some("-"));
    }

    #[test]
    fn database_url_from_flag_or_file_never_printed() {
        let c = ServeArgs::default().resolve().expect("defaults");
        assert!(c.database_url.is_none(), "SQLite unless asked");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.toml");
        std::fs::write(&path, "database_url = \"postgres://b:file-pw@db/berth\"\n").expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let c = args.resolve().expect("resolve");
        let url = c.database_url.as_ref().expect("from the file");
        assert_eq!(url.expose(), "postgres://b:file-pw@db/berth");
        assert!(!format!("{c:?}").contains("file-pw"));
        let args = ServeArgs {
            config: Some(path),
            database_url: Some(Unprinted("postgres://b:flag-pw@db2/berth".into())),
            ..Default::default()
        };
        let c = args.resolve().expect("resolve");
        assert_eq!(
            c.database_url.expect("flag").to_string(),
            "postgres://b:***@db2/berth"
        );
        let args = ServeArgs {
            database_url: Some(Unprinted("sqlite://x:pw-in-url@y".into())),
            ..Default::default()
        };
        let err = args.resolve().expect_err("only postgres").to_string();
        assert!(!err.contains("pw-in-url"), "{err}");
    }

    #[test]
    fn connection_limits_from_file_and_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.toml");
        std::fs::write(
            &path,
            "header_read_timeout = \"3s\"\nidle_timeout = \"2m\"\nmax_connections = 10\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            connections: ConnArgs {
                max_connections_per_address: Some(4),
                ..ConnArgs::default()
            },
            ..ServeArgs::default()
        };
        let c = args.resolve().expect("resolve").connections;
        assert_eq!(c.header_read_timeout, std::time::Duration::from_secs(3));
        assert_eq!(c.idle_timeout, std::time::Duration::from_secs(120));
        assert_eq!(c.max_connections, 10);
        assert_eq!(c.max_connections_per_address, 4);
        assert_eq!(parse_duration("15"), Ok(std::time::Duration::from_secs(15)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn blob_store_settings() {
        let c = ServeArgs::default().resolve().expect("defaults");
        assert_eq!(c.blob_store, None);
        assert!(!c.blob_redirect);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.toml");
        std::fs::write(
            &path,
            "blob_store = \"s3://bkt/reg?endpoint=http://127.0.0.1:9000\"\nblob_redirect = true\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        let c = args.resolve().expect("resolve");
        assert!(c.blob_redirect);
        assert!(
            matches!(c.blob_store, Some(BlobStoreLocation::S3 { ref bucket, .. }) if bucket == "bkt")
        );
        let args = ServeArgs {
            blob_store: Some("s3://key:secret@bkt".into()),
            ..Default::default()
        };
        let e = format!("{:#}", args.resolve().expect_err("credentials refused"));
        assert!(!e.contains("secret"), "{e}");
    }
}
