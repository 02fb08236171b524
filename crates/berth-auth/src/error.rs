//! Reason codes: why a login failed ([`AuthFailure`]) or why an action was
//! refused ([`DenyReason`]).
//!
//! Every variant has a stable snake_case [`code`](AuthFailure::code) for the
//! audit log (never rename one; add new ones) and the OCI error code the
//! client sees. `Display` is the precise, operator-facing text recorded in
//! the audit log; [`AuthFailure::client_message`] is the text a client may
//! see, and never tells an unknown identity apart from a wrong secret.

use serde::Serialize;

use crate::scope::Action;
use crate::scope_map::ScopeMapAction;

/// Why authentication failed: *who* could not be established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AuthFailure {
    /// No credentials were presented where they are needed.
    #[error("no credentials presented")]
    MissingCredentials,
    /// The credentials could not be read (bad Basic header, empty username…).
    #[error("credentials are malformed: {detail}")]
    MalformedCredentials {
        /// What was wrong.
        detail: String,
    },
    /// No identity has this username / app id / token name.
    #[error("no identity named {username:?}")]
    UnknownIdentity {
        /// The username presented.
        username: String,
    },
    /// The identity exists but the secret does not match any of its secrets.
    #[error("secret does not match any secret of {identity}")]
    BadSecret {
        /// The identity whose secrets were tried.
        identity: String,
    },
    /// The secret matched, but that secret has expired.
    #[error("secret {credential} of {identity} expired at {expired_at}")]
    ExpiredSecret {
        /// The identity.
        identity: String,
        /// Which of its secrets (e.g. `password1`, a secret id).
        credential: String,
        /// Unix seconds.
        expired_at: u64,
    },
    /// A berth refresh token was sent as the Basic password with a
    /// username other than [`crate::credential::TOKEN_USERNAME`] (decided
    /// from the password alone, before any lookup of the username).
    #[error("a refresh token was sent with the username {username:?} instead of the null GUID")]
    RefreshTokenWrongUsername {
        /// The username presented.
        username: String,
    },
    /// The identity (user, service principal) is disabled.
    #[error("identity {identity} is disabled")]
    DisabledIdentity {
        /// The identity.
        identity: String,
    },
    /// The repository-scoped token is disabled.
    #[error("repository token {token} is disabled")]
    DisabledToken {
        /// Token name.
        token: String,
    },
    /// The admin account is disabled on this registry.
    #[error("the admin account is disabled")]
    AdminDisabled,
    /// The stored secret hash is in a format berth cannot verify.
    #[error("stored secret of {identity} uses an unsupported hash format")]
    UnsupportedHash {
        /// The identity.
        identity: String,
    },
    /// The token's `exp` (plus leeway) has passed.
    #[error("{token} token expired at {expired_at} (now {now}, leeway {leeway}s)")]
    TokenExpired {
        /// Which kind of token: `access`, `refresh`, `identity` (or
        /// `bearer` when not known).
        token: &'static str,
        /// `exp`, unix seconds.
        expired_at: u64,
        /// Server time, unix seconds.
        now: u64,
        /// Allowed skew in seconds.
        leeway: u64,
    },
    /// The token's `nbf` is still in the future (beyond the leeway): usually
    /// clock skew between issuer and registry.
    #[error("token not valid before {not_before} (now {now}, leeway {leeway}s): check clock skew")]
    TokenNotYetValid {
        /// `nbf`, unix seconds.
        not_before: u64,
        /// Server time, unix seconds.
        now: u64,
        /// Allowed skew in seconds.
        leeway: u64,
    },
    /// The token was issued for another service.
    #[error("token audience {found:?} is not {expected:?}")]
    WrongAudience {
        /// What this server expects.
        expected: String,
        /// What the token says.
        found: Vec<String>,
    },
    /// The token was issued by someone else.
    #[error("token issuer {found:?} is not {expected:?}")]
    WrongIssuer {
        /// What this server expects.
        expected: String,
        /// What the token says.
        found: String,
    },
    /// The signature does not verify with the key named by `kid`.
    #[error("token signature does not verify")]
    BadSignature,
    /// The `kid` names no key this server trusts.
    #[error("token signed by unknown key {kid:?}; trusted keys: {trusted:?}")]
    UnknownKey {
        /// The `kid` header (empty if absent).
        kid: String,
        /// The key ids this server trusts (public information, in the JWKS).
        trusted: Vec<String>,
    },
    /// The `alg` header is not the key's algorithm (`none`, `HS256`, …).
    #[error("token algorithm {alg:?} is not allowed (only ES256)")]
    DisallowedAlgorithm {
        /// The `alg` header.
        alg: String,
    },
    /// A token of another kind was presented (e.g. an access token where a
    /// refresh token is needed).
    #[error("expected a {expected} token")]
    WrongTokenType {
        /// The kind expected: `access`, `refresh` or `identity`.
        expected: String,
    },
    /// The token is not a well-formed JWS/JWT with the claims berth needs.
    #[error("token is malformed: {detail}")]
    MalformedToken {
        /// What was wrong.
        detail: String,
    },
    /// The token was revoked: its credential generation is no longer current
    /// (secret regenerated, identity disabled or deleted, logout).
    #[error("token was revoked (credential generation {token_generation}, current {current_generation:?})")]
    RevokedToken {
        /// Generation recorded in the token.
        token_generation: u64,
        /// Current generation, `None` if the identity is gone.
        current_generation: Option<u64>,
    },
    /// The network rules refuse the client's address.
    #[error("client with IP {ip:?} is not allowed access")]
    IpDenied {
        /// The client address as seen by the gate.
        ip: String,
    },
    /// Too many requests / failed attempts.
    #[error("throttled; retry after {retry_after_secs}s")]
    Throttled {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// A workload identity's assertion names another issuer than the one
    /// the identity trusts.
    #[error("assertion issuer {issuer:?} is not the trusted issuer {expected:?}")]
    WorkloadIssuerUntrusted {
        /// `iss` of the assertion.
        issuer: String,
        /// The issuer the workload identity trusts.
        expected: String,
    },
    /// The assertion's `sub` is not the workload identity's subject.
    #[error("assertion subject {subject:?} is not the expected {expected:?}")]
    WorkloadSubjectMismatch {
        /// `sub` of the assertion.
        subject: String,
        /// The configured subject.
        expected: String,
    },
    /// The assertion's `aud` does not contain the configured audience.
    #[error("assertion audience {audience:?} does not contain {expected:?}")]
    WorkloadAudienceMismatch {
        /// `aud` of the assertion.
        audience: Vec<String>,
        /// The configured audience.
        expected: String,
    },
    /// The assertion's `kid` is not among the issuer's published keys
    /// (after a refetch of its JWKS).
    #[error("assertion key {kid:?} is not published by issuer {issuer:?}")]
    WorkloadKeyUnknown {
        /// `kid` of the assertion.
        kid: String,
        /// The issuer.
        issuer: String,
    },
    /// The assertion's algorithm is not the one pinned for its key type
    /// (RS256 for RSA keys, ES256 for P-256 keys; never `none` or HS*).
    #[error("assertion algorithm {alg:?} is refused")]
    WorkloadAlgorithmRefused {
        /// `alg` of the assertion.
        alg: String,
    },
    /// The issuer's discovery document or JWKS could not be fetched.
    #[error("issuer {issuer:?} unreachable: {detail}")]
    WorkloadIssuerUnreachable {
        /// The issuer.
        issuer: String,
        /// What failed.
        detail: String,
    },
    /// The assertion's `exp` (plus leeway) has passed.
    #[error("assertion expired at {expired_at} (now {now})")]
    WorkloadTokenExpired {
        /// `exp`, unix seconds.
        expired_at: u64,
        /// Server time.
        now: u64,
    },
    /// The assertion's `nbf` is in the future beyond the leeway.
    #[error("assertion not valid before {not_before} (now {now})")]
    WorkloadTokenNotYetValid {
        /// `nbf`, unix seconds.
        not_before: u64,
        /// Server time.
        now: u64,
    },
    /// The assertion is not a well-formed, correctly signed JWT.
    #[error("assertion is invalid: {detail}")]
    WorkloadTokenInvalid {
        /// What was wrong.
        detail: String,
    },
}

impl AuthFailure {
    /// Stable snake_case code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            AuthFailure::MissingCredentials => "missing_credentials",
            AuthFailure::MalformedCredentials { .. } => "malformed_credentials",
            AuthFailure::UnknownIdentity { .. } => "unknown_identity",
            AuthFailure::BadSecret { .. } => "bad_secret",
            AuthFailure::ExpiredSecret { .. } => "expired_secret",
            AuthFailure::RefreshTokenWrongUsername { .. } => "refresh_token_wrong_username",
            AuthFailure::DisabledIdentity { .. } => "disabled_identity",
            AuthFailure::DisabledToken { .. } => "disabled_token",
            AuthFailure::AdminDisabled => "admin_disabled",
            AuthFailure::UnsupportedHash { .. } => "unsupported_hash",
            AuthFailure::TokenExpired { .. } => "token_expired",
            AuthFailure::TokenNotYetValid { .. } => "token_not_yet_valid",
            AuthFailure::WrongAudience { .. } => "wrong_audience",
            AuthFailure::WrongIssuer { .. } => "wrong_issuer",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::UnknownKey { .. } => "unknown_key",
            AuthFailure::DisallowedAlgorithm { .. } => "disallowed_algorithm",
            AuthFailure::WrongTokenType { .. } => "wrong_token_type",
            AuthFailure::MalformedToken { .. } => "malformed_token",
            AuthFailure::RevokedToken { .. } => "revoked_token",
            AuthFailure::IpDenied { .. } => "ip_denied",
            AuthFailure::Throttled { .. } => "throttled",
            AuthFailure::WorkloadIssuerUntrusted { .. } => "workload_issuer_untrusted",
            AuthFailure::WorkloadSubjectMismatch { .. } => "workload_subject_mismatch",
            AuthFailure::WorkloadAudienceMismatch { .. } => "workload_audience_mismatch",
            AuthFailure::WorkloadKeyUnknown { .. } => "workload_key_unknown",
            AuthFailure::WorkloadAlgorithmRefused { .. } => "workload_algorithm_refused",
            AuthFailure::WorkloadIssuerUnreachable { .. } => "workload_issuer_unreachable",
            AuthFailure::WorkloadTokenExpired { .. } => "workload_token_expired",
            AuthFailure::WorkloadTokenNotYetValid { .. } => "workload_token_not_yet_valid",
            AuthFailure::WorkloadTokenInvalid { .. } => "workload_token_invalid",
        }
    }

    /// This failure with the kind of token it concerns filled in (only
    /// [`AuthFailure::TokenExpired`] records it).
    pub fn for_token(self, kind: &'static str) -> AuthFailure {
        match self {
            AuthFailure::TokenExpired {
                expired_at,
                now,
                leeway,
                ..
            } => AuthFailure::TokenExpired {
                token: kind,
                expired_at,
                now,
                leeway,
            },
            other => other,
        }
    }

    /// The OCI error code for the response body: `DENIED` for network
    /// rules, `TOOMANYREQUESTS` for throttling, `UNAUTHORIZED` otherwise.
    pub fn oci_code(&self) -> &'static str {
        match self {
            AuthFailure::IpDenied { .. } => "DENIED",
            AuthFailure::Throttled { .. } => "TOOMANYREQUESTS",
            _ => "UNAUTHORIZED",
        }
    }

    /// Whether this failure concerns a presented bearer/refresh/identity
    /// token, so that the challenge should carry `error="invalid_token"`.
    pub fn is_token_failure(&self) -> bool {
        matches!(
            self,
            AuthFailure::TokenExpired { .. }
                | AuthFailure::TokenNotYetValid { .. }
                | AuthFailure::WrongAudience { .. }
                | AuthFailure::WrongIssuer { .. }
                | AuthFailure::BadSignature
                | AuthFailure::UnknownKey { .. }
                | AuthFailure::DisallowedAlgorithm { .. }
                | AuthFailure::WrongTokenType { .. }
                | AuthFailure::MalformedToken { .. }
                | AuthFailure::RevokedToken { .. }
        )
    }

    /// Text safe to show the client. An unknown identity and a wrong secret
    /// read the same, so nobody learns which names exist. The states that
    /// are only reported after the secret verified (expired, disabled) may
    /// say so: the caller has proved they hold the secret.
    pub fn client_message(&self) -> String {
        match self {
            AuthFailure::MissingCredentials => "authentication required".into(),
            AuthFailure::MalformedCredentials { .. } => "malformed credentials".into(),
            AuthFailure::UnknownIdentity { .. }
            | AuthFailure::BadSecret { .. }
            | AuthFailure::UnsupportedHash { .. } => "invalid username or password".into(),
            AuthFailure::ExpiredSecret {
                identity,
                credential,
                expired_at,
            } => expired_secret_message(identity, credential, *expired_at),
            AuthFailure::RefreshTokenWrongUsername { .. } => format!(
                "the password is a registry refresh token: use it with the username {}",
                crate::credential::TOKEN_USERNAME
            ),
            AuthFailure::DisabledIdentity { .. } => "this identity is disabled".into(),
            AuthFailure::DisabledToken { .. } => "this repository token is disabled".into(),
            AuthFailure::AdminDisabled => "the admin account of this registry is disabled".into(),
            AuthFailure::TokenExpired {
                token, expired_at, ..
            } => expired_token_message(token, *expired_at),
            AuthFailure::TokenNotYetValid { .. } => {
                "the token is not valid yet: check the clock of this machine and the registry's"
                    .into()
            }
            AuthFailure::WrongAudience { expected, .. } => {
                format!("the token was issued for another registry, not {expected}")
            }
            AuthFailure::WrongIssuer { .. } => "the token was issued by an untrusted issuer".into(),
            AuthFailure::BadSignature => "the token signature is invalid".into(),
            AuthFailure::UnknownKey { kid, trusted } => format!(
                "token signed by untrusted key with ID {kid:?}; this registry trusts: {}",
                trusted.join(", ")
            ),
            AuthFailure::DisallowedAlgorithm { alg } => {
                format!("token algorithm {alg:?} is not accepted (ES256 only)")
            }
            AuthFailure::WrongTokenType { expected } => format!("a {expected} token is required"),
            AuthFailure::MalformedToken { .. } => "the token is malformed".into(),
            AuthFailure::RevokedToken { .. } => "the token was revoked: log in again".into(),
            AuthFailure::IpDenied { ip } => format!(
                "client with IP '{ip}' is not allowed access. Ask the registry administrator to allow it in the network rules"
            ),
            AuthFailure::Throttled { retry_after_secs } => {
                format!("too many requests: retry after {retry_after_secs} seconds")
            }
            // One message for every workload failure: the client learns
            // nothing about which client ids exist or what they trust; the
            // audit log has the precise reason.
            AuthFailure::WorkloadIssuerUntrusted { .. }
            | AuthFailure::WorkloadSubjectMismatch { .. }
            | AuthFailure::WorkloadAudienceMismatch { .. }
            | AuthFailure::WorkloadKeyUnknown { .. }
            | AuthFailure::WorkloadAlgorithmRefused { .. }
            | AuthFailure::WorkloadIssuerUnreachable { .. }
            | AuthFailure::WorkloadTokenExpired { .. }
            | AuthFailure::WorkloadTokenNotYetValid { .. }
            | AuthFailure::WorkloadTokenInvalid { .. } => {
                "the client assertion was not accepted for this client id".into()
            }
        }
    }
}

/// Unix seconds as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "the token has expired" naming which token, when, and the command that
/// renews it. The caller presented the token, so nothing is revealed.
fn expired_token_message(token: &str, expired_at: u64) -> String {
    let when = rfc3339(expired_at);
    match token {
        "refresh" => format!(
            "the token has expired: this registry refresh token expired at {when}; \
             run `berth login <login-server>` (or `docker login`) again for a new one"
        ),
        "identity" => format!(
            "the token has expired: this directory token expired at {when}; \
             get a new one with `berth login <login-server>`"
        ),
        "access" => format!(
            "the token has expired: this access token expired at {when}; \
             request a new one from the token endpoint (log in again)"
        ),
        _ => format!("the token has expired at {when}: log in again"),
    }
}

/// "this password or client secret has expired" naming the credential,
/// when, and the command that renews it. Only reported after the secret
/// verified, so the caller already knows the identity.
fn expired_secret_message(identity: &str, credential: &str, expired_at: u64) -> String {
    let when = rfc3339(expired_at);
    if let Some(app_id) = identity.strip_prefix("sp:") {
        format!(
            "this password or client secret has expired: client secret {credential} of service \
             principal {app_id} expired at {when}; create a new one with \
             `berth sp credential reset --id {app_id}` (or `berth sp credential add`)"
        )
    } else if let Some(name) = identity.strip_prefix("token:") {
        let flag = if credential == "password2" {
            "--password2"
        } else {
            "--password1"
        };
        format!(
            "this password or client secret has expired: {credential} of repository token \
             {name:?} expired at {when}; generate a new one with \
             `berth token credential generate --name {name} {flag}`"
        )
    } else {
        format!(
            "this password or client secret has expired: {credential} expired at {when}; \
             ask an administrator for a new one"
        )
    }
}

/// Why an authenticated (or anonymous) principal may not do something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum DenyReason {
    /// The identity holds no role assignment on this registry at all.
    #[error("no role assignment on this registry")]
    NoRoleAssignment,
    /// Role assignments exist, but none of their scopes covers the resource.
    #[error("no role assignment covers {resource}; assignments held: {assignments:?}")]
    OutsideRoleScope {
        /// The resource asked for, e.g. `repository team-b/app`.
        resource: String,
        /// The principal's assignments (`Role on scope for assignee`).
        assignments: Vec<String>,
    },
    /// The assignments covering the resource do not include the permission.
    #[error("{needed} is not included in the roles held: {held:?}")]
    InsufficientPermission {
        /// What was needed, e.g. `push on repository app`.
        needed: String,
        /// The covering assignments.
        held: Vec<String>,
    },
    /// The token's scope map has no rule giving this action on this repository.
    #[error("scope map {scope_map} has no rule granting {needs} on repository {repository}")]
    ScopeMapMissingAction {
        /// Scope map name.
        scope_map: String,
        /// Repository asked for.
        repository: String,
        /// The scope-map action that would be needed.
        needs: ScopeMapAction,
    },
    /// The token's scope map was not supplied (deleted, or a server bug).
    #[error("scope map {scope_map} of the token is not available")]
    ScopeMapUnavailable {
        /// Scope map name.
        scope_map: String,
    },
    /// Catalog listing cannot be granted by a scope map.
    #[error("catalog listing cannot be granted to a repository-scoped token")]
    CatalogNotGrantableByScopeMap,
    /// Catalog listing needs a registry-wide role; repository-scoped ones
    /// would leak other repositories' names.
    #[error("catalog listing needs a registry-wide role with pull; held: {held:?}")]
    CatalogRequiresRegistryRole {
        /// The repository-scoped assignments held.
        held: Vec<String>,
    },
    /// Anonymous pull is turned off on this registry.
    #[error("anonymous pull is disabled on this registry")]
    AnonymousPullDisabled,
    /// Anonymous callers may only pull.
    #[error("anonymous callers may only pull; {action} needs authentication")]
    AuthenticationRequired {
        /// The action refused.
        action: Action,
    },
    /// The admin account's fixed permissions do not include this action.
    #[error("the admin account has push and pull only; {action} is not included")]
    AdminAccountLimit {
        /// The action refused.
        action: Action,
    },
    /// Management needs a role assignment; this kind of principal has none.
    #[error("a {principal_kind} cannot hold management permissions")]
    ManagementRequiresRole {
        /// Principal kind code.
        principal_kind: String,
    },
    /// The action does not apply to this resource (e.g. `registry:catalog:pull`).
    #[error("action {action} does not apply to {resource}")]
    ActionNotApplicable {
        /// The action.
        action: Action,
        /// The resource.
        resource: String,
    },
    /// The repository name is not a valid repository name.
    #[error("{name:?} is not a valid repository name")]
    InvalidRepositoryName {
        /// The name asked for.
        name: String,
    },
    /// A `registry`-type resource berth does not know.
    #[error("unknown resource {resource}")]
    UnknownResource {
        /// The resource.
        resource: String,
    },
}

impl DenyReason {
    /// Stable snake_case code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::NoRoleAssignment => "no_role_assignment",
            DenyReason::OutsideRoleScope { .. } => "outside_role_scope",
            DenyReason::InsufficientPermission { .. } => "insufficient_permission",
            DenyReason::ScopeMapMissingAction { .. } => "scope_map_missing_action",
            DenyReason::ScopeMapUnavailable { .. } => "scope_map_unavailable",
            DenyReason::CatalogNotGrantableByScopeMap => "catalog_not_grantable",
            DenyReason::CatalogRequiresRegistryRole { .. } => "catalog_requires_registry_role",
            DenyReason::AnonymousPullDisabled => "anonymous_pull_disabled",
            DenyReason::AuthenticationRequired { .. } => "authentication_required",
            DenyReason::AdminAccountLimit { .. } => "admin_account_limit",
            DenyReason::ManagementRequiresRole { .. } => "management_requires_role",
            DenyReason::ActionNotApplicable { .. } => "action_not_applicable",
            DenyReason::InvalidRepositoryName { .. } => "invalid_repository_name",
            DenyReason::UnknownResource { .. } => "unknown_resource",
        }
    }

    /// The OCI error code a registry answer uses: anonymous callers get
    /// `UNAUTHORIZED` (they should authenticate), everyone else `DENIED`.
    pub fn oci_code(&self) -> &'static str {
        match self {
            DenyReason::AnonymousPullDisabled | DenyReason::AuthenticationRequired { .. } => {
                "UNAUTHORIZED"
            }
            _ => "DENIED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_identity_and_bad_secret_look_the_same_to_clients() {
        let a = AuthFailure::UnknownIdentity {
            username: "ghost".into(),
        };
        let b = AuthFailure::BadSecret {
            identity: "token:real".into(),
        };
        assert_eq!(a.client_message(), b.client_message());
        assert!(!a.client_message().contains("ghost"));
        assert_ne!(a.code(), b.code());
    }

    #[test]
    fn codes_are_stable_and_serialised() {
        let f = AuthFailure::TokenExpired {
            token: "refresh",
            expired_at: 10,
            now: 80,
            leeway: 60,
        };
        assert_eq!(f.code(), "token_expired");
        assert!(f.is_token_failure());
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["code"], "token_expired");
        assert_eq!(v["expired_at"], 10);
        let d = DenyReason::AnonymousPullDisabled;
        assert_eq!(serde_json::to_value(&d).unwrap()["code"], d.code());
        assert_eq!(d.oci_code(), "UNAUTHORIZED");
        assert_eq!(DenyReason::NoRoleAssignment.oci_code(), "DENIED");
        assert_eq!(
            AuthFailure::IpDenied {
                ip: "1.2.3.4".into()
            }
            .oci_code(),
            "DENIED"
        );
        assert_eq!(
            AuthFailure::Throttled {
                retry_after_secs: 3
            }
            .oci_code(),
            "TOOMANYREQUESTS"
        );
    }

    #[test]
    fn unknown_key_names_trusted_keys() {
        let f = AuthFailure::UnknownKey {
            kid: "old".into(),
            trusted: vec!["k1".into(), "k2".into()],
        };
        assert!(f.client_message().contains("k1, k2"));
    }
}
