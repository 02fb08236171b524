//! Workload identity logins: a client assertion (a JWT from a trusted
//! external OIDC issuer) checked against the workload identity its
//! `client_id` names.
//!
//! The issuer's keys are found through its discovery document
//! (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), fetched with
//! bounded timeouts and size, and cached for [`KEYS_TTL`] seconds; an
//! assertion with an unknown `kid` triggers one refetch (at most every
//! [`REFETCH_MIN_INTERVAL`] seconds per issuer, so a flood of bogus `kid`s
//! cannot turn berth into a request amplifier). Only the issuer configured
//! on the identity is ever contacted, never one named by the token.

use std::sync::Arc;
use std::time::Duration;

use berth_auth::clock::Clock;
use berth_auth::credential::{AuthenticateError, Authenticated};
use berth_auth::error::AuthFailure;
use berth_auth::oidc::{Expected, ExternalKeys, Unverified};
use berth_auth::principal::Principal;
use berth_store::identity::validate_issuer;
use berth_store::StoreError;
use dashmap::DashMap;
use uuid::Uuid;

use super::AuthService;

/// How long an issuer's keys are reused, seconds.
pub const KEYS_TTL: u64 = 600;
/// Minimum time between two fetches for one issuer, seconds.
pub const REFETCH_MIN_INTERVAL: u64 = 30;
/// Clock leeway on the assertion's `exp`/`nbf`, seconds.
const LEEWAY: u64 = 60;
/// Largest discovery or JWKS document accepted.
const MAX_DOCUMENT: usize = 256 * 1024;

struct Cached {
    fetched_at: u64,
    keys: Arc<ExternalKeys>,
}

/// External issuers' keys, fetched on demand and cached.
pub struct IssuerKeys {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    cache: DashMap<String, Cached>,
}

impl IssuerKeys {
    /// An empty cache whose entries age by `clock`; fails only when the
    /// HTTP client cannot be built (no TLS backend).
    pub fn new(clock: Arc<dyn Clock>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(IssuerKeys {
            client,
            clock,
            cache: DashMap::new(),
        })
    }

    /// The keys of `issuer` that should contain `kid`.
    pub async fn keys(&self, issuer: &str, kid: &str) -> Result<Arc<ExternalKeys>, AuthFailure> {
        let now = self.clock.now();
        if let Some(c) = self.cache.get(issuer) {
            let age = now.saturating_sub(c.fetched_at);
            let fresh = age < KEYS_TTL;
            let has_kid = c.keys.find(kid).is_some();
            if fresh && (has_kid || age < REFETCH_MIN_INTERVAL) {
                return Ok(c.keys.clone());
            }
        }
        let keys = Arc::new(self.fetch(issuer).await.map_err(|detail| {
            AuthFailure::WorkloadIssuerUnreachable {
                issuer: issuer.into(),
                detail,
            }
        })?);
        self.cache.insert(
            issuer.to_string(),
            Cached {
                fetched_at: now,
                keys: keys.clone(),
            },
        );
        Ok(keys)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let r = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("GET {url}: status {}", r.status()));
        }
        if r.content_length().is_some_and(|n| n > MAX_DOCUMENT as u64) {
            return Err(format!(
                "GET {url}: document larger than {MAX_DOCUMENT} bytes"
            ));
        }
        let body = r.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
        if body.len() > MAX_DOCUMENT {
            return Err(format!(
                "GET {url}: document larger than {MAX_DOCUMENT} bytes"
            ));
        }
        Ok(body.to_vec())
    }

    async fn fetch(&self, issuer: &str) -> Result<ExternalKeys, String> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc: serde_json::Value = serde_json::from_slice(&self.get(&discovery).await?)
            .map_err(|e| format!("{discovery} is not JSON: {e}"))?;
        if doc["issuer"].as_str() != Some(issuer) {
            return Err(format!(
                "{discovery} names issuer {} instead of {issuer:?}",
                doc["issuer"]
            ));
        }
        let jwks_uri = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("{discovery} has no jwks_uri"))?;
        validate_issuer(jwks_uri).map_err(|e| format!("jwks_uri: {e}"))?;
        let keys = ExternalKeys::from_jwks(&self.get(jwks_uri).await?)?;
        if keys.is_empty() {
            return Err(format!("{jwks_uri} has no RS256 or ES256 signing key"));
        }
        Ok(keys)
    }
}

impl AuthService {
    /// Log in a workload identity with a client assertion.
    pub async fn authenticate_workload(
        &self,
        client_id: Uuid,
        assertion: &str,
    ) -> Result<Authenticated, AuthenticateError<StoreError>> {
        let Some(w) = self
            .repo
            .get_workload_identity(client_id)
            .await
            .map_err(AuthenticateError::Store)?
        else {
            return Err(AuthFailure::UnknownIdentity {
                username: client_id.to_string(),
            }
            .into());
        };
        if !w.enabled {
            return Err(AuthFailure::DisabledIdentity {
                identity: format!("workload:{client_id}"),
            }
            .into());
        }
        let unverified = Unverified::parse(assertion)?;
        // Compare before fetching anything: only the trusted issuer is contacted.
        if unverified.issuer() != w.issuer {
            return Err(AuthFailure::WorkloadIssuerUntrusted {
                issuer: unverified.issuer().into(),
                expected: w.issuer,
            }
            .into());
        }
        let keys = self.issuers.keys(&w.issuer, unverified.kid()).await?;
        let expected = Expected {
            issuer: &w.issuer,
            subject: &w.subject,
            audience: &w.audience,
        };
        let claims = unverified.verify(&keys, &expected, self.clock.now(), LEEWAY)?;
        Ok(Authenticated {
            principal: Principal::WorkloadIdentity {
                client_id: w.client_id,
                name: w.name,
            },
            credential: format!("client_assertion:{}", claims.jti.unwrap_or(claims.sub)),
            generation: w.generation,
        })
    }
}
