//! Authorization: may this principal do that? Pure, no IO.
//!
//! [`authorize`] intersects the requested scopes with what the principal is
//! allowed and records, for every action asked, a [`Decision`] naming the
//! role assignment or scope-map rule that granted it, or what was missing.
//! The same function serves the token service (which scopes go into a token)
//! and, through [`authorize_action`], any check the server makes itself.
//!
//! Rules, per principal kind:
//! - Directory users, service principals, workload identities: their role
//!   assignments (to themselves or, for users, to any of their groups),
//!   additively. Catalog only from a registry-wide assignment with pull.
//! - Admin: [`ADMIN_ACTIONS`] on every repository, and the catalog; no
//!   management.
//! - Repository token: its scope map, additively; never the catalog.
//! - Anonymous: `pull` on every repository when anonymous pull is on;
//!   nothing else, ever.
//!
//! Every principal is refused on a name that is not a valid repository name.

use std::fmt;

use berth_core::RepositoryName;
use serde::Serialize;

use crate::error::DenyReason;
use crate::principal::Principal;
use crate::role::{RoleAssignment, RoleCapabilities};
use crate::scope::{Action, ActionSet, RequestedScope, ResourceActions, ResourceType};
use crate::scope_map::{ScopeMap, ScopeMapAction, ScopeMapRule};

/// What the admin account may do on every repository: pull and push, as
/// the reference states, plus `metadata_read` (listing is part of pulling).
/// Delete and metadata writes need a role or a token.
pub const ADMIN_ACTIONS: ActionSet =
    ActionSet::of(&[Action::Pull, Action::Push, Action::MetadataRead]);

/// Registry-wide settings that bear on authorization.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistrySettings {
    /// Anonymous pull (off by default).
    pub anonymous_pull: bool,
}

/// Everything [`authorize`] needs besides the principal; loaded by the
/// server for each decision (so role and scope-map changes apply at once).
#[derive(Debug, Clone, Default)]
pub struct PolicyContext {
    /// Registry settings.
    pub settings: RegistrySettings,
    /// Role assignments. Only those naming one of the principal's
    /// [`Principal::assignees`] are considered, so the server may pass all
    /// of the registry's or just the principal's.
    pub role_assignments: Vec<RoleAssignment>,
    /// The scope map of a repository-token principal.
    pub scope_map: Option<ScopeMap>,
}

impl PolicyContext {
    /// Whether `principal` holds at least one role assignment (the
    /// identity-token exchange answers 401 to identities with none).
    pub fn has_role_assignment(&self, principal: &Principal) -> bool {
        !applicable(principal, self).is_empty()
    }
}

/// Why something was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum AllowReason {
    /// A role assignment.
    RoleAssignment {
        /// The assignment that granted it.
        assignment: RoleAssignment,
    },
    /// A scope-map rule.
    ScopeMapRule {
        /// The scope map.
        scope_map: String,
        /// The rule, in stored form.
        rule: String,
    },
    /// The admin account's fixed permissions.
    AdminAccount,
    /// Anonymous pull is on.
    AnonymousPull,
}

impl AllowReason {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            AllowReason::RoleAssignment { .. } => "role_assignment",
            AllowReason::ScopeMapRule { .. } => "scope_map_rule",
            AllowReason::AdminAccount => "admin_account",
            AllowReason::AnonymousPull => "anonymous_pull",
        }
    }
}

impl fmt::Display for AllowReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowReason::RoleAssignment { assignment } => write!(f, "role {assignment}"),
            AllowReason::ScopeMapRule { scope_map, rule } => {
                write!(f, "scope map {scope_map} rule {rule}")
            }
            AllowReason::AdminAccount => f.write_str("admin account"),
            AllowReason::AnonymousPull => f.write_str("anonymous pull is enabled"),
        }
    }
}

/// The outcome for one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum Decision {
    /// Allowed, and by what.
    Allowed(AllowReason),
    /// Refused, and why.
    Denied(DenyReason),
}

impl Decision {
    /// Whether allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }

    /// The stable code of the reason (`role_assignment`, `no_role_assignment`…).
    pub fn code(&self) -> &'static str {
        match self {
            Decision::Allowed(a) => a.code(),
            Decision::Denied(d) => d.code(),
        }
    }

    /// The deny reason, if denied.
    pub fn deny_reason(&self) -> Option<&DenyReason> {
        match self {
            Decision::Denied(d) => Some(d),
            Decision::Allowed(_) => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allowed(a) => write!(f, "allowed by {a}"),
            Decision::Denied(d) => write!(f, "denied: {d}"),
        }
    }
}

/// The decision for one requested action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionDecision {
    /// The action.
    pub action: Action,
    /// Its decision.
    pub decision: Decision,
}

/// The outcome for one requested scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeGrant {
    /// What was asked.
    pub requested: RequestedScope,
    /// What is granted (a subset of `requested.actions`).
    pub granted: ActionSet,
    /// One decision per requested known action, in canonical order.
    /// Unknown actions (`requested.unknown_actions`) are never granted.
    pub decisions: Vec<ActionDecision>,
}

impl ScopeGrant {
    /// The granted part as a scope (`repository:a:pull`).
    pub fn granted_scope(&self) -> RequestedScope {
        RequestedScope {
            actions: self.granted,
            unknown_actions: Vec::new(),
            ..self.requested.clone()
        }
    }

    /// The denied actions with their reasons.
    pub fn denials(&self) -> impl Iterator<Item = (Action, &DenyReason)> {
        self.decisions
            .iter()
            .filter_map(|d| d.decision.deny_reason().map(|r| (d.action, r)))
    }
}

/// `repository:a: pull allowed by …; push denied: …`.
impl fmt::Display for ScopeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:",
            self.requested.resource_type, self.requested.name
        )?;
        for (i, d) in self.decisions.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, " {} {}", d.action, d.decision)?;
        }
        for u in &self.requested.unknown_actions {
            write!(f, "; {u} ignored (unknown action)")?;
        }
        Ok(())
    }
}

/// The outcome of [`authorize`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// One entry per requested scope, in request order.
    pub scopes: Vec<ScopeGrant>,
}

impl Grant {
    /// The `access` claim: granted actions only, scopes with nothing granted
    /// left out.
    pub fn access(&self) -> Vec<ResourceActions> {
        self.scopes
            .iter()
            .filter(|s| !s.granted.is_empty())
            .map(|s| s.granted_scope().to_resource_actions())
            .collect()
    }

    /// The requested actions that were refused, per resource (for
    /// [`crate::jwt::AccessClaims::refused`]).
    pub fn refused_access(&self) -> Vec<ResourceActions> {
        self.scopes
            .iter()
            .filter_map(|s| {
                let refused: Vec<String> =
                    s.denials().map(|(a, _)| a.as_str().to_string()).collect();
                (!refused.is_empty()).then(|| ResourceActions {
                    resource_type: s.requested.resource_type.to_string(),
                    name: s.requested.name.clone(),
                    actions: refused,
                })
            })
            .collect()
    }

    /// The token response's `scope` field: granted scopes, space-separated.
    pub fn scope_string(&self) -> String {
        self.scopes
            .iter()
            .filter(|s| !s.granted.is_empty())
            .map(|s| s.granted_scope().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether every known requested action was granted.
    pub fn is_complete(&self) -> bool {
        self.scopes.iter().all(|s| s.granted == s.requested.actions)
    }

    /// Every denied action: (scope, action, reason).
    pub fn denials(&self) -> impl Iterator<Item = (&RequestedScope, Action, &DenyReason)> {
        self.scopes
            .iter()
            .flat_map(|s| s.denials().map(move |(a, r)| (&s.requested, a, r)))
    }
}

/// Intersect `requested` with what `principal` may do under `ctx`.
pub fn authorize(
    principal: &Principal,
    ctx: &PolicyContext,
    requested: &[RequestedScope],
) -> Grant {
    let scopes = requested
        .iter()
        .map(|scope| {
            let mut granted = ActionSet::EMPTY;
            let decisions = scope
                .actions
                .iter()
                .map(|action| {
                    let decision =
                        authorize_action(principal, ctx, scope.resource_type, &scope.name, action);
                    if decision.is_allowed() {
                        granted.insert(action);
                    }
                    ActionDecision { action, decision }
                })
                .collect();
            ScopeGrant {
                requested: scope.clone(),
                granted,
                decisions,
            }
        })
        .collect();
    Grant { scopes }
}

/// Decide one action on one resource.
pub fn authorize_action(
    principal: &Principal,
    ctx: &PolicyContext,
    resource_type: ResourceType,
    name: &str,
    action: Action,
) -> Decision {
    match resource_type {
        ResourceType::Registry => authorize_registry(principal, ctx, name, action),
        ResourceType::Repository => authorize_repository(principal, ctx, name, action),
    }
}

fn authorize_registry(
    principal: &Principal,
    ctx: &PolicyContext,
    name: &str,
    action: Action,
) -> Decision {
    let resource = format!("registry {name}");
    if name != crate::scope::CATALOG {
        return Decision::Denied(DenyReason::UnknownResource { resource });
    }
    if action != Action::All {
        return Decision::Denied(DenyReason::ActionNotApplicable { action, resource });
    }
    match principal {
        Principal::Anonymous => Decision::Denied(DenyReason::AuthenticationRequired { action }),
        Principal::Admin { .. } => Decision::Allowed(AllowReason::AdminAccount),
        Principal::RepositoryToken { .. } => {
            Decision::Denied(DenyReason::CatalogNotGrantableByScopeMap)
        }
        Principal::DirectoryUser { .. }
        | Principal::ServicePrincipal { .. }
        | Principal::WorkloadIdentity { .. } => {
            let mine = applicable(principal, ctx);
            if mine.is_empty() {
                return Decision::Denied(DenyReason::NoRoleAssignment);
            }
            if let Some(a) = mine
                .iter()
                .find(|a| a.scope.is_registry() && a.role.capabilities().catalog)
            {
                return Decision::Allowed(AllowReason::RoleAssignment {
                    assignment: (*a).clone(),
                });
            }
            let scoped_readers: Vec<String> = mine
                .iter()
                .filter(|a| !a.scope.is_registry() && a.role.capabilities().catalog)
                .map(|a| a.to_string())
                .collect();
            if scoped_readers.is_empty() {
                Decision::Denied(DenyReason::InsufficientPermission {
                    needed: "catalog listing".into(),
                    held: summaries(&mine),
                })
            } else {
                Decision::Denied(DenyReason::CatalogRequiresRegistryRole {
                    held: scoped_readers,
                })
            }
        }
    }
}

fn authorize_repository(
    principal: &Principal,
    ctx: &PolicyContext,
    name: &str,
    action: Action,
) -> Decision {
    if name.parse::<RepositoryName>().is_err() {
        return Decision::Denied(DenyReason::InvalidRepositoryName {
            name: name.to_string(),
        });
    }
    let Some(map_action) = ScopeMapAction::for_token_action(action) else {
        return Decision::Denied(DenyReason::ActionNotApplicable {
            action,
            resource: format!("repository {name}"),
        });
    };
    match principal {
        Principal::Anonymous => {
            if action != Action::Pull {
                Decision::Denied(DenyReason::AuthenticationRequired { action })
            } else if ctx.settings.anonymous_pull {
                Decision::Allowed(AllowReason::AnonymousPull)
            } else {
                Decision::Denied(DenyReason::AnonymousPullDisabled)
            }
        }
        Principal::Admin { .. } => {
            if ADMIN_ACTIONS.contains(action) {
                Decision::Allowed(AllowReason::AdminAccount)
            } else {
                Decision::Denied(DenyReason::AdminAccountLimit { action })
            }
        }
        Principal::RepositoryToken { scope_map, .. } => {
            let Some(map) = ctx.scope_map.as_ref().filter(|m| m.name() == scope_map) else {
                return Decision::Denied(DenyReason::ScopeMapUnavailable {
                    scope_map: scope_map.clone(),
                });
            };
            match map.rule_granting(name, map_action) {
                Some(rule) => Decision::Allowed(AllowReason::ScopeMapRule {
                    scope_map: map.name().to_string(),
                    rule: rule_string(rule),
                }),
                None => Decision::Denied(DenyReason::ScopeMapMissingAction {
                    scope_map: map.name().to_string(),
                    repository: name.to_string(),
                    needs: map_action,
                }),
            }
        }
        Principal::DirectoryUser { .. }
        | Principal::ServicePrincipal { .. }
        | Principal::WorkloadIdentity { .. } => {
            let mine = applicable(principal, ctx);
            if mine.is_empty() {
                return Decision::Denied(DenyReason::NoRoleAssignment);
            }
            let covering: Vec<&RoleAssignment> = mine
                .iter()
                .copied()
                .filter(|a| a.scope.covers(name))
                .collect();
            if covering.is_empty() {
                return Decision::Denied(DenyReason::OutsideRoleScope {
                    resource: format!("repository {name}"),
                    assignments: summaries(&mine),
                });
            }
            match covering
                .iter()
                .find(|a| a.role.capabilities().repository.contains(action))
            {
                Some(a) => Decision::Allowed(AllowReason::RoleAssignment {
                    assignment: (*a).clone(),
                }),
                None => Decision::Denied(DenyReason::InsufficientPermission {
                    needed: format!("{action} on repository {name}"),
                    held: summaries(&covering),
                }),
            }
        }
    }
}

fn rule_string(rule: &ScopeMapRule) -> String {
    rule.to_string()
}

fn applicable<'a>(principal: &Principal, ctx: &'a PolicyContext) -> Vec<&'a RoleAssignment> {
    let me = principal.assignees();
    ctx.role_assignments
        .iter()
        .filter(|a| me.contains(&a.assignee))
        .collect()
}

fn summaries(assignments: &[&RoleAssignment]) -> Vec<String> {
    assignments.iter().map(|a| a.to_string()).collect()
}

/// A management-API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagementAction {
    /// Read configuration, identities, tokens, scope maps.
    Read,
    /// Change configuration, identities, tokens, scope maps.
    Write,
    /// Create or delete role assignments.
    ManageRoleAssignments,
    /// Change policies (network rules, anonymous pull, …).
    ChangePolicies,
}

impl ManagementAction {
    fn allowed_by(self, c: RoleCapabilities) -> bool {
        match self {
            ManagementAction::Read => c.management_read,
            ManagementAction::Write => c.management_write,
            ManagementAction::ManageRoleAssignments => c.manage_role_assignments,
            ManagementAction::ChangePolicies => c.change_policies,
        }
    }
}

impl fmt::Display for ManagementAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ManagementAction::Read => "management read",
            ManagementAction::Write => "management write",
            ManagementAction::ManageRoleAssignments => "role assignment management",
            ManagementAction::ChangePolicies => "policy changes",
        })
    }
}

/// May `principal` perform a management operation? Only role holders can,
/// and only through registry-wide assignments.
pub fn authorize_management(
    principal: &Principal,
    ctx: &PolicyContext,
    action: ManagementAction,
) -> Decision {
    if !principal.uses_roles() {
        return Decision::Denied(DenyReason::ManagementRequiresRole {
            principal_kind: principal.kind().code().to_string(),
        });
    }
    let mine = applicable(principal, ctx);
    if mine.is_empty() {
        return Decision::Denied(DenyReason::NoRoleAssignment);
    }
    match mine
        .iter()
        .find(|a| a.scope.is_registry() && action.allowed_by(a.role.capabilities()))
    {
        Some(a) => Decision::Allowed(AllowReason::RoleAssignment {
            assignment: (*a).clone(),
        }),
        None => Decision::Denied(DenyReason::InsufficientPermission {
            needed: format!("{action} (registry-wide)"),
            held: summaries(&mine),
        }),
    }
}

/// May `principal` sign images in `repository`? Needs AcrImageSigner on a
/// scope covering the repository (pushing the signature also needs push).
pub fn authorize_sign(principal: &Principal, ctx: &PolicyContext, repository: &str) -> Decision {
    if !principal.uses_roles() {
        return Decision::Denied(DenyReason::InsufficientPermission {
            needed: format!("signing in repository {repository}"),
            held: Vec::new(),
        });
    }
    let mine = applicable(principal, ctx);
    if mine.is_empty() {
        return Decision::Denied(DenyReason::NoRoleAssignment);
    }
    match mine
        .iter()
        .find(|a| a.scope.covers(repository) && a.role.capabilities().sign)
    {
        Some(a) => Decision::Allowed(AllowReason::RoleAssignment {
            assignment: (*a).clone(),
        }),
        None => Decision::Denied(DenyReason::InsufficientPermission {
            needed: format!("signing in repository {repository}"),
            held: summaries(&mine),
        }),
    }
}

#[cfg(test)]
mod tests;
