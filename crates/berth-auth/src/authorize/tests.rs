//! The authorization matrix.

use uuid::Uuid;

use super::*;
use crate::role::{Assignee, Role, RoleScope};
use crate::scope::parse_scope_list;
use crate::scope_map::{self, ScopeMap};

const REPO_ACTIONS: [&str; 5] = ["pull", "push", "delete", "metadata_read", "metadata_write"];

fn uid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn user() -> Principal {
    Principal::DirectoryUser {
        id: uid(1),
        name: "ana".into(),
        groups: vec![uid(10), uid(11)],
    }
}

fn sp() -> Principal {
    Principal::ServicePrincipal {
        app_id: uid(2),
        name: "ci".into(),
    }
}

fn workload() -> Principal {
    Principal::WorkloadIdentity {
        client_id: uid(3),
        name: "pod".into(),
    }
}

fn admin() -> Principal {
    Principal::Admin {
        registry: "myregistry".into(),
    }
}

fn token(map: &str) -> Principal {
    Principal::RepositoryToken {
        name: "ci-token".into(),
        scope_map: map.into(),
    }
}

fn roles(assignments: Vec<RoleAssignment>) -> PolicyContext {
    PolicyContext {
        role_assignments: assignments,
        ..PolicyContext::default()
    }
}

fn with_map(map: ScopeMap) -> PolicyContext {
    PolicyContext {
        scope_map: Some(map),
        ..PolicyContext::default()
    }
}

fn anon_ctx(on: bool) -> PolicyContext {
    PolicyContext {
        settings: RegistrySettings { anonymous_pull: on },
        ..PolicyContext::default()
    }
}

/// The decision code for `action` on `scope` (one scope, one action).
fn code(p: &Principal, ctx: &PolicyContext, scope: &str) -> &'static str {
    let requested = parse_scope_list(scope).unwrap();
    let g = authorize(p, ctx, &requested);
    assert_eq!(g.scopes.len(), 1);
    assert_eq!(g.scopes[0].decisions.len(), 1, "{scope}");
    g.scopes[0].decisions[0].decision.code()
}

fn granted(p: &Principal, ctx: &PolicyContext, scope: &str) -> String {
    let requested = parse_scope_list(scope).unwrap();
    authorize(p, ctx, &requested).scope_string()
}

/// Each role-holding principal type × each role × each action, registry-wide.
#[test]
fn role_matrix_registry_wide() {
    // Expected repository actions and catalog, written out independently of
    // role.rs so a change in either shows up here.
    let expected: [(Role, &[&str], bool); 7] = [
        (
            Role::Owner,
            &["pull", "push", "delete", "metadata_read", "metadata_write"],
            true,
        ),
        (
            Role::Contributor,
            &["pull", "push", "delete", "metadata_read", "metadata_write"],
            true,
        ),
        (Role::Reader, &["pull", "metadata_read"], true),
        (
            Role::AcrPush,
            &["pull", "push", "metadata_read", "metadata_write"],
            true,
        ),
        (Role::AcrPull, &["pull", "metadata_read"], true),
        (Role::AcrDelete, &["delete"], false),
        (Role::AcrImageSigner, &[], false),
    ];
    // (principal, how a role assignment reaches it)
    let holders: [(Principal, Assignee); 5] = [
        (user(), Assignee::User(uid(1))),
        (user(), Assignee::Group(uid(11))),
        (sp(), Assignee::ServicePrincipal(uid(2))),
        (workload(), Assignee::ServicePrincipal(uid(3))),
        (
            Principal::DirectoryUser {
                id: uid(4),
                name: "bo".into(),
                groups: vec![uid(10)],
            },
            Assignee::Group(uid(10)),
        ),
    ];
    let mut checked = 0;
    for (p, assignee) in &holders {
        for (role, allowed, catalog) in expected {
            let ctx = roles(vec![RoleAssignment::new(
                *assignee,
                role,
                RoleScope::Registry,
            )]);
            for action in REPO_ACTIONS {
                let c = code(p, &ctx, &format!("repository:team/app:{action}"));
                let want = if allowed.contains(&action) {
                    "role_assignment"
                } else {
                    "insufficient_permission"
                };
                assert_eq!(c, want, "{p} {role} {action}");
                checked += 1;
            }
            let c = code(p, &ctx, "registry:catalog:*");
            let want = if catalog {
                "role_assignment"
            } else {
                "insufficient_permission"
            };
            assert_eq!(c, want, "{p} {role} catalog");
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * 7 * 6);
}

#[test]
fn role_holders_without_assignments() {
    // Someone else's assignment does not count.
    let ctx = roles(vec![RoleAssignment::new(
        Assignee::User(uid(99)),
        Role::Owner,
        RoleScope::Registry,
    )]);
    for p in [user(), sp(), workload()] {
        for action in REPO_ACTIONS {
            assert_eq!(
                code(&p, &ctx, &format!("repository:a:{action}")),
                "no_role_assignment"
            );
        }
        assert_eq!(code(&p, &ctx, "registry:catalog:*"), "no_role_assignment");
    }
    // A service principal's id as a *user* assignee does not match.
    let ctx = roles(vec![RoleAssignment::new(
        Assignee::User(uid(2)),
        Role::Owner,
        RoleScope::Registry,
    )]);
    assert_eq!(code(&sp(), &ctx, "repository:a:pull"), "no_role_assignment");
}

#[test]
fn repository_prefix_and_single_repository_scopes() {
    let ctx = roles(vec![
        RoleAssignment::new(
            Assignee::Group(uid(10)),
            Role::AcrPush,
            "repositories/team-a/*".parse().unwrap(),
        ),
        RoleAssignment::new(
            Assignee::User(uid(1)),
            Role::AcrDelete,
            "repositories/team-b/app".parse().unwrap(),
        ),
    ]);
    let p = user();
    assert_eq!(
        granted(&p, &ctx, "repository:team-a/app:pull,push,delete"),
        "repository:team-a/app:pull,push"
    );
    assert_eq!(
        granted(&p, &ctx, "repository:team-a/x/y:push"),
        "repository:team-a/x/y:push"
    );
    assert_eq!(
        code(&p, &ctx, "repository:team-a/app:delete"),
        "insufficient_permission"
    );
    // The prefix does not cover the bare prefix or a look-alike.
    assert_eq!(
        code(&p, &ctx, "repository:team-a:pull"),
        "outside_role_scope"
    );
    assert_eq!(
        code(&p, &ctx, "repository:team-ab/app:pull"),
        "outside_role_scope"
    );
    // Single repository.
    assert_eq!(
        code(&p, &ctx, "repository:team-b/app:delete"),
        "role_assignment"
    );
    assert_eq!(
        code(&p, &ctx, "repository:team-b/app:pull"),
        "insufficient_permission"
    );
    assert_eq!(
        code(&p, &ctx, "repository:team-b/app2:delete"),
        "outside_role_scope"
    );
    // Repository-scoped roles never list the catalog.
    assert_eq!(
        code(&p, &ctx, "registry:catalog:*"),
        "catalog_requires_registry_role"
    );
    let only_delete = roles(vec![RoleAssignment::new(
        Assignee::User(uid(1)),
        Role::AcrDelete,
        "repositories/team-b/*".parse().unwrap(),
    )]);
    assert_eq!(
        code(&p, &only_delete, "registry:catalog:*"),
        "insufficient_permission"
    );
}

#[test]
fn roles_add_up_and_reason_names_the_granting_assignment() {
    let pull_everywhere =
        RoleAssignment::new(Assignee::Group(uid(11)), Role::AcrPull, RoleScope::Registry);
    let push_team = RoleAssignment::new(
        Assignee::User(uid(1)),
        Role::AcrPush,
        "repositories/team/*".parse().unwrap(),
    );
    let ctx = roles(vec![pull_everywhere.clone(), push_team.clone()]);
    let g = authorize(
        &user(),
        &ctx,
        &parse_scope_list("repository:team/app:pull,push repository:other:pull,push").unwrap(),
    );
    assert_eq!(
        g.scope_string(),
        "repository:team/app:pull,push repository:other:pull"
    );
    assert!(!g.is_complete());
    let d = &g.scopes[0].decisions;
    assert_eq!(
        d[0].decision,
        Decision::Allowed(AllowReason::RoleAssignment {
            assignment: pull_everywhere.clone()
        })
    );
    assert_eq!(
        d[1].decision,
        Decision::Allowed(AllowReason::RoleAssignment {
            assignment: push_team
        })
    );
    let denials: Vec<_> = g.denials().collect();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0].0.name, "other");
    assert_eq!(denials[0].1, Action::Push);
    match denials[0].2 {
        DenyReason::InsufficientPermission { needed, held } => {
            assert_eq!(needed, "push on repository other");
            assert_eq!(held, &vec![pull_everywhere.to_string()]);
        }
        other => panic!("{other:?}"),
    }
    let text = g.scopes[1].to_string();
    assert!(text.contains("push denied"), "{text}");
    assert!(text.contains("AcrPull on registry"), "{text}");
}

#[test]
fn system_scope_maps_matrix() {
    let expected: [(&str, &[&str]); 5] = [
        (scope_map::SYSTEM_PULL, &["pull"]),
        (
            scope_map::SYSTEM_PULL_METADATA_READ,
            &["pull", "metadata_read"],
        ),
        (scope_map::SYSTEM_PUSH, &["pull", "push"]),
        (
            scope_map::SYSTEM_PUSH_METADATA_WRITE,
            &["pull", "push", "metadata_read", "metadata_write"],
        ),
        (scope_map::SYSTEM_ADMIN, &REPO_ACTIONS),
    ];
    for (name, allowed) in expected {
        let ctx = with_map(ScopeMap::system(name).unwrap());
        let p = token(name);
        for repo in ["a", "not/yet/created"] {
            for action in REPO_ACTIONS {
                let want = if allowed.contains(&action) {
                    "scope_map_rule"
                } else {
                    "scope_map_missing_action"
                };
                assert_eq!(
                    code(&p, &ctx, &format!("repository:{repo}:{action}")),
                    want,
                    "{name} {action}"
                );
            }
        }
        assert_eq!(
            code(&p, &ctx, "registry:catalog:*"),
            "catalog_not_grantable"
        );
    }
}

#[test]
fn custom_scope_map_wildcards_and_additive_rules() {
    let map = ScopeMap::parse(
        "team-map",
        &[
            "repositories/samples/*/content/read",
            "repositories/samples/hello/content/write",
            "repositories/samples/hello/content/read",
            "repositories/tools/content/delete",
            "repositories/*/metadata/read",
        ],
    )
    .unwrap();
    let ctx = with_map(map);
    let p = token("team-map");
    let g = |s: &str| granted(&p, &ctx, s);
    assert_eq!(
        g("repository:samples/hello:pull,push"),
        "repository:samples/hello:pull,push"
    );
    assert_eq!(
        g("repository:samples/other:pull,push"),
        "repository:samples/other:pull"
    );
    assert_eq!(
        g("repository:samples/deep/er:pull"),
        "repository:samples/deep/er:pull"
    );
    assert_eq!(
        g("repository:samples:pull"),
        "",
        "samples/* does not cover samples"
    );
    assert_eq!(g("repository:tools:delete,pull"), "repository:tools:delete");
    assert_eq!(
        g("repository:anything:metadata_read"),
        "repository:anything:metadata_read"
    );
    assert_eq!(g("repository:tools/x:delete"), "");
    // Reason names the rule.
    let req = parse_scope_list("repository:samples/new:pull").unwrap();
    let grant = authorize(&p, &ctx, &req);
    assert_eq!(
        grant.scopes[0].decisions[0].decision,
        Decision::Allowed(AllowReason::ScopeMapRule {
            scope_map: "team-map".into(),
            rule: "repositories/samples/*/content/read".into()
        })
    );
    // Missing-rule reason says which scope-map action is needed.
    let req = parse_scope_list("repository:samples/new:push").unwrap();
    let grant = authorize(&p, &ctx, &req);
    assert_eq!(
        grant.scopes[0].decisions[0].decision,
        Decision::Denied(DenyReason::ScopeMapMissingAction {
            scope_map: "team-map".into(),
            repository: "samples/new".into(),
            needs: crate::scope_map::ScopeMapAction::ContentWrite,
        })
    );
}

#[test]
fn content_write_alone_cannot_push() {
    let map = ScopeMap::parse("write-only", &["repositories/app/content/write"]).unwrap();
    assert_eq!(map.lint().len(), 1);
    let ctx = with_map(map);
    let g = authorize(
        &token("write-only"),
        &ctx,
        &[RequestedScope::repository(
            "app",
            ActionSet::required_for_method("PUT"),
        )],
    );
    assert_eq!(g.scopes[0].granted, ActionSet::of(&[Action::Push]));
    assert!(!g.is_complete(), "a push request needs pull too");
    assert_eq!(g.denials().next().map(|d| d.1), Some(Action::Pull));
}

#[test]
fn token_without_its_scope_map() {
    let p = token("team-map");
    assert_eq!(
        code(&p, &PolicyContext::default(), "repository:a:pull"),
        "scope_map_unavailable"
    );
    let other = with_map(ScopeMap::system(scope_map::SYSTEM_ADMIN).unwrap());
    assert_eq!(
        code(&p, &other, "repository:a:pull"),
        "scope_map_unavailable"
    );
}

#[test]
fn admin_account() {
    let ctx = PolicyContext::default();
    let p = admin();
    for (action, want) in [
        ("pull", "admin_account"),
        ("push", "admin_account"),
        ("metadata_read", "admin_account"),
        ("delete", "admin_account_limit"),
        ("metadata_write", "admin_account_limit"),
    ] {
        assert_eq!(
            code(&p, &ctx, &format!("repository:any/repo:{action}")),
            want,
            "{action}"
        );
    }
    assert_eq!(code(&p, &ctx, "registry:catalog:*"), "admin_account");
    // Role assignments are irrelevant to the admin account.
    let ctx = roles(vec![RoleAssignment::new(
        Assignee::User(uid(1)),
        Role::Owner,
        RoleScope::Registry,
    )]);
    assert_eq!(code(&p, &ctx, "repository:x:delete"), "admin_account_limit");
}

#[test]
fn anonymous_pull_on_and_off() {
    let p = Principal::Anonymous;
    for (on, pull) in [(true, "anonymous_pull"), (false, "anonymous_pull_disabled")] {
        let ctx = anon_ctx(on);
        assert_eq!(code(&p, &ctx, "repository:library/hello:pull"), pull);
        for action in ["push", "delete", "metadata_read", "metadata_write"] {
            assert_eq!(
                code(&p, &ctx, &format!("repository:library/hello:{action}")),
                "authentication_required",
                "{action} with anonymous pull {on}"
            );
        }
        assert_eq!(
            code(&p, &ctx, "registry:catalog:*"),
            "authentication_required"
        );
    }
    let g = authorize(
        &p,
        &anon_ctx(true),
        &parse_scope_list("repository:a:pull,push").unwrap(),
    );
    assert_eq!(g.scope_string(), "repository:a:pull");
    assert_eq!(
        g.scopes[0].denials().next().map(|d| d.1.oci_code()),
        Some("UNAUTHORIZED")
    );
    // Anonymous pull does not extend to authenticated principals without roles.
    assert_eq!(
        code(&sp(), &anon_ctx(true), "repository:a:pull"),
        "no_role_assignment"
    );
}

#[test]
fn resource_edge_cases() {
    let ctx = PolicyContext::default();
    let p = admin();
    assert_eq!(
        code(&p, &ctx, "repository:Bad/Name:pull"),
        "invalid_repository_name"
    );
    assert_eq!(
        code(&p, &ctx, "repository:localhost:5000/app:pull"),
        "invalid_repository_name"
    );
    assert_eq!(
        code(&p, &ctx, "registry:catalog:pull"),
        "action_not_applicable"
    );
    assert_eq!(code(&p, &ctx, "registry:config:*"), "unknown_resource");
    let all = RequestedScope {
        actions: Action::All.into(),
        ..RequestedScope::repository("app", ActionSet::EMPTY)
    };
    let g = authorize(&p, &ctx, &[all]);
    assert_eq!(
        g.scopes[0].decisions[0].decision.code(),
        "action_not_applicable"
    );
    // Anonymous and tokens get the same name check, before anything else.
    assert_eq!(
        code(&Principal::Anonymous, &anon_ctx(true), "repository:A:pull"),
        "invalid_repository_name"
    );
}

#[test]
fn grant_outputs() {
    let ctx = with_map(ScopeMap::system(scope_map::SYSTEM_PULL).unwrap());
    let req = parse_scope_params_for_test(
        "repository:a:pull,push,frob repository:b:push registry:catalog:*",
    );
    let g = authorize(&token(scope_map::SYSTEM_PULL), &ctx, &req);
    let access = g.access();
    assert_eq!(access.len(), 1, "scopes with nothing granted are left out");
    assert_eq!(access[0].name, "a");
    assert_eq!(access[0].actions, vec!["pull".to_string()]);
    assert_eq!(g.scope_string(), "repository:a:pull");
    let text = g.scopes[0].to_string();
    assert!(text.contains("frob ignored (unknown action)"), "{text}");
    assert_eq!(g.denials().count(), 3);
    let empty = authorize(&admin(), &ctx, &[]);
    assert!(empty.is_complete());
    assert!(empty.access().is_empty());
    // Decisions serialise for the audit log.
    let v = serde_json::to_value(&g.scopes[0].decisions).unwrap();
    assert_eq!(v[0]["decision"]["result"], "allowed");
    assert_eq!(v[0]["decision"]["reason"]["by"], "scope_map_rule");
    assert_eq!(
        v[1]["decision"]["reason"]["code"],
        "scope_map_missing_action"
    );
}

fn parse_scope_params_for_test(s: &str) -> Vec<RequestedScope> {
    crate::scope::parse_scope_params([s]).scopes
}

#[test]
fn management_matrix() {
    use ManagementAction::*;
    let expected: [(Role, [bool; 4]); 7] = [
        // read, write, role assignments, policies
        (Role::Owner, [true, true, true, true]),
        (Role::Contributor, [true, true, false, true]),
        (Role::Reader, [true, false, false, false]),
        (Role::AcrPush, [false; 4]),
        (Role::AcrPull, [false; 4]),
        (Role::AcrDelete, [false; 4]),
        (Role::AcrImageSigner, [false; 4]),
    ];
    for p in [user(), sp(), workload()] {
        let assignee = p.assignees()[0];
        for (role, allowed) in expected {
            let ctx = roles(vec![RoleAssignment::new(
                assignee,
                role,
                RoleScope::Registry,
            )]);
            for (action, want) in [Read, Write, ManageRoleAssignments, ChangePolicies]
                .into_iter()
                .zip(allowed)
            {
                let d = authorize_management(&p, &ctx, action);
                assert_eq!(d.is_allowed(), want, "{p} {role} {action}");
                if !want {
                    assert_eq!(d.code(), "insufficient_permission");
                }
            }
            // Repository-scoped assignments never give management rights.
            let scoped = roles(vec![RoleAssignment::new(
                assignee,
                role,
                "repositories/a/*".parse().unwrap(),
            )]);
            assert!(!authorize_management(&p, &scoped, Read).is_allowed());
        }
        assert_eq!(
            authorize_management(&p, &PolicyContext::default(), Read).code(),
            "no_role_assignment"
        );
    }
    for p in [admin(), token("m-map"), Principal::Anonymous] {
        let ctx = roles(vec![RoleAssignment::new(
            Assignee::User(uid(1)),
            Role::Owner,
            RoleScope::Registry,
        )]);
        assert_eq!(
            authorize_management(&p, &ctx, Read).code(),
            "management_requires_role"
        );
    }
}

#[test]
fn signing() {
    let ctx = roles(vec![RoleAssignment::new(
        Assignee::ServicePrincipal(uid(2)),
        Role::AcrImageSigner,
        "repositories/signed/*".parse().unwrap(),
    )]);
    assert!(authorize_sign(&sp(), &ctx, "signed/app").is_allowed());
    assert!(!authorize_sign(&sp(), &ctx, "other").is_allowed());
    assert!(!authorize_sign(&admin(), &ctx, "signed/app").is_allowed());
    let owner = roles(vec![RoleAssignment::new(
        Assignee::ServicePrincipal(uid(2)),
        Role::Owner,
        RoleScope::Registry,
    )]);
    assert!(
        !authorize_sign(&sp(), &owner, "signed/app").is_allowed(),
        "Owner does not sign"
    );
}
