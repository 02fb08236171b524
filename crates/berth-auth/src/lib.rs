//! berth's identity-and-access core: pure, no HTTP, no database.
//!
//! - [`scope`]: the Docker token scope grammar and action sets.
//! - [`scope_map`]: scope maps of repository-scoped tokens.
//! - [`role`]: built-in roles and role assignments.
//! - [`principal`]: who is asking.
//! - [`authorize`](mod@authorize): may they? — a [`authorize::Decision`] with its reason.
//! - [`jwt`]: ES256 tokens, key rotation, JWKS.
//! - [`password`]: argon2id, secret generation, verified-credential cache.
//! - [`credential`]: Basic/refresh/identity-token authentication and the
//!   storage traits the server implements.
//! - [`error`]: stable reason codes for the audit log.
//! - [`clock`]: injectable time.
//!
//! # A token request, end to end
//!
//! ```
//! use std::sync::Arc;
//! use berth_auth::{authorize, scope, KeySet, ManualClock, PolicyContext, Principal,
//!                  ScopeMap, SigningKey, TokenConfig, TokenService};
//!
//! // Authenticated earlier (see `credential::Authenticator`).
//! let who = Principal::RepositoryToken { name: "ci-token".into(), scope_map: "_repositories_pull".into() };
//! // Loaded by the server (see `credential::load_policy_context`).
//! let ctx = PolicyContext { scope_map: ScopeMap::system("_repositories_pull"), ..Default::default() };
//!
//! let requested = scope::parse_scope_params(["repository:library/hello:pull,push"]);
//! let grant = authorize(&who, &ctx, &requested.scopes);
//! assert_eq!(grant.scope_string(), "repository:library/hello:pull");
//! for (scope, action, reason) in grant.denials() {
//!     // -> audit log: "push on library/hello: scope_map_missing_action"
//!     assert_eq!((scope.name.as_str(), action.as_str(), reason.code()),
//!                ("library/hello", "push", "scope_map_missing_action"));
//! }
//!
//! let clock = Arc::new(ManualClock::new(1_700_000_000));
//! let tokens = TokenService::new(TokenConfig::new("registry.example.com"),
//!                                KeySet::new(SigningKey::generate()?), clock);
//! let issued = tokens.issue_access(&who.subject(), grant.access())?;
//! let claims = tokens.verify_access(&issued.token)?;
//! assert_eq!(claims.access[0].actions, vec!["pull"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod authorize;
pub mod clock;
pub mod credential;
pub mod error;
pub mod jwt;
pub mod oidc;
pub mod password;
pub mod principal;
pub mod refusal;
pub mod role;
pub mod scope;
pub mod scope_map;

pub use authorize::{
    authorize, authorize_action, authorize_management, authorize_sign, ActionDecision, AllowReason,
    Decision, Grant, ManagementAction, PolicyContext, RegistrySettings, ScopeGrant,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credential::{AuthenticateError, Authenticated, Authenticator, IdentityStore, PolicyStore};
pub use error::{AuthFailure, DenyReason};
pub use jwt::{KeySet, SigningKey, TokenConfig, TokenService};
pub use password::{Argon2Params, SecretHasher, VerifiedCache};
pub use principal::{Principal, PrincipalKind, PrincipalRef};
pub use role::{Assignee, Role, RoleAssignment, RoleScope};
pub use scope::{Action, ActionSet, RequestedScope, ResourceActions, ResourceType};
pub use scope_map::{ScopeMap, ScopeMapAction, ScopeMapRule};
