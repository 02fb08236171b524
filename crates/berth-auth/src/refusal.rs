//! Client-facing refusal messages that name what is missing, in the user's
//! terms: `token "ci-pull" may not push to team/app: its scope map grants
//! content/read`, `alice may not push to team/app: needs AcrPush,
//! Contributor or Owner`.
//!
//! The texts only ever talk about the repository the caller asked for and
//! the caller's own configuration (its scope map, the roles that would
//! grant the action), never about other repositories or other identities,
//! so they reveal nothing the caller could not already know. The precise
//! [`DenyReason`] (with the assignments held) still goes to the audit log.

use crate::authorize::{ManagementAction, PolicyContext};
use crate::error::DenyReason;
use crate::principal::Principal;
use crate::role::Role;
use crate::scope::Action;
use crate::scope_map::ScopeMapAction;

/// How a refusal names the caller: `alice`, `token "ci-pull"`,
/// `service principal <app id>`, `the admin account`.
pub fn who(principal: &Principal) -> String {
    match principal {
        Principal::DirectoryUser { name, .. } => name.clone(),
        Principal::ServicePrincipal { app_id, .. } => format!("service principal {app_id}"),
        Principal::WorkloadIdentity { client_id, .. } => {
            format!("workload identity {client_id}")
        }
        Principal::Admin { .. } => "the admin account".into(),
        Principal::RepositoryToken { name, .. } => format!("token {name:?}"),
        Principal::Anonymous => "anonymous callers".into(),
    }
}

/// `push to team/app`, `pull from team/app`, `delete in team/app`.
fn doing(action: Action, repository: &str) -> String {
    match action {
        Action::Pull => format!("pull from {repository}"),
        Action::Push => format!("push to {repository}"),
        Action::Delete => format!("delete in {repository}"),
        other => format!("{other} on {repository}"),
    }
}

/// `A, B or C`.
fn either(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The built-in roles whose repository permissions include `action`,
/// narrowest first: `AcrPush, Contributor or Owner` for push.
pub fn roles_granting(action: Action) -> String {
    let names: Vec<&str> = Role::ALL
        .iter()
        .rev()
        .filter(|r| r.capabilities().repository.contains(action))
        .map(|r| r.as_str())
        .collect();
    either(&names)
}

/// The built-in roles that allow a management action, narrowest first.
pub fn roles_allowing(action: ManagementAction) -> String {
    let names: Vec<&str> = Role::ALL
        .iter()
        .rev()
        .filter(|r| {
            let c = r.capabilities();
            match action {
                ManagementAction::Read => c.management_read,
                ManagementAction::Write => c.management_write,
                ManagementAction::ManageRoleAssignments => c.manage_role_assignments,
                ManagementAction::ChangePolicies => c.change_policies,
            }
        })
        .map(|r| r.as_str())
        .collect();
    either(&names)
}

/// The message of a refused repository action.
pub fn repository_denied(
    principal: &Principal,
    policy: &PolicyContext,
    action: Action,
    repository: &str,
    reason: &DenyReason,
) -> String {
    let head = format!("{} may not {}", who(principal), doing(action, repository));
    let why = match reason {
        DenyReason::ScopeMapMissingAction { needs, .. } => {
            let granted: Vec<&str> = policy
                .scope_map
                .as_ref()
                .map(|m| {
                    m.actions_for(repository)
                        .iter()
                        .filter_map(ScopeMapAction::for_token_action)
                        .map(ScopeMapAction::as_str)
                        .collect()
                })
                .unwrap_or_default();
            if granted.is_empty() {
                format!("its scope map grants nothing on {repository}; it needs {needs}")
            } else {
                format!(
                    "its scope map grants {}; it needs {needs}",
                    granted.join(", ")
                )
            }
        }
        DenyReason::NoRoleAssignment
        | DenyReason::OutsideRoleScope { .. }
        | DenyReason::InsufficientPermission { .. } => format!(
            "needs {} on {repository} or registry-wide",
            roles_granting(action)
        ),
        DenyReason::AdminAccountLimit { .. } => format!(
            "the admin account may only pull and push; {} needs a role assignment ({}) or a repository token",
            action,
            roles_granting(action)
        ),
        DenyReason::ScopeMapUnavailable { .. } => {
            "its scope map is not available; ask an administrator to check the token".into()
        }
        other => other.to_string(),
    };
    format!("{head}: {why}")
}

/// The message of a refused management request.
pub fn management_denied(
    principal: &Principal,
    action: ManagementAction,
    reason: &DenyReason,
) -> String {
    let roles = roles_allowing(action);
    match reason {
        DenyReason::ManagementRequiresRole { .. } => format!(
            "{} may not use the management API ({action}): log in as a directory user or \
             service principal holding {roles} on the registry",
            who(principal)
        ),
        _ => format!(
            "{} may not use the management API ({action}): needs a registry-wide role \
             assignment of {roles} (ask an Owner: berth role-assignment create --assignee <you> --role {})",
            who(principal),
            match action {
                ManagementAction::Read => "Reader",
                ManagementAction::ManageRoleAssignments => "Owner",
                ManagementAction::Write | ManagementAction::ChangePolicies => "Contributor",
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope_map::ScopeMap;

    #[test]
    fn roles_read_narrowest_first() {
        assert_eq!(
            roles_granting(Action::Push),
            "AcrPush, Contributor or Owner"
        );
        assert_eq!(
            roles_granting(Action::Pull),
            "AcrPull, AcrPush, Reader, Contributor or Owner"
        );
        assert_eq!(
            roles_granting(Action::Delete),
            "AcrDelete, Contributor or Owner"
        );
        assert_eq!(
            roles_allowing(ManagementAction::Read),
            "Reader, Contributor or Owner"
        );
    }

    #[test]
    fn token_message_names_its_scope_map() {
        let principal = Principal::RepositoryToken {
            name: "ci-pull".into(),
            scope_map: "pull-map".into(),
        };
        let policy = PolicyContext {
            scope_map: Some(
                ScopeMap::parse("pull-map", &["repositories/team/app/content/read"]).unwrap(),
            ),
            ..PolicyContext::default()
        };
        let reason = DenyReason::ScopeMapMissingAction {
            scope_map: "pull-map".into(),
            repository: "team/app".into(),
            needs: ScopeMapAction::ContentWrite,
        };
        let m = repository_denied(&principal, &policy, Action::Push, "team/app", &reason);
        assert_eq!(
            m,
            "token \"ci-pull\" may not push to team/app: its scope map grants content/read; it needs content/write"
        );
    }

    #[test]
    fn user_message_names_the_roles_without_listing_assignments() {
        let principal = Principal::DirectoryUser {
            id: uuid::Uuid::nil(),
            name: "alice".into(),
            groups: vec![],
        };
        let reason = DenyReason::OutsideRoleScope {
            resource: "repository team/app".into(),
            assignments: vec!["AcrPush on repositories/secret/* for user:x".into()],
        };
        let m = repository_denied(
            &principal,
            &PolicyContext::default(),
            Action::Push,
            "team/app",
            &reason,
        );
        assert!(
            m.starts_with("alice may not push to team/app: needs AcrPush, Contributor or Owner")
        );
        assert!(!m.contains("secret"), "{m}");
    }
}
