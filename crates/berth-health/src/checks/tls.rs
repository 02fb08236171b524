//! Step 6: TLS — untrusted or self-signed certificate, host name
//! mismatch, expiry, a TLS-intercepting proxy; or a registry that serves
//! plain HTTP (a warning on loopback, an error elsewhere).

use rustls::pki_types::ServerName;
use rustls::CertificateError;

use super::timed;
use crate::context::Ctx;
use crate::report::Finding;
use crate::target::Scheme;
use crate::x509;

const NAME: &str = "TLS";

fn plain_http(ctx: &mut Ctx, why: &str) -> Vec<Finding> {
    ctx.scheme = Scheme::Http;
    if ctx.target.is_loopback() {
        vec![Finding::problem(
            NAME,
            "PLAIN_HTTP_WARNING",
            format!(
                "{why}; accepted because {} is a loopback address",
                ctx.target.host
            ),
        )]
    } else {
        vec![Finding::problem(
            NAME,
            "CONNECTIVITY_SSL_ERROR",
            format!("{why}: clients refuse plain HTTP to {} unless it is listed as an insecure registry, and credentials would travel unencrypted", ctx.target.host),
        )
        .with_fix("Serve TLS (`berth serve --tls-cert/--tls-key`), or for a test machine add the registry to docker's `insecure-registries`.")]
    }
}

/// Explain a certificate that did not verify.
fn certificate_problem(ctx: &Ctx, e: &CertificateError) -> Finding {
    let names = ctx
        .trust
        .recorder
        .last_certificate()
        .and_then(|der| x509::names(&der));
    let host = &ctx.target.host;
    let message = match e {
        CertificateError::UnknownIssuer => match &names {
            Some(n) if n.self_issued => format!(
                "the certificate of {host} is self-signed (CN={}) and this machine does not trust it",
                n.subject
            ),
            Some(n) => format!(
                "the certificate of {host} (CN={}) was issued by '{}', which this machine does not trust. If '{}' is not your organisation's or the registry's CA, a TLS-intercepting proxy is answering in the registry's place",
                n.subject, n.issuer, n.issuer
            ),
            None => format!("the certificate of {host} was issued by a CA this machine does not trust"),
        },
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the certificate presented by {host} is issued for other names ({}): hostname mismatch",
                match e {
                    CertificateError::NotValidForNameContext { presented, .. } => presented.join(", "),
                    _ => names.map(|n| n.subject).unwrap_or_else(|| "unknown".into()),
                }
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("the certificate of {host} has expired")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
            "the certificate of {host} is not valid yet (check this machine's clock)"
        ),
        other => format!("the certificate of {host} was refused: {other}"),
    };
    Finding::problem(NAME, "CONNECTIVITY_SSL_ERROR", message)
}

/// Whether the port answers plain HTTP.
async fn answers_plain_http(ctx: &Ctx) -> bool {
    let url = format!("{}/v2/", ctx.target.base_url(Scheme::Http));
    matches!(timed(ctx.http.get(url).send()).await, Some(Ok(_)))
}

/// The TLS handshake.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    if ctx.target.scheme == Some(Scheme::Http) {
        return plain_http(ctx, "the login server was given as http://");
    }
    let Some(addr) = ctx.addrs.first().copied() else {
        return vec![super::skipped(NAME, "no address to connect to")];
    };
    let Ok(server_name) = ServerName::try_from(ctx.target.host.clone()) else {
        return vec![Finding::problem(
            NAME,
            "LOGIN_SERVER_ERROR",
            format!("'{}' cannot be used as a TLS server name", ctx.target.host),
        )];
    };
    let connector = tokio_rustls::TlsConnector::from(ctx.trust.config.clone());
    let handshake = timed(async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        connector.connect(server_name, tcp).await
    })
    .await;
    let err = match handshake {
        Some(Ok(stream)) => {
            let (_, session) = stream.get_ref();
            let version = session
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            let who = ctx
                .trust
                .recorder
                .last_certificate()
                .and_then(|d| x509::names(&d))
                .map(|n| format!(", certificate CN={} issued by '{}'", n.subject, n.issuer))
                .unwrap_or_default();
            ctx.scheme = Scheme::Https;
            return vec![Finding::ok(NAME, format!("{version}{who}"))];
        }
        None => {
            return vec![Finding::problem(
                NAME,
                "CONNECTIVITY_SSL_ERROR",
                "the TLS handshake did not finish within 3 s".to_string(),
            )]
        }
        Some(Err(e)) => e,
    };
    if let Some(rustls::Error::InvalidCertificate(cert)) = err
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
    {
        return vec![certificate_problem(ctx, cert)];
    }
    if answers_plain_http(ctx).await {
        return plain_http(ctx, "the registry serves plain HTTP, not TLS");
    }
    vec![Finding::problem(
        NAME,
        "CONNECTIVITY_SSL_ERROR",
        format!("TLS handshake with {addr} failed: {err}"),
    )]
}
