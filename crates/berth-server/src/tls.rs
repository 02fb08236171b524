//! HTTPS with rustls: loading PEM files and generating a self-signed
//! development certificate (the accept loop is [`crate::conn`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

/// Certificate chain and private key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Create (or reuse) a self-signed certificate for `hostname` under `dir`.
/// Returns the files; the certificate also covers localhost and 127.0.0.1.
pub fn self_signed(dir: &Path, hostname: &str) -> anyhow::Result<TlsFiles> {
    let files = TlsFiles {
        cert: dir.join(format!("{hostname}.crt")),
        key: dir.join(format!("{hostname}.key")),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut names = vec![hostname.to_string()];
    for extra in ["localhost", "127.0.0.1", "::1"] {
        if extra != hostname {
            names.push(extra.to_string());
        }
    }
    let cert = rcgen::generate_simple_self_signed(names).context("generating certificate")?;
    std::fs::write(&files.cert, cert.cert.pem())
        .with_context(|| format!("writing {}", files.cert.display()))?;
    write_private(&files.key, cert.key_pair.serialize_pem().as_bytes())?;
    Ok(files)
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

/// Build a rustls server configuration from PEM files.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&files.cert)
            .with_context(|| format!("opening certificate {}", files.cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading certificate {}", files.cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no certificate in {}",
        files.cert.display()
    );
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&files.key)
            .with_context(|| format!("opening key {}", files.key.display()))?,
    ))
    .with_context(|| format!("reading key {}", files.key.display()))?
    .ok_or_else(|| anyhow::anyhow!("no private key in {}", files.key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
