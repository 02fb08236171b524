//! Which certificates this machine trusts for the diagnosis: the webpki
//! roots, `SSL_CERT_FILE` when set, and `--ca-cert`. The same rustls
//! configuration drives the handshake check and every HTTP request, and
//! remembers the last certificate a server presented so a failure can name
//! its issuer.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The trust configuration of one run.
#[derive(Debug, Clone)]
pub struct Trust {
    /// rustls client configuration (shared with reqwest).
    pub config: Arc<ClientConfig>,
    /// Records presented certificates.
    pub recorder: Arc<Recorder>,
}

/// Delegates to webpki verification and keeps the end-entity certificate.
#[derive(Debug)]
pub struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    last: Mutex<Option<Vec<u8>>>,
}

impl Recorder {
    /// The last end-entity certificate presented (DER).
    pub fn last_certificate(&self) -> Option<Vec<u8>> {
        self.last.lock().ok().and_then(|g| g.clone())
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut g) = self.last.lock() {
            *g = Some(end_entity.to_vec());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<usize, String> {
    let data =
        std::fs::read(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut data.as_slice()) {
        let cert = cert.map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
        added += 1;
    }
    if added == 0 {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(added)
}

impl Trust {
    /// webpki roots + `SSL_CERT_FILE` + `ca_cert`.
    pub fn new(ca_cert: Option<&Path>) -> Result<Trust, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
            add_pem_file(&mut roots, Path::new(&file))?;
        }
        if let Some(path) = ca_cert {
            add_pem_file(&mut roots, path)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("TLS verifier: {e}"))?;
        let recorder = Arc::new(Recorder {
            inner,
            last: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        Ok(Trust {
            config: Arc::new(config),
            recorder,
        })
    }
}
