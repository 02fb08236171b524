//! Verifying tokens from external OIDC issuers: the client assertions a
//! workload identity logs in with (federated credentials).
//!
//! The issuer's keys come from its JWKS (the server fetches and caches
//! it); this module only parses keys and checks one assertion against them.
//! Algorithms are pinned per key type: RS256 for RSA keys (2048–8192 bits),
//! ES256 for P-256 keys. `none`, HS* and anything else are refused, and a
//! header `alg` that does not fit the key's type is refused too.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

use crate::error::AuthFailure;

/// One verification key of an external issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalKey {
    /// An RSA key: RS256 only.
    Rsa {
        /// Modulus, big-endian.
        n: Vec<u8>,
        /// Exponent, big-endian.
        e: Vec<u8>,
    },
    /// A P-256 key: ES256 only. Uncompressed point `04 || x || y`.
    P256 {
        /// The point.
        point: Vec<u8>,
    },
}

impl ExternalKey {
    fn alg(&self) -> &'static str {
        match self {
            ExternalKey::Rsa { .. } => "RS256",
            ExternalKey::P256 { .. } => "ES256",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            ExternalKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            ExternalKey::P256 { point } => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

/// An issuer's signing keys by `kid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalKeys {
    keys: Vec<(String, ExternalKey)>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<RawJwk>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

fn b64(s: &Option<String>) -> Option<Vec<u8>> {
    s.as_deref().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
}

impl ExternalKeys {
    /// Parse a JWKS document. Keys that are not signature keys, of another
    /// type, or malformed are skipped; a document that is not a JWKS is an
    /// error.
    pub fn from_jwks(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawJwks =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::new();
        for k in raw.keys {
            if k.use_.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let key = match k.kty.as_str() {
                "RSA" => match (b64(&k.n), b64(&k.e)) {
                    (Some(n), Some(e)) => ExternalKey::Rsa { n, e },
                    _ => continue,
                },
                "EC" if k.crv.as_deref() == Some("P-256") => match (b64(&k.x), b64(&k.y)) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        let mut point = vec![4u8];
                        point.extend(x);
                        point.extend(y);
                        ExternalKey::P256 { point }
                    }
                    _ => continue,
                },
                _ => continue,
            };
            // A key that declares another algorithm than its type's pinned
            // one is not used at all.
            if k.alg.as_deref().is_some_and(|a| a != key.alg()) {
                continue;
            }
            keys.push((k.kid.unwrap_or_default(), key));
        }
        Ok(ExternalKeys { keys })
    }

    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&ExternalKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What a workload identity requires of its assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// `iss`, compared exactly.
    pub issuer: &'a str,
    /// `sub`, compared exactly.
    pub subject: &'a str,
    /// Must be `aud` or one of its entries.
    pub audience: &'a str,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

/// The claims of a verified assertion that berth uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AssertionClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Not before, unix seconds.
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Token id, when the issuer sets one.
    #[serde(default)]
    pub jti: Option<String>,
}

/// The parts of an assertion, decoded but not verified.
pub struct Unverified<'t> {
    header: Header,
    claims: AssertionClaims,
    audience: Vec<String>,
    signing_input: &'t [u8],
    signature: Vec<u8>,
}

fn invalid(detail: &str) -> AuthFailure {
    AuthFailure::WorkloadTokenInvalid {
        detail: detail.to_string(),
    }
}

impl<'t> Unverified<'t> {
    /// Split and decode an assertion (no signature check yet).
    pub fn parse(token: &'t str) -> Result<Self, AuthFailure> {
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not three dot-separated parts"));
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(h64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid("header is not a base64url JOSE header"))?;
        let payload = URL_SAFE_NO_PAD
            .decode(p64)
            .map_err(|_| invalid("payload is not base64url"))?;
        let claims: AssertionClaims = serde_json::from_slice(&payload)
            .map_err(|_| invalid("payload lacks iss, sub or exp"))?;
        #[derive(Deserialize)]
        struct AudOnly {
            #[serde(default)]
            aud: Option<Aud>,
        }
        let audience = match serde_json::from_slice::<AudOnly>(&payload)
            .map_err(|_| invalid("aud is not a string or a list of strings"))?
            .aud
        {
            Some(Aud::One(a)) => vec![a],
            Some(Aud::Many(a)) => a,
            None => Vec::new(),
        };
        let signature = URL_SAFE_NO_PAD
            .decode(s64)
            .map_err(|_| invalid("signature is not base64url"))?;
        let signing_input = &token.as_bytes()[..h64.len() + 1 + p64.len()];
        Ok(Unverified {
            header,
            claims,
            audience,
            signing_input,
            signature,
        })
    }

    /// `iss`, unverified: to pick the issuer before fetching its keys.
    pub fn issuer(&self) -> &str {
        &self.claims.iss
    }

    /// `kid`, unverified (empty when absent).
    pub fn kid(&self) -> &str {
        self.header.kid.as_deref().unwrap_or("")
    }

    /// Check everything: pinned algorithm, key, signature, issuer, subject,
    /// audience and times (`leeway` seconds either side).
    pub fn verify(
        self,
        keys: &ExternalKeys,
        expected: &Expected<'_>,
        now: u64,
        leeway: u64,
    ) -> Result<AssertionClaims, AuthFailure> {
        let alg = self.header.alg.as_str();
        if alg != "RS256" && alg != "ES256" {
            return Err(AuthFailure::WorkloadAlgorithmRefused { alg: alg.into() });
        }
        if self.header.crit.is_some() {
            return Err(invalid("crit header parameters are not supported"));
        }
        if self.claims.iss != expected.issuer {
            return Err(AuthFailure::WorkloadIssuerUntrusted {
                issuer: self.claims.iss,
                expected: expected.issuer.into(),
            });
        }
        let key = keys
            .find(self.kid())
            .ok_or_else(|| AuthFailure::WorkloadKeyUnknown {
                kid: self.kid().into(),
                issuer: expected.issuer.into(),
            })?;
        if key.alg() != alg {
            return Err(AuthFailure::WorkloadAlgorithmRefused { alg: alg.into() });
        }
        if !key.verify(self.signing_input, &self.signature) {
            return Err(invalid("bad signature"));
        }
        if self.claims.sub != expected.subject {
            return Err(AuthFailure::WorkloadSubjectMismatch {
                subject: self.claims.sub,
                expected: expected.subject.into(),
            });
        }
        if !self.audience.iter().any(|a| a == expected.audience) {
            return Err(AuthFailure::WorkloadAudienceMismatch {
                audience: self.audience,
                expected: expected.audience.into(),
            });
        }
        if let Some(nbf) = self.claims.nbf {
            if now.saturating_add(leeway) < nbf {
                return Err(AuthFailure::WorkloadTokenNotYetValid {
                    not_before: nbf,
                    now,
                });
            }
        }
        if now >= self.claims.exp.saturating_add(leeway) {
            return Err(AuthFailure::WorkloadTokenExpired {
                expired_at: self.claims.exp,
                now,
            });
        }
        Ok(self.claims)
    }
}

#[cfg(test)]
mod tests;
