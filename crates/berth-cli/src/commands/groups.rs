//! `berth group create|list|show|delete` and `berth group member add|remove`.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use crate::mgmt::{delete_one, list, seg, show_one, Common, Ctx};

const COLUMNS: &[&str] = &["name", "id", "members"];

/// Directory groups.
#[derive(Args, Debug)]
pub struct GroupArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: GroupVerb,
}

#[derive(Subcommand, Debug)]
enum GroupVerb {
    /// Create a group.
    Create {
        /// Group name.
        #[arg(long)]
        name: String,
    },
    /// List groups.
    List,
    /// Show one group.
    Show {
        /// Group name.
        #[arg(long)]
        name: String,
    },
    /// Delete a group (asks for confirmation).
    Delete {
        /// Group name.
        #[arg(long)]
        name: String,
    },
    /// Group membership.
    Member {
        #[command(subcommand)]
        verb: MemberVerb,
    },
}

#[derive(Subcommand, Debug)]
enum MemberVerb {
    /// Add a user to a group.
    Add {
        /// Group name.
        #[arg(long)]
        name: String,
        /// User name.
        #[arg(long)]
        user: String,
    },
    /// Remove a user from a group (asks for confirmation).
    Remove {
        /// Group name.
        #[arg(long)]
        name: String,
        /// User name.
        #[arg(long)]
        user: String,
    },
}

/// Run a `berth group` verb.
pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        GroupVerb::Create { name } => {
            let body = json!({ "name": name });
            Ctx::open(c)
                .await?
                .show(Method::POST, "groups", Some(body), COLUMNS)
                .await
        }
        GroupVerb::List => list(c, "groups", COLUMNS).await,
        GroupVerb::Show { name } => show_one(c, "groups", &name, COLUMNS).await,
        GroupVerb::Delete { name } => {
            delete_one(c, "groups", &name, &format!("group '{name}'")).await
        }
        GroupVerb::Member {
            verb: MemberVerb::Add { name, user },
        } => {
            let path = format!("groups/{}/members", seg(&name));
            let body = json!({ "user": user });
            Ctx::open(c)
                .await?
                .show(Method::POST, &path, Some(body), COLUMNS)
                .await
        }
        GroupVerb::Member {
            verb: MemberVerb::Remove { name, user },
        } => {
            c.confirm(&format!("remove '{user}' from group '{name}'"))?;
            let path = format!("groups/{}/members/{}", seg(&name), seg(&user));
            Ctx::open(c)
                .await?
                .show(Method::DELETE, &path, None, COLUMNS)
                .await
        }
    }
}
