//! Step 13 (with `--repository`): may the caller pull, push and delete?
//!
//! The access token was requested for `repository:<name>:pull,push,delete`;
//! the token response's `scope` says what was granted. For each action not
//! granted, the same token is shown to the registry on a request needing
//! that action; the registry refuses it before any handler runs (no side
//! effects) and its 403 `detail[].reason` says why, which names the missing
//! role or scope-map action.

use crate::context::Ctx;
use crate::http::send;
use crate::report::Finding;

const NAME: &str = "permissions";

/// One probed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `pull`.
    Pull,
    /// `push`.
    Push,
    /// `delete`.
    Delete,
}

impl Probe {
    fn action(self) -> &'static str {
        match self {
            Probe::Pull => "pull",
            Probe::Push => "push",
            Probe::Delete => "delete",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Probe::Pull => "PERMISSION_PULL_ERROR",
            Probe::Push => "PERMISSION_PUSH_ERROR",
            Probe::Delete => "PERMISSION_DELETE_ERROR",
        }
    }

    /// The scope-map action that grants it.
    fn scope_map_action(self) -> &'static str {
        match self {
            Probe::Pull => "content/read",
            Probe::Push => "content/write",
            Probe::Delete => "content/delete",
        }
    }

    /// The built-in roles that grant it.
    fn roles(self) -> &'static str {
        match self {
            Probe::Pull => "AcrPull, AcrPush, Reader, Contributor or Owner",
            Probe::Push => "AcrPush, Contributor or Owner",
            Probe::Delete => "AcrDelete, Contributor or Owner",
        }
    }

    /// A request that needs the action and nothing more.
    fn request(self, ctx: &Ctx, repo: &str, token: &str) -> reqwest::RequestBuilder {
        let base = ctx.base_url();
        let req = match self {
            Probe::Pull => ctx.http.get(format!("{base}/v2/{repo}/tags/list")),
            Probe::Push => ctx
                .http
                .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                .header("Content-Length", "0"),
            Probe::Delete => ctx.http.delete(format!(
                "{base}/v2/{repo}/manifests/sha256:{}",
                "0".repeat(64)
            )),
        };
        req.bearer_auth(token)
    }
}

/// The actions `scope` (a token response's space-separated scope) grants
/// on `repo`.
pub fn granted_actions(scope: &str, repo: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in scope.split_whitespace() {
        let Some((resource, actions)) = item.rsplit_once(':') else {
            continue;
        };
        let Some((kind, name)) = resource.split_once(':') else {
            continue;
        };
        if (kind == "repository" || kind.starts_with("repository(")) && name == repo {
            out.extend(actions.split(',').map(str::to_string));
        }
    }
    out
}

/// What is missing, from the registry's reason code.
pub fn explain(probe: Probe, repo: &str, reason: Option<&str>) -> String {
    let action = probe.action();
    let roles = probe.roles();
    let sm = probe.scope_map_action();
    match reason {
        Some("scope_map_missing_action") => format!(
            "the token's scope map has no rule granting {sm} on {repo}: add `repositories/{repo}/{sm}` to it"
        ),
        Some("no_role_assignment") => format!(
            "the identity holds no role assignment on this registry: {action} needs {roles}"
        ),
        Some("outside_role_scope") => format!(
            "no role assignment covers repository {repo}: {action} needs {roles}, registry-wide or scoped to repositories/{repo}"
        ),
        Some("insufficient_permission") => format!(
            "the roles held on {repo} do not include {action}: it needs {roles}"
        ),
        Some("admin_account_limit") => format!(
            "the admin account may push and pull only; {action} needs an identity with {roles}"
        ),
        Some("access_changed") => format!(
            "access changed after this token was issued: the identity may {action} {repo} now, but this token was refused it; log in again (or request a new token) to pick the change up"
        ),
        Some("authentication_required" | "anonymous_pull_disabled") => {
            format!("anonymous callers may not {action} here: log in")
        }
        Some(other) => format!("refused by the registry (reason {other})"),
        None => format!("the registry granted no {action} on {repo}"),
    }
}

/// Probe pull, push and delete.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let Some(repo) = ctx.args.repository.clone() else {
        return Vec::new();
    };
    let Some((token, scope)) = ctx.access.clone() else {
        return vec![super::skipped(NAME, "no access token")];
    };
    let granted = granted_actions(&scope, &repo);
    let all = granted.iter().any(|a| a == "*");
    let mut out = Vec::new();
    for probe in [Probe::Pull, Probe::Push, Probe::Delete] {
        let name = format!("{} {repo}", probe.action());
        if all || granted.iter().any(|a| a == probe.action()) {
            out.push(Finding::ok(&name, format!("may {} {repo}", probe.action())));
            continue;
        }
        let reason = if ctx.credential.is_none() && ctx.args.access_token.is_none() {
            Some("authentication_required".to_string())
        } else {
            match send(probe.request(ctx, &repo, &token)).await {
                Ok(a) => a.json().and_then(|v| {
                    v["errors"][0]["detail"][0]["reason"]
                        .as_str()
                        .map(str::to_string)
                }),
                Err(_) => None,
            }
        };
        let why = explain(probe, &repo, reason.as_deref());
        let finding_code = if reason.as_deref() == Some("access_changed") {
            "ACCESS_CHANGED_RELOGIN"
        } else {
            probe.code()
        };
        let code = reason.map(|r| format!(" [{r}]")).unwrap_or_default();
        out.push(Finding::problem(
            &name,
            finding_code,
            format!("may not {} {repo}: {why}{code}", probe.action()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_granted_actions() {
        assert_eq!(
            granted_actions("repository:app:pull,push registry:catalog:*", "app"),
            vec!["pull", "push"]
        );
        assert_eq!(
            granted_actions("repository:reg.test:5000/app:pull", "reg.test:5000/app"),
            vec!["pull"]
        );
        assert!(granted_actions("", "app").is_empty());
        assert!(granted_actions("repository:other:pull", "app").is_empty());
    }

    #[test]
    fn explains_missing_actions() {
        let t = explain(Probe::Push, "app", Some("scope_map_missing_action"));
        assert!(t.contains("content/write"), "{t}");
        let t = explain(Probe::Delete, "app", Some("no_role_assignment"));
        assert!(t.contains("AcrDelete"), "{t}");
    }
}
