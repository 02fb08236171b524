//! Token service crypto: ES256 JWTs with `kid`, key rotation, JWKS.
//!
//! # Why `ring` and a hand-written JOSE layer
//!
//! berth signs and verifies exactly one algorithm, ES256 (ECDSA P-256 with
//! SHA-256, fixed-size `r‖s` signatures), so the JOSE layer is small: a
//! header, base64url, one signature. It is written here on top of `ring`
//! because:
//! - `ring` is already in the workspace (rustls uses it), is well kept and
//!   audited, and generates, loads (PKCS#8) and verifies P-256 keys;
//! - `jsonwebtoken` 9 (ring-based) is affected by GHSA-h395-gr6q-cpjc (a
//!   mistyped `nbf`/`exp` silently skips the time checks), and 10+ makes
//!   you pick `aws-lc-rs` (slow C build, which berth avoids) or its
//!   RustCrypto backend (pulls `rsa`, `p384`, `ed25519` berth does not use);
//! - verification here is explicit and pinned: the header must say
//!   `alg: ES256` and `typ: JWT`, the `kid` must name a trusted key, `crit`
//!   is refused, and claims are decoded into typed structs whose time claims
//!   are required integers, so a mistyped claim is a malformed token, never
//!   a skipped check. `alg: none`, `HS256` keyed with the public key, or any
//!   other algorithm fail before any key is touched.
//!
//! # Tokens
//!
//! | kind     | `aud`                 | distinguishing claims                  | default life |
//! |----------|-----------------------|----------------------------------------|--------------|
//! | identity | directory audience    | `principal`, `generation`, no `access` | 3 h          |
//! | refresh  | login server          | `grant_type: "refresh_token"`          | 3 h          |
//! | access   | login server          | `access: [...]`, no `grant_type`       | 75 min       |
//!
//! Refresh and identity tokens carry `principal` (a [`PrincipalRef`]) and
//! `generation` (the credential generation when issued): the server revokes
//! every such token of an identity by bumping its generation (secret
//! regenerated, identity disabled, logout) and checks it with
//! [`check_generation`].
//!
//! # Rotation
//!
//! [`KeySet`] holds the active signing key and older keys that still verify.
//! [`KeySet::rotate`] makes a new key active and keeps the old one until
//! every token it signed has expired (longest lifetime + leeway), after
//! which [`KeySet::prune`] drops it. [`KeySet::export`]/[`KeySet::import`]
//! move the whole set through PKCS#8 PEM so every replica shares it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::AuthFailure;
use crate::principal::PrincipalRef;
use crate::scope::ResourceActions;

/// The only algorithm berth signs with or accepts.
pub const ALGORITHM: &str = "ES256";
/// The JOSE `typ` berth writes and requires.
pub const TOKEN_TYPE: &str = "JWT";
/// The `grant_type` claim of refresh tokens.
pub const REFRESH_GRANT_TYPE: &str = "refresh_token";
/// Default access-token lifetime: 75 minutes.
pub const DEFAULT_ACCESS_TTL: u64 = 75 * 60;
/// Default refresh-token lifetime: 3 hours.
pub const DEFAULT_REFRESH_TTL: u64 = 3 * 60 * 60;
/// Default identity (directory) token lifetime: 3 hours.
pub const DEFAULT_IDENTITY_TTL: u64 = 3 * 60 * 60;
/// Default clock leeway on `nbf`/`exp`: 60 seconds.
pub const DEFAULT_LEEWAY: u64 = 60;

/// Errors creating, loading or using keys, or signing.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM document, or not a `PRIVATE KEY` one.
    #[error("not a PKCS#8 PEM private key: {0}")]
    Pem(String),
    /// PKCS#8 content ring does not accept as a P-256 key.
    #[error("not a P-256 PKCS#8 key: {0}")]
    Rejected(String),
    /// The random generator or signer failed.
    #[error("crypto failure: {0}")]
    Crypto(String),
    /// Claims could not be serialised.
    #[error("cannot serialise claims: {0}")]
    Serialize(#[from] serde_json::Error),
    /// `import` was given no active key, or several.
    #[error("a key set needs exactly one active key, got {0}")]
    ActiveKeyCount(usize),
}

/// A P-256 signing key with its `kid` (the RFC 7638 JWK thumbprint).
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    pair: EcdsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generate a new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Load from PKCS#8 DER (the EC private key must include its public key,
    /// as `openssl genpkey` and berth write it).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        let jwk = Jwk::from_public_point(pair.public_key().as_ref(), "")
            .ok_or_else(|| KeyError::Rejected("unexpected public key encoding".into()))?;
        Ok(Self {
            kid: jwk.thumbprint(),
            pkcs8: der.to_vec(),
            pair,
        })
    }

    /// Load from a `-----BEGIN PRIVATE KEY-----` PEM document.
    pub fn from_pkcs8_pem(pem_text: &str) -> Result<Self, KeyError> {
        let doc = pem::parse(pem_text).map_err(|e| KeyError::Pem(e.to_string()))?;
        if doc.tag() != "PRIVATE KEY" {
            return Err(KeyError::Pem(format!("unexpected PEM tag {:?}", doc.tag())));
        }
        Self::from_pkcs8_der(doc.contents())
    }

    /// The key as a PKCS#8 PEM document, for the server to persist.
    pub fn to_pkcs8_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()))
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half.
    pub fn verification_key(&self) -> VerificationKey {
        VerificationKey {
            kid: self.kid.clone(),
            public: self.pair.public_key().as_ref().to_vec(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        self.pair
            .sign(&rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|e| KeyError::Crypto(e.to_string()))
    }
}

/// A public P-256 key that verifies tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    kid: String,
    /// Uncompressed SEC1 point (65 bytes).
    public: Vec<u8>,
}

impl VerificationKey {
    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK for the JWKS document.
    pub fn jwk(&self) -> Jwk {
        // The point always comes from ring, so it is always 65 bytes.
        Jwk::from_public_point(&self.public, &self.kid).unwrap_or_else(|| Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: String::new(),
            y: String::new(),
            kid: self.kid.clone(),
            key_use: "sig".into(),
            alg: ALGORITHM.into(),
        })
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(message, sig)
            .is_ok()
    }
}

/// A public key in JWK form (RFC 7517).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    pub crv: String,
    /// base64url x coordinate.
    pub x: String,
    /// base64url y coordinate.
    pub y: String,
    /// Key id.
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// `ES256`.
    pub alg: String,
}

impl Jwk {
    fn from_public_point(point: &[u8], kid: &str) -> Option<Jwk> {
        if point.len() != 65 || point[0] != 0x04 {
            return None;
        }
        Some(Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: URL_SAFE_NO_PAD.encode(&point[1..33]),
            y: URL_SAFE_NO_PAD.encode(&point[33..65]),
            kid: kid.to_string(),
            key_use: "sig".into(),
            alg: ALGORITHM.into(),
        })
    }

    /// RFC 7638 thumbprint: base64url(SHA-256 of the canonical members).
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            self.crv, self.kty, self.x, self.y
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// A JWKS document: `{"keys":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// One key of an exported [`KeySet`], for the server to persist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Key id (informational; recomputed on import).
    pub kid: String,
    /// PKCS#8 PEM of the private key.
    pub pkcs8_pem: String,
    /// Whether this is the signing key.
    pub active: bool,
    /// For retired keys: unix seconds after which the key may be dropped.
    pub retire_after: Option<u64>,
}

struct RetiredKey {
    key: SigningKey,
    retire_after: u64,
}

/// The active signing key plus older keys kept for verification.
pub struct KeySet {
    active: SigningKey,
    retired: Vec<RetiredKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("active", &self.active.kid)
            .field(
                "retired",
                &self.retired.iter().map(|r| &r.key.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeySet {
    /// A set with one key.
    pub fn new(active: SigningKey) -> Self {
        Self {
            active,
            retired: Vec::new(),
        }
    }

    /// The signing key.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// Every key id that verifies, active first.
    pub fn kids(&self) -> Vec<String> {
        std::iter::once(self.active.kid.clone())
            .chain(self.retired.iter().map(|r| r.key.kid.clone()))
            .collect()
    }

    /// Make `new_key` the signing key; the old one keeps verifying until
    /// `retire_after` (unix seconds; pass now + longest token life + leeway,
    /// see [`TokenConfig::retire_after`]).
    pub fn rotate(&mut self, new_key: SigningKey, retire_after: u64) {
        let old = std::mem::replace(&mut self.active, new_key);
        if old.kid != self.active.kid {
            self.retired.push(RetiredKey {
                key: old,
                retire_after,
            });
        }
    }

    /// Drop retired keys whose time has passed; returns their kids.
    pub fn prune(&mut self, now: u64) -> Vec<String> {
        let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|r| r.retire_after <= now);
        self.retired = keep;
        gone.into_iter().map(|r| r.key.kid).collect()
    }

    /// Drop one retired key at once (e.g. after a compromise). The active
    /// key cannot be removed, only rotated. Returns whether one was removed.
    pub fn remove(&mut self, kid: &str) -> bool {
        let before = self.retired.len();
        self.retired.retain(|r| r.key.kid != kid);
        before != self.retired.len()
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: std::iter::once(&self.active)
                .chain(self.retired.iter().map(|r| &r.key))
                .map(|k| k.verification_key().jwk())
                .collect(),
        }
    }

    /// Every key as PKCS#8 PEM, for persistence.
    pub fn export(&self) -> Vec<StoredKey> {
        std::iter::once(StoredKey {
            kid: self.active.kid.clone(),
            pkcs8_pem: self.active.to_pkcs8_pem(),
            active: true,
            retire_after: None,
        })
        .chain(self.retired.iter().map(|r| StoredKey {
            kid: r.key.kid.clone(),
            pkcs8_pem: r.key.to_pkcs8_pem(),
            active: false,
            retire_after: Some(r.retire_after),
        }))
        .collect()
    }

    /// Rebuild a set from [`KeySet::export`] output.
    pub fn import(keys: &[StoredKey]) -> Result<Self, KeyError> {
        let actives = keys.iter().filter(|k| k.active).count();
        if actives != 1 {
            return Err(KeyError::ActiveKeyCount(actives));
        }
        let mut active = None;
        let mut retired = Vec::new();
        for k in keys {
            let key = SigningKey::from_pkcs8_pem(&k.pkcs8_pem)?;
            if k.active {
                active = Some(key);
            } else {
                retired.push(RetiredKey {
                    key,
                    retire_after: k.retire_after.unwrap_or(0),
                });
            }
        }
        let active = active.ok_or(KeyError::ActiveKeyCount(0))?;
        Ok(Self { active, retired })
    }

    fn find(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.active)
            .chain(self.retired.iter().map(|r| &r.key))
            .find(|k| k.kid == kid)
    }

    /// Sign `claims` with the active key: header `{alg: ES256, typ: JWT, kid}`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, KeyError> {
        let header = Header {
            alg: ALGORITHM.into(),
            typ: Some(TOKEN_TYPE.into()),
            kid: Some(self.active.kid.clone()),
            crit: None,
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let sig = self.active.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Check the JOSE layer only (structure, pinned `alg`, `typ`, known
    /// `kid`, signature) and return the verified payload bytes. Claims are
    /// not looked at; use [`TokenService`] for that.
    pub fn verify_signature(&self, token: &str) -> Result<Vec<u8>, AuthFailure> {
        let malformed = |detail: &str| AuthFailure::MalformedToken {
            detail: detail.to_string(),
        };
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        let header_bytes = URL_SAFE_NO_PAD
            .decode(h64)
            .map_err(|_| malformed("header is not base64url"))?;
        let header: Header = serde_json::from_slice(&header_bytes)
            .map_err(|_| malformed("header is not a JOSE header"))?;
        if header.alg != ALGORITHM {
            return Err(AuthFailure::DisallowedAlgorithm { alg: header.alg });
        }
        if header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(malformed("typ must be JWT"));
        }
        if header.crit.is_some() {
            return Err(malformed("crit header parameters are not supported"));
        }
        let kid = header.kid.unwrap_or_default();
        let key = self.find(&kid).ok_or_else(|| AuthFailure::UnknownKey {
            kid: kid.clone(),
            trusted: self.kids(),
        })?;
        let sig = URL_SAFE_NO_PAD
            .decode(s64)
            .map_err(|_| malformed("signature is not base64url"))?;
        let signing_input_len = h64.len() + 1 + p64.len();
        let signing_input = &token.as_bytes()[..signing_input_len];
        if !key.verification_key().verify(signing_input, &sig) {
            return Err(AuthFailure::BadSignature);
        }
        URL_SAFE_NO_PAD
            .decode(p64)
            .map_err(|_| malformed("payload is not base64url"))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit: Option<serde_json::Value>,
}

/// `aud`: a string, or (RFC 7519) an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience (what berth writes).
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `expected`.
    pub fn contains(&self, expected: &str) -> bool {
        match self {
            Audience::One(a) => a == expected,
            Audience::Many(v) => v.iter().any(|a| a == expected),
        }
    }

    fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(a) => vec![a.clone()],
            Audience::Many(v) => v.clone(),
        }
    }
}

/// Access-token claims (Docker JWT spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Token id.
    pub jti: String,
    /// Subject (empty for anonymous).
    pub sub: String,
    /// Not before, unix seconds.
    pub nbf: u64,
    /// Expires, unix seconds.
    pub exp: u64,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Issuer.
    pub iss: String,
    /// Audience (the login server).
    pub aud: Audience,
    /// Granted access.
    pub access: Vec<ResourceActions>,
    /// Must be absent (it marks refresh tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    /// The identity the token was issued to (berth's own claim: the gate
    /// re-checks it so revocation reaches live access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalRef>,
    /// The identity's credential generation when the token was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Requested actions the identity was refused when the token was issued
    /// (berth's own claim): if the registry allows one of them later, the
    /// role assignments or scope map changed since, and the refusal of
    /// this token says that a new login picks the change up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<ResourceActions>,
}

impl AccessClaims {
    /// Whether `action` on the resource was asked for and refused when the
    /// token was issued.
    pub fn refused_at_issue(
        &self,
        resource_type: crate::scope::ResourceType,
        name: &str,
        action: crate::scope::Action,
    ) -> bool {
        self.refused
            .iter()
            .any(|ra| ra.allows(resource_type, name, action))
    }

    /// Whether the token grants `action` on the resource (`*` covers all).
    pub fn allows(
        &self,
        resource_type: crate::scope::ResourceType,
        name: &str,
        action: crate::scope::Action,
    ) -> bool {
        self.access
            .iter()
            .any(|ra| ra.allows(resource_type, name, action))
    }

    /// The requested actions this token does not grant (empty = enough).
    pub fn missing(&self, scope: &crate::scope::RequestedScope) -> crate::scope::ActionSet {
        scope
            .actions
            .iter()
            .filter(|a| !self.allows(scope.resource_type, &scope.name, *a))
            .collect()
    }
}

/// `permissions` of a refresh token: informational (the identity's data
/// actions when issued); authorization always re-reads role assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Granted data actions.
    pub actions: Vec<String>,
    /// Excluded data actions.
    #[serde(rename = "notActions")]
    pub not_actions: Vec<String>,
}

/// Refresh-token claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// Token id.
    pub jti: String,
    /// Subject.
    pub sub: String,
    /// Not before.
    pub nbf: u64,
    /// Expires.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Issuer.
    pub iss: String,
    /// Audience (the login server).
    pub aud: Audience,
    /// Always `refresh_token`.
    pub grant_type: String,
    /// Directory tenant.
    pub tenant: String,
    /// Informational permissions.
    pub permissions: Permissions,
    /// berth: the principal the token stands for.
    pub principal: PrincipalRef,
    /// berth: credential generation at issuance (revocation).
    pub generation: u64,
}

/// Identity (directory) token claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// Token id.
    pub jti: String,
    /// Subject (user object id / client id).
    pub sub: String,
    /// Not before.
    pub nbf: u64,
    /// Expires.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Issuer.
    pub iss: String,
    /// Audience (the directory audience, not the login server).
    pub aud: Audience,
    /// Directory tenant.
    pub tenant: String,
    /// Display name.
    pub name: String,
    /// berth: the principal.
    pub principal: PrincipalRef,
    /// berth: credential generation at issuance.
    pub generation: u64,
}

/// Lifetimes and names of the token service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// `iss` written and required.
    pub issuer: String,
    /// `aud` of access and refresh tokens: the login server (lowercase).
    pub audience: String,
    /// `aud` of identity tokens.
    pub directory_audience: String,
    /// Access-token lifetime, seconds (default 75 min).
    pub access_ttl: u64,
    /// Refresh-token lifetime, seconds (default 3 h).
    pub refresh_ttl: u64,
    /// Identity-token lifetime, seconds (default 3 h).
    pub identity_ttl: u64,
    /// Clock leeway on `nbf`/`exp`, seconds (default 60).
    pub leeway: u64,
}

impl TokenConfig {
    /// Defaults for a login server: issuer = audience = `login_server`,
    /// directory audience = `<login_server>/directory`.
    pub fn new(login_server: &str) -> Self {
        let ls = login_server.to_ascii_lowercase();
        Self {
            issuer: ls.clone(),
            directory_audience: format!("{ls}/directory"),
            audience: ls,
            access_ttl: DEFAULT_ACCESS_TTL,
            refresh_ttl: DEFAULT_REFRESH_TTL,
            identity_ttl: DEFAULT_IDENTITY_TTL,
            leeway: DEFAULT_LEEWAY,
        }
    }

    /// When a key retired at `now` may be dropped: once every token it
    /// could have signed has expired.
    pub fn retire_after(&self, now: u64) -> u64 {
        now + self.access_ttl.max(self.refresh_ttl).max(self.identity_ttl) + self.leeway
    }
}

/// A freshly signed token and what the token response needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// `jti`, for the audit `JwtId`.
    pub jti: String,
    /// Issued at, unix seconds.
    pub issued_at: u64,
    /// Lifetime in seconds (`expires_in`).
    pub expires_in: u64,
}

/// Token lifetimes that can change while the service runs (registry
/// settings): new tokens use the values current at issuance.
#[derive(Debug)]
struct Lifetimes {
    access: AtomicU64,
    refresh: AtomicU64,
    identity: AtomicU64,
}

/// Issues and verifies berth's tokens with a [`KeySet`].
#[derive(Debug)]
pub struct TokenService {
    config: TokenConfig,
    lifetimes: Lifetimes,
    keys: KeySet,
    clock: Arc<dyn Clock>,
}

impl TokenService {
    /// A token service.
    pub fn new(config: TokenConfig, keys: KeySet, clock: Arc<dyn Clock>) -> Self {
        Self {
            lifetimes: Lifetimes {
                access: AtomicU64::new(config.access_ttl),
                refresh: AtomicU64::new(config.refresh_ttl),
                identity: AtomicU64::new(config.identity_ttl),
            },
            config,
            keys,
            clock,
        }
    }

    /// The configuration as given to [`TokenService::new`]; its lifetimes
    /// may since have been replaced with [`TokenService::set_lifetimes`]
    /// (see [`TokenService::lifetimes`]).
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// Change the lifetimes (seconds) of access, refresh and identity tokens
    /// issued from now on; tokens already issued keep theirs.
    pub fn set_lifetimes(&self, access: u64, refresh: u64, identity: u64) {
        self.lifetimes.access.store(access, Ordering::Relaxed);
        self.lifetimes.refresh.store(refresh, Ordering::Relaxed);
        self.lifetimes.identity.store(identity, Ordering::Relaxed);
    }

    /// The current lifetimes (access, refresh, identity), seconds.
    pub fn lifetimes(&self) -> (u64, u64, u64) {
        (
            self.lifetimes.access.load(Ordering::Relaxed),
            self.lifetimes.refresh.load(Ordering::Relaxed),
            self.lifetimes.identity.load(Ordering::Relaxed),
        )
    }

    /// The configuration with the current lifetimes.
    fn current_config(&self) -> TokenConfig {
        let (access_ttl, refresh_ttl, identity_ttl) = self.lifetimes();
        TokenConfig {
            access_ttl,
            refresh_ttl,
            identity_ttl,
            ..self.config.clone()
        }
    }

    /// The keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The keys, to rotate or prune.
    pub fn keys_mut(&mut self) -> &mut KeySet {
        &mut self.keys
    }

    /// Rotate to `new_key`, keeping the old key as long as its tokens live.
    pub fn rotate(&mut self, new_key: SigningKey) {
        let retire = self.current_config().retire_after(self.clock.now());
        self.keys.rotate(new_key, retire);
    }

    /// Issue an access token for `subject` with `access` (from
    /// [`crate::authorize::Grant::access`]).
    pub fn issue_access(
        &self,
        subject: &str,
        access: Vec<ResourceActions>,
    ) -> Result<IssuedToken, KeyError> {
        self.issue_access_claims(subject, access, Vec::new(), None, None)
    }

    /// Issue an access token that also names the identity and its
    /// credential generation, so the registry can re-check both while the
    /// token lives (revocation within the live-cache interval).
    /// `refused` lists the requested actions that were not granted
    /// (see [`AccessClaims::refused`]).
    pub fn issue_access_for(
        &self,
        subject: &str,
        access: Vec<ResourceActions>,
        refused: Vec<ResourceActions>,
        principal: PrincipalRef,
        generation: u64,
    ) -> Result<IssuedToken, KeyError> {
        self.issue_access_claims(subject, access, refused, Some(principal), Some(generation))
    }

    fn issue_access_claims(
        &self,
        subject: &str,
        access: Vec<ResourceActions>,
        refused: Vec<ResourceActions>,
        principal: Option<PrincipalRef>,
        generation: Option<u64>,
    ) -> Result<IssuedToken, KeyError> {
        let now = self.clock.now();
        let ttl = self.lifetimes.access.load(Ordering::Relaxed);
        let jti = new_jti();
        let claims = AccessClaims {
            jti: jti.clone(),
            sub: subject.to_string(),
            nbf: now,
            exp: now + ttl,
            iat: now,
            iss: self.config.issuer.clone(),
            aud: Audience::One(self.config.audience.clone()),
            access,
            grant_type: None,
            principal,
            generation,
            refused,
        };
        self.issued(&claims, jti, now, ttl)
    }

    /// Issue a refresh token.
    pub fn issue_refresh(
        &self,
        subject: &str,
        principal: PrincipalRef,
        generation: u64,
        tenant: &str,
        permissions: Permissions,
    ) -> Result<IssuedToken, KeyError> {
        let now = self.clock.now();
        let ttl = self.lifetimes.refresh.load(Ordering::Relaxed);
        let jti = new_jti();
        let claims = RefreshClaims {
            jti: jti.clone(),
            sub: subject.to_string(),
            nbf: now,
            exp: now + ttl,
            iat: now,
            iss: self.config.issuer.clone(),
            aud: Audience::One(self.config.audience.clone()),
            grant_type: REFRESH_GRANT_TYPE.into(),
            tenant: tenant.to_string(),
            permissions,
            principal,
            generation,
        };
        self.issued(&claims, jti, now, ttl)
    }

    /// Issue an identity (directory) token.
    pub fn issue_identity(
        &self,
        subject: &str,
        name: &str,
        principal: PrincipalRef,
        generation: u64,
        tenant: &str,
    ) -> Result<IssuedToken, KeyError> {
        let now = self.clock.now();
        let ttl = self.lifetimes.identity.load(Ordering::Relaxed);
        let jti = new_jti();
        let claims = IdentityClaims {
            jti: jti.clone(),
            sub: subject.to_string(),
            nbf: now,
            exp: now + ttl,
            iat: now,
            iss: self.config.issuer.clone(),
            aud: Audience::One(self.config.directory_audience.clone()),
            tenant: tenant.to_string(),
            name: name.to_string(),
            principal,
            generation,
        };
        self.issued(&claims, jti, now, ttl)
    }

    fn issued<C: Serialize>(
        &self,
        claims: &C,
        jti: String,
        now: u64,
        ttl: u64,
    ) -> Result<IssuedToken, KeyError> {
        Ok(IssuedToken {
            token: self.keys.sign(claims)?,
            jti,
            issued_at: now,
            expires_in: ttl,
        })
    }

    /// Verify an access token (presented as `Bearer` to `/v2`).
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, AuthFailure> {
        let payload = self.keys.verify_signature(token)?;
        let value = parse_object(&payload)?;
        if value.get("grant_type").is_some() || value.get("access").is_none() {
            return Err(AuthFailure::WrongTokenType {
                expected: "access".into(),
            });
        }
        let c: AccessClaims = from_value(value)?;
        self.check_common(&c.iss, &c.aud, &self.config.audience, c.nbf, c.exp)
            .map_err(|f| f.for_token("access"))?;
        Ok(c)
    }

    /// Verify a refresh token. The caller then checks its `generation`
    /// against the store with [`check_generation`].
    pub fn verify_refresh(&self, token: &str) -> Result<RefreshClaims, AuthFailure> {
        let payload = self.keys.verify_signature(token)?;
        let value = parse_object(&payload)?;
        if value.get("grant_type").and_then(|g| g.as_str()) != Some(REFRESH_GRANT_TYPE) {
            return Err(AuthFailure::WrongTokenType {
                expected: "refresh".into(),
            });
        }
        let c: RefreshClaims = from_value(value)?;
        self.check_common(&c.iss, &c.aud, &self.config.audience, c.nbf, c.exp)
            .map_err(|f| f.for_token("refresh"))?;
        Ok(c)
    }

    /// Verify an identity (directory) token, as presented to
    /// `/oauth2/exchange`.
    pub fn verify_identity(&self, token: &str) -> Result<IdentityClaims, AuthFailure> {
        let payload = self.keys.verify_signature(token)?;
        let value = parse_object(&payload)?;
        if value.get("grant_type").is_some() || value.get("access").is_some() {
            return Err(AuthFailure::WrongTokenType {
                expected: "identity".into(),
            });
        }
        let c: IdentityClaims = from_value(value)?;
        self.check_common(
            &c.iss,
            &c.aud,
            &self.config.directory_audience,
            c.nbf,
            c.exp,
        )
        .map_err(|f| f.for_token("identity"))?;
        Ok(c)
    }

    fn check_common(
        &self,
        iss: &str,
        aud: &Audience,
        expected_aud: &str,
        nbf: u64,
        exp: u64,
    ) -> Result<(), AuthFailure> {
        if iss != self.config.issuer {
            return Err(AuthFailure::WrongIssuer {
                expected: self.config.issuer.clone(),
                found: iss.to_string(),
            });
        }
        if !aud.contains(expected_aud) {
            return Err(AuthFailure::WrongAudience {
                expected: expected_aud.to_string(),
                found: aud.to_vec(),
            });
        }
        check_times(self.clock.now(), nbf, exp, self.config.leeway)
    }
}

/// The time window with leeway: valid while `nbf - leeway <= now < exp + leeway`.
pub fn check_times(now: u64, nbf: u64, exp: u64, leeway: u64) -> Result<(), AuthFailure> {
    if now.saturating_add(leeway) < nbf {
        return Err(AuthFailure::TokenNotYetValid {
            not_before: nbf,
            now,
            leeway,
        });
    }
    if now >= exp.saturating_add(leeway) {
        return Err(AuthFailure::TokenExpired {
            token: "bearer",
            expired_at: exp,
            now,
            leeway,
        });
    }
    Ok(())
}

/// Compare a token's credential generation with the store's current one
/// (`None`: the identity no longer exists).
pub fn check_generation(token_generation: u64, current: Option<u64>) -> Result<(), AuthFailure> {
    if current == Some(token_generation) {
        Ok(())
    } else {
        Err(AuthFailure::RevokedToken {
            token_generation,
            current_generation: current,
        })
    }
}

fn parse_object(payload: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, AuthFailure> {
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(AuthFailure::MalformedToken {
            detail: "claims are not a JSON object".into(),
        }),
    }
}

fn from_value<T: serde::de::DeserializeOwned>(
    m: serde_json::Map<String, serde_json::Value>,
) -> Result<T, AuthFailure> {
    serde_json::from_value(serde_json::Value::Object(m)).map_err(|e| AuthFailure::MalformedToken {
        detail: format!("claims: {e}"),
    })
}

fn new_jti() -> String {
    let mut b = [0u8; 16];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut b);
    URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests;
