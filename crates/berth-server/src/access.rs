//! What a `/v2` request needs (the distribution spec's implied access) and
//! the gate that decides whether the caller has it.
//!
//! Handlers never look at credentials: the dispatcher computes the
//! [`RequiredAccess`] of the request, asks the [`AccessGate`], and only then
//! calls the handler.

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use berth_core::route::V2Route;
use futures::future::BoxFuture;

/// An action on a repository, as in the Docker token scope grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoAction {
    /// Read content.
    Pull,
    /// Write content.
    Push,
    /// Delete content.
    Delete,
}

impl RepoAction {
    /// The scope grammar's name for the action.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoAction::Pull => "pull",
            RepoAction::Push => "push",
            RepoAction::Delete => "delete",
        }
    }
}

/// One repository and the actions needed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoAccess {
    /// Repository name (validated).
    pub repository: String,
    /// Needed actions.
    pub actions: Vec<RepoAction>,
}

/// Everything a request needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequiredAccess {
    /// Repository access the request cannot proceed without.
    pub repositories: Vec<RepoAccess>,
    /// `registry:catalog:*`.
    pub catalog: bool,
    /// Access that, when missing, degrades the request instead of refusing
    /// it: pull on a mount's `from` (without it the mount falls back to an
    /// ordinary upload session, as the spec allows).
    pub optional: Vec<RepoAccess>,
    /// A mount without `from`: pull on whichever repositories hold the
    /// blob, known only once the store has named them, so the gate answers
    /// with a [`PullCheck`] instead of a yes or no.
    pub pull_check: bool,
}

/// Whether the caller may pull a repository, for repositories the request
/// did not name (the source of a mount without `from`). The gate builds it
/// from the same principal, policy and token it decided the request with.
pub trait PullCheck: Send + Sync {
    /// Whether the caller may pull `repository`.
    fn may_pull(&self, repository: &str) -> bool;
}

/// A [`PullCheck`] that allows every repository (no authentication).
pub struct PullAnything;

impl PullCheck for PullAnything {
    fn may_pull(&self, _repository: &str) -> bool {
        true
    }
}

/// What the gate granted beyond the required access.
#[derive(Clone, Default)]
pub struct Granted {
    /// Whether every `optional` access is allowed too.
    pub optional: bool,
    /// With [`RequiredAccess::pull_check`]: which other repositories the
    /// caller may pull (`None`: none).
    pub pull_check: Option<std::sync::Arc<dyn PullCheck>>,
}

impl std::fmt::Debug for Granted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Granted")
            .field("optional", &self.optional)
            .field("pull_check", &self.pull_check.is_some())
            .finish()
    }
}

/// The access the distribution spec implies for `method` on `route`
/// (GET/HEAD → pull; POST/PUT/PATCH → pull+push; DELETE → delete; catalog →
/// `registry:catalog:*`; a mount also needs pull on `from`, or, without
/// `from` (`mount_any`), on a repository that holds the blob).
pub fn required_access(
    method: &Method,
    route: &V2Route<'_>,
    mount_from: Option<&str>,
    mount_any: bool,
) -> RequiredAccess {
    let mut req = RequiredAccess::default();
    match route {
        V2Route::Base => {}
        V2Route::Catalog => req.catalog = true,
        _ => {
            if let Some(name) = route.repository() {
                let actions = match *method {
                    Method::GET | Method::HEAD => vec![RepoAction::Pull],
                    Method::DELETE => vec![RepoAction::Delete],
                    _ => vec![RepoAction::Pull, RepoAction::Push],
                };
                req.repositories.push(RepoAccess {
                    repository: name.to_string(),
                    actions,
                });
                if let V2Route::UploadStart { .. } = route {
                    if let Some(from) = mount_from {
                        req.optional.push(RepoAccess {
                            repository: from.to_string(),
                            actions: vec![RepoAction::Pull],
                        });
                    } else if mount_any {
                        req.pull_check = true;
                    }
                }
            }
        }
    }
    req
}

/// What the gate may look at in a request.
#[derive(Debug)]
pub struct RequestContext<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// Request headers (credentials, `X-Forwarded-For`).
    pub headers: &'a HeaderMap,
    /// Address of the connection's peer.
    pub peer: Option<std::net::IpAddr>,
    /// The request's audit draft (the gate notes logins and refusals).
    pub audit: &'a crate::audit::RequestAudit,
}

/// Decides whether a request may proceed. The identity-and-access layer
/// implements it; [`OpenGate`] lets everything through.
pub trait AccessGate: Send + Sync + 'static {
    /// `Ok` to proceed (saying whether the optional access is granted too),
    /// or the refusal response to send.
    fn check<'a>(
        &'a self,
        ctx: &'a RequestContext<'a>,
        required: &'a RequiredAccess,
    ) -> BoxFuture<'a, Result<Granted, Response>>;
}

/// A gate that allows every request (no authentication configured).
pub struct OpenGate;

impl AccessGate for OpenGate {
    fn check<'a>(
        &'a self,
        _ctx: &'a RequestContext<'a>,
        required: &'a RequiredAccess,
    ) -> BoxFuture<'a, Result<Granted, Response>> {
        Box::pin(async move {
            Ok(Granted {
                optional: true,
                pull_check: required
                    .pull_check
                    .then(|| std::sync::Arc::new(PullAnything) as std::sync::Arc<dyn PullCheck>),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_implied_access() {
        let r = V2Route::Manifest {
            name: "a/b",
            reference: "x",
        };
        assert_eq!(
            required_access(&Method::GET, &r, None, false).repositories[0].actions,
            vec![RepoAction::Pull]
        );
        assert_eq!(
            required_access(&Method::PUT, &r, None, false).repositories[0].actions,
            vec![RepoAction::Pull, RepoAction::Push]
        );
        assert_eq!(
            required_access(&Method::DELETE, &r, None, false).repositories[0].actions,
            vec![RepoAction::Delete]
        );
        let mount = required_access(
            &Method::POST,
            &V2Route::UploadStart { name: "a" },
            Some("b"),
            true,
        );
        assert_eq!(mount.repositories.len(), 1);
        assert_eq!(mount.optional[0].repository, "b");
        assert!(!mount.pull_check, "a mount with from names its source");
        let anywhere = required_access(
            &Method::POST,
            &V2Route::UploadStart { name: "a" },
            None,
            true,
        );
        assert!(anywhere.pull_check && anywhere.optional.is_empty());
        assert!(required_access(&Method::GET, &V2Route::Catalog, None, false).catalog);
    }
}
