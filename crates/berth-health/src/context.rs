//! What the steps learn and hand on to the next ones.

use std::net::SocketAddr;

use crate::dockerconfig::Credential;
use crate::target::{Scheme, Target};
use crate::trust::Trust;
use crate::CheckHealthArgs;

/// The `/v2/` answer without credentials.
#[derive(Debug, Clone)]
pub struct V2Answer {
    /// HTTP status.
    pub status: u16,
    /// `Date`, if any.
    pub date: Option<String>,
}

/// A parsed Bearer challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Token endpoint URL.
    pub realm: String,
    /// Token audience (the registry's login server).
    pub service: String,
}

/// State shared by the steps of one run.
#[derive(Debug)]
pub struct Ctx {
    /// The flags.
    pub args: CheckHealthArgs,
    /// The login server.
    pub target: Target,
    /// Trusted certificates.
    pub trust: Trust,
    /// HTTP client using [`Ctx::trust`], short timeouts, no redirects.
    pub http: reqwest::Client,
    /// Addresses the login server resolved to.
    pub addrs: Vec<SocketAddr>,
    /// The scheme the registry answers on (after the TLS step).
    pub scheme: Scheme,
    /// The credential to log in with, and where it came from.
    pub credential: Option<(Credential, String)>,
    /// Whether the credential was read from config.json / a helper (as
    /// docker would send it), not given on the command line.
    pub stored_credential: bool,
    /// The unauthenticated `/v2/` answer.
    pub v2: Option<V2Answer>,
    /// The challenge of that answer.
    pub challenge: Option<Challenge>,
    /// A directory (identity) token from the directory login.
    pub identity_token: Option<String>,
    /// A registry refresh token.
    pub refresh_token: Option<String>,
    /// The access token, and the `scope` the registry granted.
    pub access: Option<(String, String)>,
    /// With `--image`: the image to pull.
    pub image: Option<berth_cli::kube::image::ImageRef>,
    /// When the pull credential expires (unix seconds), and how that is
    /// known.
    pub pull_expiry: Option<(u64, String)>,
    /// Set when a step failed so that later steps cannot run at all, even
    /// with `--ignore-errors` (e.g. nothing to connect to).
    pub blocked: bool,
}

impl Ctx {
    /// `scheme://host[:port]` of the registry.
    pub fn base_url(&self) -> String {
        self.target.base_url(self.scheme)
    }

    /// The token audience: the challenge's `service`, else the login
    /// server as given.
    pub fn service(&self) -> String {
        self.challenge
            .as_ref()
            .map(|c| c.service.clone())
            .unwrap_or_else(|| self.target.host_port())
    }

    /// The token endpoint: the challenge's realm, else the login server's.
    pub fn token_url(&self) -> String {
        self.challenge
            .as_ref()
            .map(|c| c.realm.clone())
            .unwrap_or_else(|| format!("{}/oauth2/token", self.base_url()))
    }
}
