//! The per-request audit draft: what the login paths and repository
//! handlers learn about a request, filled in while it runs and turned into
//! events by [`super::layer`] once the response status is known.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_auth::error::{AuthFailure, DenyReason};
use berth_auth::principal::Principal;
use berth_store::audit::AuditIdentity;
use serde_json::{Map, Value};

/// A login attempt noted by a login path.
#[derive(Debug, Clone)]
pub struct LoginNote {
    /// `token_get`, `token_post`, `exchange`, `directory_token`,
    /// `v2_basic`, `v2_bearer`, `v2_anonymous`, `management`.
    pub operation: &'static str,
    /// Precise reason code; `ok` on success.
    pub reason: String,
}

/// A repository operation noted by a handler.
#[derive(Debug, Clone, Default)]
pub struct RepoNote {
    /// Repository name.
    pub repository: String,
    /// `push`, `pull`, `untag`, `delete_manifest`, `delete_repository`.
    pub operation: &'static str,
    /// Tag.
    pub tag: Option<String>,
    /// Manifest digest.
    pub digest: Option<String>,
    /// Manifest media type.
    pub media_type: Option<String>,
    /// Manifest `artifactType`.
    pub artifact_type: Option<String>,
    /// Manifest size.
    pub size: Option<i64>,
}

/// Everything noted about one request.
#[derive(Debug, Default)]
pub struct Draft {
    /// The login attempt, if the request was one.
    pub login: Option<LoginNote>,
    /// The repository operation, if the request was one.
    pub repo: Option<RepoNote>,
    /// Who was recognised.
    pub identity: Option<AuditIdentity>,
    /// The username (or app id) presented.
    pub username: Option<String>,
    /// Client IP as the network rules see it.
    pub client_ip: Option<IpAddr>,
    /// Parts of the explain record (`asked`, `granted`, `decided_by`, …).
    pub explain: Map<String, Value>,
}

/// The audit handle of one request (cheap to clone). The layer creates it
/// with the correlation id; extract it in handlers like any extractor.
#[derive(Debug, Clone)]
pub struct RequestAudit {
    correlation_id: Arc<str>,
    draft: Arc<Mutex<Draft>>,
}

impl RequestAudit {
    /// A new draft for the request with `correlation_id`.
    pub fn new(correlation_id: &str) -> Self {
        RequestAudit {
            correlation_id: Arc::from(correlation_id),
            draft: Arc::default(),
        }
    }

    /// The request's correlation id.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    fn with(&self, f: impl FnOnce(&mut Draft)) {
        match self.draft.lock() {
            Ok(mut d) => f(&mut d),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Take the draft (the layer does, once the response is ready).
    pub fn take(&self) -> Draft {
        let mut out = Draft::default();
        self.with(|d| std::mem::swap(d, &mut out));
        out
    }

    /// Note a login attempt and its outcome.
    pub fn login(&self, operation: &'static str, reason: &str) {
        let reason = reason.to_string();
        self.with(|d| d.login = Some(LoginNote { operation, reason }));
    }

    /// Note a failed login: its code, and the failure in full for explain.
    pub fn login_failed(&self, operation: &'static str, f: &AuthFailure) {
        self.login(operation, f.code());
        let rule = match f {
            AuthFailure::IpDenied { .. } => "network_rule",
            AuthFailure::Throttled { .. } => "throttling",
            _ => "credential",
        };
        self.decided_by(rule, f.code(), &f.to_string(), json_of(f));
    }

    /// Note who was recognised.
    pub fn principal(&self, p: &Principal) {
        let identity = identity_of(p);
        self.with(|d| d.identity = identity);
    }

    /// Note the username presented.
    pub fn username(&self, name: &str) {
        let name = name.to_string();
        self.with(|d| d.username = Some(name));
    }

    /// Note the client address.
    pub fn client_ip(&self, ip: Option<IpAddr>) {
        self.with(|d| d.client_ip = ip);
    }

    /// Note a repository operation.
    pub fn repository(&self, note: RepoNote) {
        self.with(|d| d.repo = Some(note));
    }

    /// Change the noted repository operation, if there is one.
    pub fn update_repository(&self, f: impl FnOnce(&mut RepoNote)) {
        self.with(|d| {
            if let Some(r) = d.repo.as_mut() {
                f(r)
            }
        });
    }

    /// Set one part of the explain record.
    pub fn explain(&self, key: &str, value: Value) {
        let key = key.to_string();
        self.with(|d| {
            d.explain.insert(key, value);
        });
    }

    /// Record which rule decided a refusal: `rule` is `credential`,
    /// `role_assignment`, `scope_map`, `network_rule`, `settings`,
    /// `throttling` or `token_scope`.
    pub fn decided_by(&self, rule: &str, reason: &str, message: &str, detail: Value) {
        self.explain(
            "decided_by",
            serde_json::json!({
                "rule": rule,
                "reason": reason,
                "message": message,
                "detail": detail,
            }),
        );
    }

    /// Record a policy refusal ([`DenyReason`]) and the rule behind it.
    pub fn denied_by(&self, reason: &DenyReason) {
        self.decided_by(
            rule_of(reason),
            reason.code(),
            &reason.to_string(),
            json_of(reason),
        );
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestAudit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestAudit>()
            .cloned()
            .unwrap_or_else(|| RequestAudit::new("")))
    }
}

fn json_of(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Which kind of rule a policy refusal comes from.
pub fn rule_of(reason: &DenyReason) -> &'static str {
    match reason {
        DenyReason::NoRoleAssignment
        | DenyReason::OutsideRoleScope { .. }
        | DenyReason::InsufficientPermission { .. }
        | DenyReason::CatalogRequiresRegistryRole { .. }
        | DenyReason::ManagementRequiresRole { .. } => "role_assignment",
        DenyReason::ScopeMapMissingAction { .. }
        | DenyReason::ScopeMapUnavailable { .. }
        | DenyReason::CatalogNotGrantableByScopeMap => "scope_map",
        DenyReason::AnonymousPullDisabled
        | DenyReason::AuthenticationRequired { .. }
        | DenyReason::AdminAccountLimit { .. } => "settings",
        DenyReason::ActionNotApplicable { .. }
        | DenyReason::InvalidRepositoryName { .. }
        | DenyReason::UnknownResource { .. } => "request",
    }
}

/// The audit identity of a principal (`None` for anonymous).
pub fn identity_of(p: &Principal) -> Option<AuditIdentity> {
    let name = match p {
        Principal::DirectoryUser { name, .. }
        | Principal::ServicePrincipal { name, .. }
        | Principal::WorkloadIdentity { name, .. }
        | Principal::RepositoryToken { name, .. } => name.clone(),
        Principal::Admin { registry } => registry.clone(),
        Principal::Anonymous => return None,
    };
    Some(AuditIdentity {
        kind: p.kind().code().to_string(),
        id: p.subject(),
        name,
    })
}
