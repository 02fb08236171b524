//! `berth scope-map create|update|list|show|delete`.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use crate::mgmt::{delete_one, list, rules, seg, show_one, Common, Ctx};
use crate::repo_actions::{AddRepositories, RemoveRepositories, RequiredRepositories};

const COLUMNS: &[&str] = &["name", "system", "actions", "description"];

/// Scope maps (what repository tokens may do).
#[derive(Args, Debug)]
pub struct ScopeMapArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: ScopeMapVerb,
}

#[derive(Subcommand, Debug)]
enum ScopeMapVerb {
    /// Create a scope map.
    Create {
        /// Scope map name (5-50 of [a-zA-Z0-9_-]).
        #[arg(long)]
        name: String,
        /// `--repository R ACTION...`, repeatable.
        #[command(flatten)]
        repository: RequiredRepositories,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
    },
    /// Add or remove repository actions, or change the description.
    Update {
        /// Scope map name.
        #[arg(long)]
        name: String,
        /// `--add-repository R ACTION...`, repeatable.
        #[command(flatten)]
        add_repository: AddRepositories,
        /// `--remove-repository R ACTION...`, repeatable.
        #[command(flatten)]
        remove_repository: RemoveRepositories,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List scope maps (system ones included).
    List,
    /// Show one scope map.
    Show {
        /// Scope map name.
        #[arg(long)]
        name: String,
    },
    /// Delete a scope map (asks for confirmation).
    Delete {
        /// Scope map name.
        #[arg(long)]
        name: String,
    },
}

/// Run a `berth scope-map` verb.
pub async fn run(args: ScopeMapArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        ScopeMapVerb::Create {
            name,
            repository,
            description,
        } => {
            let mut body = json!({ "name": name, "actions": rules(&repository.0) });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            Ctx::open(c)
                .await?
                .show(Method::POST, "scope-maps", Some(body), COLUMNS)
                .await
        }
        ScopeMapVerb::Update {
            name,
            add_repository,
            remove_repository,
            description,
        } => {
            if add_repository.0.is_empty()
                && remove_repository.0.is_empty()
                && description.is_none()
            {
                anyhow::bail!(
                    "nothing to update: give --add-repository, --remove-repository and/or --description"
                );
            }
            let ctx = Ctx::open(c).await?;
            let path = format!("scope-maps/{}", seg(&name));
            let current = ctx
                .call(Method::GET, &path, None)
                .await?
                .unwrap_or_default();
            let mut actions: Vec<String> = current
                .get("actions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let remove = rules(&remove_repository.0);
            actions.retain(|a| !remove.contains(a));
            for a in rules(&add_repository.0) {
                if !actions.contains(&a) {
                    actions.push(a);
                }
            }
            let description = description.or_else(|| {
                current
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            let body = json!({ "actions": actions, "description": description });
            ctx.show(Method::PUT, &path, Some(body), COLUMNS).await
        }
        ScopeMapVerb::List => list(c, "scope-maps", COLUMNS).await,
        ScopeMapVerb::Show { name } => show_one(c, "scope-maps", &name, COLUMNS).await,
        ScopeMapVerb::Delete { name } => {
            delete_one(c, "scope-maps", &name, &format!("scope map '{name}'")).await
        }
    }
}
