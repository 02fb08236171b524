//! `berth kubelet-credential-provider`: a kubelet image credential
//! provider plugin (`credentialprovider.kubelet.k8s.io/v1`).
//!
//! kubelet runs it with the `args` and `env` of its
//! `CredentialProviderConfig`, writes a `CredentialProviderRequest` on
//! stdin and reads a `CredentialProviderResponse` from stdout. For an
//! image on one of the configured login servers (kubelet's matching
//! rules) the plugin logs in at `/directory/token` — as a service
//! principal (client secret read from a file) or as a workload identity
//! (a projected service-account token read from a file, or the pod's
//! token kubelet passes with `tokenAttributes`, as the client assertion)
//! — exchanges the directory token at `/oauth2/exchange` and answers
//! with the refresh token under the null-GUID username, cached by
//! registry for safely less than its lifetime. Other images get an empty
//! `auth`. Failures go to stderr with exit status 1; stdout is written
//! once, complete, or not at all.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::client::{Client, Connection};
use crate::docker_config::TOKEN_USERNAME;
use crate::kube::api::{
    format_go_duration, AuthConfig, CredentialProviderRequest, CredentialProviderResponse,
    ANNOTATION_CLIENT_ID, PROVIDER_API_OLDER, PROVIDER_API_V1,
};
use crate::kube::matching;
use crate::renew::jwt_expiry;
use crate::session::now;

/// The largest request read from stdin.
const MAX_REQUEST: u64 = 1 << 20;
/// The least time a cached credential keeps before it expires.
const MIN_MARGIN_SECS: u64 = 300;

/// Flags of `berth kubelet-credential-provider` (each also an environment
/// variable, so a `CredentialProviderConfig` may use `args` or `env`).
#[derive(Args, Debug, Clone)]
pub struct ProviderArgs {
    /// The login servers to answer for (`host[:port]` exactly as images
    /// name them); repeat the flag or separate with commas.
    #[arg(
        long = "login-server",
        env = "BERTH_LOGIN_SERVER",
        value_delimiter = ',',
        required = true,
        value_name = "LOGIN_SERVER"
    )]
    pub login_servers: Vec<String>,
    /// The service principal's app id, or the workload identity's client
    /// id. With `tokenAttributes`, the service account's
    /// `berth.io/client-id` annotation may name it instead.
    #[arg(long, env = "BERTH_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// Log in as a service principal with the client secret in this file.
    #[arg(
        long,
        env = "BERTH_CLIENT_SECRET_FILE",
        value_name = "FILE",
        conflicts_with = "service_account_token_file"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// Log in as a workload identity with the (projected, Kubernetes
    /// service-account) token in this file as client assertion. Without
    /// it, the token kubelet sends in the request (`tokenAttributes`).
    #[arg(long, env = "BERTH_SERVICE_ACCOUNT_TOKEN_FILE", value_name = "FILE")]
    pub service_account_token_file: Option<PathBuf>,
    /// Plain HTTP even for a non-loopback login server.
    #[arg(long, env = "BERTH_PLAIN_HTTP")]
    pub plain_http: bool,
    /// Trust the CA certificates in this PEM file (implies HTTPS).
    #[arg(long, env = "BERTH_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// Run the plugin: one request on stdin, one response on stdout.
pub async fn run(args: ProviderArgs) -> anyhow::Result<()> {
    let mut raw = Vec::new();
    std::io::stdin()
        .take(MAX_REQUEST)
        .read_to_end(&mut raw)
        .context("reading the CredentialProviderRequest from stdin")?;
    let request: CredentialProviderRequest = serde_json::from_slice(&raw)
        .context("stdin is not a CredentialProviderRequest (JSON with \"image\")")?;
    let response = answer(&args, &request).await?;
    let mut text = serde_json::to_vec(&response)?;
    text.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&text)?;
    out.flush()?;
    Ok(())
}

/// The response to `request`.
pub async fn answer(
    args: &ProviderArgs,
    request: &CredentialProviderRequest,
) -> anyhow::Result<CredentialProviderResponse> {
    let api_version = request.api_version.as_str();
    if api_version != PROVIDER_API_V1 && !PROVIDER_API_OLDER.contains(&api_version) {
        anyhow::bail!(
            "unsupported request apiVersion {api_version:?}: this plugin speaks {PROVIDER_API_V1}"
        );
    }
    if request.kind != "CredentialProviderRequest" {
        anyhow::bail!(
            "the request's kind is {:?}, not CredentialProviderRequest",
            request.kind
        );
    }
    if request.image.trim().is_empty() {
        anyhow::bail!("the request names no image");
    }
    let mut response = CredentialProviderResponse {
        kind: "CredentialProviderResponse".into(),
        api_version: api_version.to_string(),
        cache_key_type: "Registry".into(),
        cache_duration: None,
        auth: Default::default(),
    };
    let Some(host) = args
        .login_servers
        .iter()
        .map(|s| s.trim())
        .find(|s| !s.is_empty() && matching::urls_match(s, &request.image))
    else {
        return Ok(response);
    };
    crate::names::check_login_server(host)?;
    let conn = Connection::decide(host, args.plain_http, args.ca_file.clone());
    let client = Client::new(host, &conn)?;
    let directory = login(args, request, &client)
        .await
        .with_context(|| format!("logging in to {host}"))?;
    let refresh = client
        .exchange(&directory)
        .await
        .with_context(|| format!("getting a registry refresh token from {host}"))?;
    let left = jwt_expiry(&refresh)
        .map(|exp| exp.saturating_sub(now()))
        .context("the registry's refresh token has no expiry")?;
    response.cache_duration = Some(format_go_duration(cache_secs(left)));
    response.auth.insert(
        host.to_string(),
        AuthConfig {
            username: TOKEN_USERNAME.into(),
            password: refresh,
        },
    );
    Ok(response)
}

/// How long kubelet may keep a credential valid for `left` seconds: a
/// quarter of its life (at least 5 minutes) is kept in reserve, so a
/// pull started at the end of the cache time still finds it valid.
pub fn cache_secs(left: u64) -> u64 {
    left.saturating_sub((left / 4).max(MIN_MARGIN_SECS))
}

/// A directory token for the configured identity.
async fn login(
    args: &ProviderArgs,
    request: &CredentialProviderRequest,
    client: &Client,
) -> anyhow::Result<String> {
    let client_id = args
        .client_id
        .clone()
        .or_else(|| {
            request
                .service_account_annotations
                .get(ANNOTATION_CLIENT_ID)
                .cloned()
        })
        .filter(|s| !s.trim().is_empty())
        .context("no client id: set --client-id (BERTH_CLIENT_ID), or annotate the pod's service account with berth.io/client-id")?;
    if let Some(file) = &args.client_secret_file {
        let secret = read_secret(file)?;
        return Ok(client
            .directory_client_credentials(&client_id, &secret)
            .await?
            .access_token);
    }
    let assertion = match (&args.service_account_token_file, &request.service_account_token) {
        (Some(file), _) => read_secret(file)?,
        (None, Some(t)) if !t.trim().is_empty() => t.trim().to_string(),
        _ => anyhow::bail!(
            "no credential: set --client-secret-file (service principal) or --service-account-token-file (workload identity), or configure tokenAttributes so kubelet sends the pod's service-account token"
        ),
    };
    Ok(client
        .directory_client_assertion(&client_id, &assertion)
        .await?
        .access_token)
}

/// A secret file's content without surrounding whitespace.
fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let text = text.trim();
    if text.is_empty() {
        anyhow::bail!("{} is empty", path.display());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_time_stays_below_the_lifetime() {
        assert_eq!(cache_secs(3 * 3600), 8100);
        assert_eq!(cache_secs(900), 600);
        assert_eq!(cache_secs(200), 0);
        for left in [0, 1, 299, 300, 301, 3600, 10_800, 86_400] {
            let c = cache_secs(left);
            assert!(c < left || (c == 0 && left == 0), "{left}");
            assert!(left - c >= MIN_MARGIN_SECS.min(left), "{left}");
        }
    }
}
