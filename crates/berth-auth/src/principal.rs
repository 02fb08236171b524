//! Who is asking: the outcome of authentication.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::role::Assignee;

/// An authenticated (or anonymous) caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// A user of the directory, with the groups they belong to.
    DirectoryUser {
        /// Object id.
        id: Uuid,
        /// Display / sign-in name.
        name: String,
        /// Object ids of the user's groups (role assignments to a group
        /// apply to its members).
        groups: Vec<Uuid>,
    },
    /// An application identity logging in with app id + client secret.
    ServicePrincipal {
        /// App (client) id; the Basic username.
        app_id: Uuid,
        /// Display name.
        name: String,
    },
    /// A workload (managed) identity, logged in with a trusted OIDC token.
    WorkloadIdentity {
        /// Client id; role assignments name it as a service principal.
        client_id: Uuid,
        /// Display name.
        name: String,
    },
    /// The registry's admin account: pull and push everywhere, no
    /// management.
    Admin {
        /// The registry name (the Basic username).
        registry: String,
    },
    /// A repository-scoped token, governed by its scope map.
    RepositoryToken {
        /// Token name (the Basic username).
        name: String,
        /// Name of the token's scope map.
        scope_map: String,
    },
    /// No credentials.
    Anonymous,
}

/// The kind of a [`Principal`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// [`Principal::DirectoryUser`].
    DirectoryUser,
    /// [`Principal::ServicePrincipal`].
    ServicePrincipal,
    /// [`Principal::WorkloadIdentity`].
    WorkloadIdentity,
    /// [`Principal::Admin`].
    Admin,
    /// [`Principal::RepositoryToken`].
    RepositoryToken,
    /// [`Principal::Anonymous`].
    Anonymous,
}

impl PrincipalKind {
    /// Stable snake_case code.
    pub const fn code(self) -> &'static str {
        match self {
            PrincipalKind::DirectoryUser => "directory_user",
            PrincipalKind::ServicePrincipal => "service_principal",
            PrincipalKind::WorkloadIdentity => "workload_identity",
            PrincipalKind::Admin => "admin",
            PrincipalKind::RepositoryToken => "repository_token",
            PrincipalKind::Anonymous => "anonymous",
        }
    }
}

impl Principal {
    /// The kind.
    pub fn kind(&self) -> PrincipalKind {
        match self {
            Principal::DirectoryUser { .. } => PrincipalKind::DirectoryUser,
            Principal::ServicePrincipal { .. } => PrincipalKind::ServicePrincipal,
            Principal::WorkloadIdentity { .. } => PrincipalKind::WorkloadIdentity,
            Principal::Admin { .. } => PrincipalKind::Admin,
            Principal::RepositoryToken { .. } => PrincipalKind::RepositoryToken,
            Principal::Anonymous => PrincipalKind::Anonymous,
        }
    }

    /// The JWT `sub`: user object id, app id, client id, registry name,
    /// token name, or empty for anonymous (Docker JWT spec).
    pub fn subject(&self) -> String {
        match self {
            Principal::DirectoryUser { id, .. } => id.to_string(),
            Principal::ServicePrincipal { app_id, .. } => app_id.to_string(),
            Principal::WorkloadIdentity { client_id, .. } => client_id.to_string(),
            Principal::Admin { registry } => registry.clone(),
            Principal::RepositoryToken { name, .. } => name.clone(),
            Principal::Anonymous => String::new(),
        }
    }

    /// A reference that identifies the principal across kinds (stored in
    /// refresh and identity tokens to find the credential again).
    pub fn reference(&self) -> PrincipalRef {
        match self {
            Principal::DirectoryUser { id, .. } => PrincipalRef::User(*id),
            Principal::ServicePrincipal { app_id, .. } => PrincipalRef::ServicePrincipal(*app_id),
            Principal::WorkloadIdentity { client_id, .. } => {
                PrincipalRef::WorkloadIdentity(*client_id)
            }
            Principal::Admin { registry } => PrincipalRef::Admin(registry.clone()),
            Principal::RepositoryToken { name, .. } => PrincipalRef::Token(name.clone()),
            Principal::Anonymous => PrincipalRef::Anonymous,
        }
    }

    /// Everything a role assignment may name to reach this principal: the
    /// user and each of their groups, or the service principal / workload
    /// identity. Empty for admin, tokens and anonymous (no roles).
    pub fn assignees(&self) -> Vec<Assignee> {
        match self {
            Principal::DirectoryUser { id, groups, .. } => std::iter::once(Assignee::User(*id))
                .chain(groups.iter().map(|g| Assignee::Group(*g)))
                .collect(),
            Principal::ServicePrincipal { app_id, .. } => vec![Assignee::ServicePrincipal(*app_id)],
            Principal::WorkloadIdentity { client_id, .. } => {
                vec![Assignee::ServicePrincipal(*client_id)]
            }
            Principal::Admin { .. } | Principal::RepositoryToken { .. } | Principal::Anonymous => {
                Vec::new()
            }
        }
    }

    /// Whether role assignments govern this principal.
    pub fn uses_roles(&self) -> bool {
        matches!(
            self,
            Principal::DirectoryUser { .. }
                | Principal::ServicePrincipal { .. }
                | Principal::WorkloadIdentity { .. }
        )
    }
}

/// `directory_user user@example (id)` etc., for logs and the audit
/// `Identity` column.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::DirectoryUser { id, name, .. } => write!(f, "user {name} ({id})"),
            Principal::ServicePrincipal { app_id, name } => {
                write!(f, "service principal {name} ({app_id})")
            }
            Principal::WorkloadIdentity { client_id, name } => {
                write!(f, "workload identity {name} ({client_id})")
            }
            Principal::Admin { registry } => write!(f, "admin account of {registry}"),
            Principal::RepositoryToken { name, scope_map } => {
                write!(f, "repository token {name} (scope map {scope_map})")
            }
            Principal::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// A compact, parseable reference to a principal: `user:<uuid>`,
/// `sp:<uuid>`, `workload:<uuid>`, `admin:<registry>`, `token:<name>`,
/// `anonymous`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PrincipalRef {
    /// A directory user.
    User(Uuid),
    /// A service principal.
    ServicePrincipal(Uuid),
    /// A workload identity.
    WorkloadIdentity(Uuid),
    /// The admin account.
    Admin(String),
    /// A repository token.
    Token(String),
    /// Anonymous.
    Anonymous,
}

impl fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalRef::User(id) => write!(f, "user:{id}"),
            PrincipalRef::ServicePrincipal(id) => write!(f, "sp:{id}"),
            PrincipalRef::WorkloadIdentity(id) => write!(f, "workload:{id}"),
            PrincipalRef::Admin(r) => write!(f, "admin:{r}"),
            PrincipalRef::Token(n) => write!(f, "token:{n}"),
            PrincipalRef::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// A malformed [`PrincipalRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed principal reference {0:?}")]
pub struct InvalidPrincipalRef(pub String);

impl FromStr for PrincipalRef {
    type Err = InvalidPrincipalRef;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidPrincipalRef(s.to_string());
        if s == "anonymous" {
            return Ok(PrincipalRef::Anonymous);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(err)?;
        let uuid = || Uuid::parse_str(rest).map_err(|_| err());
        match kind {
            "user" => Ok(PrincipalRef::User(uuid()?)),
            "sp" => Ok(PrincipalRef::ServicePrincipal(uuid()?)),
            "workload" => Ok(PrincipalRef::WorkloadIdentity(uuid()?)),
            "admin" if !rest.is_empty() => Ok(PrincipalRef::Admin(rest.to_string())),
            "token" if !rest.is_empty() => Ok(PrincipalRef::Token(rest.to_string())),
            _ => Err(err()),
        }
    }
}

impl Serialize for PrincipalRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PrincipalRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignees_include_groups() {
        let (u, g1, g2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let p = Principal::DirectoryUser {
            id: u,
            name: "ana".into(),
            groups: vec![g1, g2],
        };
        assert_eq!(
            p.assignees(),
            vec![Assignee::User(u), Assignee::Group(g1), Assignee::Group(g2)]
        );
        let w = Principal::WorkloadIdentity {
            client_id: u,
            name: "ci".into(),
        };
        assert_eq!(w.assignees(), vec![Assignee::ServicePrincipal(u)]);
        assert!(Principal::Anonymous.assignees().is_empty());
        assert!(!Principal::Admin {
            registry: "reg".into()
        }
        .uses_roles());
    }

    #[test]
    fn subjects() {
        assert_eq!(Principal::Anonymous.subject(), "");
        let t = Principal::RepositoryToken {
            name: "ci-token".into(),
            scope_map: "m".into(),
        };
        assert_eq!(t.subject(), "ci-token");
        assert_eq!(t.kind().code(), "repository_token");
    }

    #[test]
    fn refs_round_trip() {
        let id = Uuid::new_v4();
        for r in [
            PrincipalRef::User(id),
            PrincipalRef::ServicePrincipal(id),
            PrincipalRef::WorkloadIdentity(id),
            PrincipalRef::Admin("myregistry".into()),
            PrincipalRef::Token("ci-token".into()),
            PrincipalRef::Anonymous,
        ] {
            assert_eq!(r.to_string().parse::<PrincipalRef>().unwrap(), r);
        }
        for bad in ["", "user:", "user:nope", "token:", "x:y", "admin"] {
            assert!(bad.parse::<PrincipalRef>().is_err(), "{bad}");
        }
    }
}
