//! Built-in roles and role assignments.
//!
//! The permission matrix follows the reference (§5). Where it is silent,
//! berth decides (see the crate README):
//!
//! | role           | mgmt read | mgmt write | role assignments | policies | repository actions                          | catalog | sign |
//! |----------------|:---------:|:----------:|:----------------:|:--------:|---------------------------------------------|:-------:|:----:|
//! | Owner          | ✓ | ✓ | ✓ | ✓ | pull push delete metadata_read metadata_write | ✓ |   |
//! | Contributor    | ✓ | ✓ |   | ✓ | pull push delete metadata_read metadata_write | ✓ |   |
//! | Reader         | ✓ |   |   |   | pull metadata_read                            | ✓ |   |
//! | AcrPush        |   |   |   |   | pull push metadata_read metadata_write        | ✓ |   |
//! | AcrPull        |   |   |   |   | pull metadata_read                            | ✓ |   |
//! | AcrDelete      |   |   |   |   | delete                                        |   |   |
//! | AcrImageSigner |   |   |   |   | (none)                                        |   | ✓ |
//!
//! - `metadata_read` goes with pull (listing is reading), `metadata_write`
//!   with push (untagging is no more than a pusher can do by overwriting).
//! - Catalog listing: every role that can pull, but only when assigned on
//!   the whole registry; a repository-scoped assignment never lists the
//!   catalog, which would reveal repositories outside its scope.
//! - Management permissions come only from registry-wide assignments.

use std::fmt;
use std::str::FromStr;

use berth_core::RepositoryName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::scope::{Action, ActionSet};

/// A built-in role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Everything, including role assignments.
    Owner,
    /// Everything except role assignments.
    Contributor,
    /// Management read and pull.
    Reader,
    /// Push and pull.
    AcrPush,
    /// Pull.
    AcrPull,
    /// Delete.
    AcrDelete,
    /// Sign images (content trust).
    AcrImageSigner,
}

/// What a role permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleCapabilities {
    /// Read registry configuration through the management API.
    pub management_read: bool,
    /// Change registry configuration, identities, tokens, scope maps.
    pub management_write: bool,
    /// Create and delete role assignments.
    pub manage_role_assignments: bool,
    /// Change policies (network rules, anonymous pull, retention…).
    pub change_policies: bool,
    /// Sign images.
    pub sign: bool,
    /// Repository actions.
    pub repository: ActionSet,
    /// List the catalog (only from a registry-wide assignment).
    pub catalog: bool,
}

const READ: ActionSet = ActionSet::of(&[Action::Pull, Action::MetadataRead]);

impl Role {
    /// Every built-in role.
    pub const ALL: [Role; 7] = [
        Role::Owner,
        Role::Contributor,
        Role::Reader,
        Role::AcrPush,
        Role::AcrPull,
        Role::AcrDelete,
        Role::AcrImageSigner,
    ];

    /// The role's name, e.g. `AcrPush`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Contributor => "Contributor",
            Role::Reader => "Reader",
            Role::AcrPush => "AcrPush",
            Role::AcrPull => "AcrPull",
            Role::AcrDelete => "AcrDelete",
            Role::AcrImageSigner => "AcrImageSigner",
        }
    }

    /// The permission matrix.
    pub const fn capabilities(self) -> RoleCapabilities {
        let none = RoleCapabilities {
            management_read: false,
            management_write: false,
            manage_role_assignments: false,
            change_policies: false,
            sign: false,
            repository: ActionSet::EMPTY,
            catalog: false,
        };
        match self {
            Role::Owner => RoleCapabilities {
                management_read: true,
                management_write: true,
                manage_role_assignments: true,
                change_policies: true,
                repository: ActionSet::REPOSITORY_ALL,
                catalog: true,
                ..none
            },
            Role::Contributor => RoleCapabilities {
                management_read: true,
                management_write: true,
                change_policies: true,
                repository: ActionSet::REPOSITORY_ALL,
                catalog: true,
                ..none
            },
            Role::Reader => RoleCapabilities {
                management_read: true,
                repository: READ,
                catalog: true,
                ..none
            },
            Role::AcrPush => RoleCapabilities {
                repository: ActionSet::of(&[
                    Action::Pull,
                    Action::Push,
                    Action::MetadataRead,
                    Action::MetadataWrite,
                ]),
                catalog: true,
                ..none
            },
            Role::AcrPull => RoleCapabilities {
                repository: READ,
                catalog: true,
                ..none
            },
            Role::AcrDelete => RoleCapabilities {
                repository: ActionSet::of(&[Action::Delete]),
                ..none
            },
            Role::AcrImageSigner => RoleCapabilities { sign: true, ..none },
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Where a role assignment applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoleScope {
    /// The whole registry (stored as `registry`).
    Registry,
    /// Every repository whose name starts with `<prefix>/` (stored as
    /// `repositories/<prefix>/*`; does not cover `<prefix>` itself).
    RepositoryPrefix(String),
    /// One repository (stored as `repositories/<name>`).
    Repository(String),
}

/// A malformed role scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role scope {0:?} must be `registry`, `repositories/<prefix>/*` or `repositories/<name>`")]
pub struct InvalidRoleScope(pub String);

impl RoleScope {
    /// Whether the scope covers `repository`.
    pub fn covers(&self, repository: &str) -> bool {
        match self {
            RoleScope::Registry => true,
            RoleScope::RepositoryPrefix(p) => repository
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/')),
            RoleScope::Repository(n) => n == repository,
        }
    }

    /// Whether the scope is the whole registry.
    pub fn is_registry(&self) -> bool {
        matches!(self, RoleScope::Registry)
    }
}

impl FromStr for RoleScope {
    type Err = InvalidRoleScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "registry" {
            return Ok(RoleScope::Registry);
        }
        let err = || InvalidRoleScope(s.to_string());
        let rest = s.strip_prefix("repositories/").ok_or_else(err)?;
        let (body, prefix) = match rest.strip_suffix("/*") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        if body.parse::<RepositoryName>().is_err() {
            return Err(err());
        }
        Ok(if prefix {
            RoleScope::RepositoryPrefix(body.to_string())
        } else {
            RoleScope::Repository(body.to_string())
        })
    }
}

impl fmt::Display for RoleScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleScope::Registry => f.write_str("registry"),
            RoleScope::RepositoryPrefix(p) => write!(f, "repositories/{p}/*"),
            RoleScope::Repository(n) => write!(f, "repositories/{n}"),
        }
    }
}

impl Serialize for RoleScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RoleScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Who a role is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Assignee {
    /// A directory user, by object id.
    User(Uuid),
    /// A directory group, by object id; applies to its members.
    Group(Uuid),
    /// A service principal by app id; also matches a workload identity by
    /// its client id (a workload identity is a service principal federated
    /// with an external OIDC issuer).
    ServicePrincipal(Uuid),
}

impl fmt::Display for Assignee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Assignee::User(id) => write!(f, "user:{id}"),
            Assignee::Group(id) => write!(f, "group:{id}"),
            Assignee::ServicePrincipal(id) => write!(f, "sp:{id}"),
        }
    }
}

/// A role given to an assignee on a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleAssignment {
    /// Who.
    pub assignee: Assignee,
    /// What.
    pub role: Role,
    /// Where.
    pub scope: RoleScope,
}

impl RoleAssignment {
    /// A new assignment.
    pub fn new(assignee: Assignee, role: Role, scope: RoleScope) -> Self {
        Self {
            assignee,
            role,
            scope,
        }
    }
}

/// `AcrPush on repositories/team-a/* for group:<id>`.
impl fmt::Display for RoleAssignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} for {}", self.role, self.scope, self.assignee)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_reference() {
        // (role, mgmt read, mgmt write, role assignments, policies, push, pull, delete, sign)
        let expect = [
            (Role::Owner, true, true, true, true, true, true, true, false),
            (
                Role::Contributor,
                true,
                true,
                false,
                true,
                true,
                true,
                true,
                false,
            ),
            (
                Role::Reader,
                true,
                false,
                false,
                false,
                false,
                true,
                false,
                false,
            ),
            (
                Role::AcrPush,
                false,
                false,
                false,
                false,
                true,
                true,
                false,
                false,
            ),
            (
                Role::AcrPull,
                false,
                false,
                false,
                false,
                false,
                true,
                false,
                false,
            ),
            (
                Role::AcrDelete,
                false,
                false,
                false,
                false,
                false,
                false,
                true,
                false,
            ),
            (
                Role::AcrImageSigner,
                false,
                false,
                false,
                false,
                false,
                false,
                false,
                true,
            ),
        ];
        for (role, mr, mw, ra, cp, push, pull, del, sign) in expect {
            let c = role.capabilities();
            assert_eq!(c.management_read, mr, "{role} mgmt read");
            assert_eq!(c.management_write, mw, "{role} mgmt write");
            assert_eq!(c.manage_role_assignments, ra, "{role} role assignments");
            assert_eq!(c.change_policies, cp, "{role} policies");
            assert_eq!(c.repository.contains(Action::Push), push, "{role} push");
            assert_eq!(c.repository.contains(Action::Pull), pull, "{role} pull");
            assert_eq!(c.repository.contains(Action::Delete), del, "{role} delete");
            assert_eq!(c.sign, sign, "{role} sign");
            assert_eq!(c.catalog, pull, "{role}: catalog goes with pull");
            assert!(!c.repository.contains(Action::All));
        }
    }

    #[test]
    fn role_names_parse() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert_eq!("acrpull".parse::<Role>().unwrap(), Role::AcrPull);
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn scopes_parse_and_cover() {
        let reg: RoleScope = "registry".parse().unwrap();
        let pre: RoleScope = "repositories/team-a/*".parse().unwrap();
        let one: RoleScope = "repositories/team-a/app".parse().unwrap();
        assert_eq!(pre, RoleScope::RepositoryPrefix("team-a".into()));
        for s in [&reg, &pre, &one] {
            assert_eq!(s.to_string().parse::<RoleScope>().unwrap(), *s);
        }
        assert!(reg.covers("x"));
        assert!(pre.covers("team-a/app") && pre.covers("team-a/x/y"));
        assert!(!pre.covers("team-a") && !pre.covers("team-ab/app"));
        assert!(one.covers("team-a/app") && !one.covers("team-a/app2"));
        for bad in [
            "",
            "*",
            "repositories/*",
            "repositories/a*/*",
            "repositories/A",
            "repos/a",
        ] {
            assert!(bad.parse::<RoleScope>().is_err(), "{bad}");
        }
    }

    #[test]
    fn assignment_display_and_serde() {
        let id = Uuid::nil();
        let a = RoleAssignment::new(
            Assignee::Group(id),
            Role::AcrPush,
            RoleScope::RepositoryPrefix("team-a".into()),
        );
        assert_eq!(
            a.to_string(),
            format!("AcrPush on repositories/team-a/* for group:{id}")
        );
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["scope"], "repositories/team-a/*");
        assert_eq!(v["assignee"]["kind"], "group");
        assert_eq!(serde_json::from_value::<RoleAssignment>(v).unwrap(), a);
    }
}
