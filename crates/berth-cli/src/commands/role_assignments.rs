//! `berth role-assignment create|list|delete`.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use crate::mgmt::{delete_one, seg, Common, Ctx};

const COLUMNS: &[&str] = &["id", "assigneeKind", "assigneeName", "role", "scope"];

/// Role assignments (Owner only for changes).
#[derive(Args, Debug)]
pub struct RoleAssignmentArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: RoleAssignmentVerb,
}

#[derive(Subcommand, Debug)]
enum RoleAssignmentVerb {
    /// Give a user, group or service principal a role.
    Create {
        /// User name, group name or app id.
        #[arg(long)]
        assignee: String,
        /// Owner, Contributor, Reader, AcrPush, AcrPull, AcrDelete or AcrImageSigner.
        #[arg(long)]
        role: String,
        /// `repositories/PREFIX/*` to limit it (default: the whole registry).
        #[arg(long)]
        scope: Option<String>,
    },
    /// List role assignments.
    List {
        /// Only those of this user name, group name or app id.
        #[arg(long)]
        assignee: Option<String>,
    },
    /// Delete a role assignment by id, or the one matching
    /// --assignee/--role[/--scope] (asks for confirmation).
    Delete {
        /// Assignment id.
        #[arg(long, required_unless_present_all = ["assignee", "role"], conflicts_with_all = ["assignee", "role", "scope"])]
        id: Option<String>,
        /// User name, group name or app id.
        #[arg(long, requires = "role")]
        assignee: Option<String>,
        /// Role name.
        #[arg(long, requires = "assignee")]
        role: Option<String>,
        /// Scope of the assignment.
        #[arg(long)]
        scope: Option<String>,
    },
}

/// Run a `berth role-assignment` verb.
pub async fn run(args: RoleAssignmentArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        RoleAssignmentVerb::Create {
            assignee,
            role,
            scope,
        } => {
            let mut body = json!({ "assignee": assignee, "role": role });
            if let Some(s) = scope {
                body["scope"] = json!(s);
            }
            let path = "role-assignments";
            Ctx::open(c)
                .await?
                .show(Method::POST, path, Some(body), COLUMNS)
                .await
        }
        RoleAssignmentVerb::List { assignee } => {
            let path = match assignee {
                Some(a) => format!("role-assignments?assignee={}", seg(&a)),
                None => "role-assignments".into(),
            };
            Ctx::open(c)
                .await?
                .show(Method::GET, &path, None, COLUMNS)
                .await
        }
        RoleAssignmentVerb::Delete { id: Some(id), .. } => {
            delete_one(c, "role-assignments", &id, &format!("role assignment {id}")).await
        }
        RoleAssignmentVerb::Delete {
            id: None,
            assignee,
            role,
            scope,
        } => {
            let (Some(assignee), Some(role)) = (assignee, role) else {
                anyhow::bail!("give --id, or --assignee and --role");
            };
            c.confirm(&format!("delete the {role} role of '{assignee}'"))?;
            let ctx = Ctx::open(c).await?;
            let list_path = format!("role-assignments?assignee={}", seg(&assignee));
            let list = ctx
                .call(Method::GET, &list_path, None)
                .await?
                .unwrap_or_default();
            let matching: Vec<&Value> = list
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|r| {
                            r.get("role").and_then(Value::as_str) == Some(role.as_str())
                                && scope.as_deref().is_none_or(|s| {
                                    r.get("scope").and_then(Value::as_str) == Some(s)
                                })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let id = match matching.as_slice() {
                [one] => one
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                [] => anyhow::bail!(
                    "'{assignee}' has no {role} role assignment{}",
                    scope.map(|s| format!(" on {s}")).unwrap_or_default()
                ),
                _ => anyhow::bail!(
                    "'{assignee}' has several {role} assignments: give --scope or --id"
                ),
            };
            let path = format!("role-assignments/{}", seg(&id));
            ctx.show(Method::DELETE, &path, None, &[]).await
        }
    }
}
